// Hugging Face GPT-2 (transformers' GPT2LMHeadModel) into Gpt, and Gpt <-> Wensu checkpoints.
//
// A GPT-2 directory holds config.json and model.safetensors (save_pretrained's layout). Tensor
// names (the "transformer." prefix is optional) and where they go:
//   wte.weight [V, D]                      embed_tokens.weight
//   wpe.weight [P, D]                      embed_positions.weight
//   h.{i}.ln_1.{weight,bias}               layers.{i}.ln1.*
//   h.{i}.attn.c_attn.{weight [D, 3D], bias [3D]}   layers.{i}.attn.{q,k,v}_proj.* (q | k | v)
//   h.{i}.attn.c_proj.{weight [D, D], bias}         layers.{i}.attn.out_proj.*
//   h.{i}.ln_2.{weight,bias}               layers.{i}.ln2.*
//   h.{i}.mlp.c_fc.{weight [D, F], bias}   layers.{i}.ffn.fc1.*
//   h.{i}.mlp.c_proj.{weight [F, D], bias} layers.{i}.ffn.fc2.*
//   ln_f.{weight,bias}                     final_norm.*
//   lm_head.weight [V, D]                  tied: must equal wte.weight; untied: lm_head.weight
//   h.{i}.attn.bias, h.{i}.attn.masked_bias  causal-mask buffers of old transformers, skipped
// GPT-2's Conv1D stores weights [in, out], the transpose of Linear's [out, in]; they are
// transposed on import.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "wensu/io/checkpoint.h"
#include "wensu/models/gpt.h"

namespace wensu::models {

// A GptConfig from an HF GPT-2 config.json (model_type "gpt2"). Settings Gpt does not compute
// (scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn, unscaled attention, cross
// attention, an unknown activation_function) and other architectures are one-line errors
// naming `what` and the field.
GptConfig gpt_config_from_hf_json(const nlohmann::json& j, const std::string& what);

// Builds a Gpt from DIR/config.json and DIR/model.safetensors (any floating dtype, converted to
// float32). Every tensor must be present with its shape and nothing unknown may be left over;
// each failure is one line naming the file and the tensor or field.
std::shared_ptr<Gpt> load_gpt2_hf(const std::string& dir);

// The reverse of load_gpt2_hf: writes DIR/config.json and DIR/model.safetensors (float32) that
// transformers' GPT2LMHeadModel.from_pretrained(DIR) loads, for peers and users of the HF stack.
// The model must be GPT-2 shaped (learned positions, layernorm, biases, tied head, dense FFN
// with gelu_tanh or gelu, relu, silu); anything else is an error naming the setting.
void save_gpt2_hf(const Gpt& model, const std::string& dir);

// A checkpoint holding the model's parameters, its config as model_config and meta "model" =
// "gpt"; and the reverse, which checks both (another model's checkpoint is an error saying
// which model it holds).
io::Checkpoint gpt_checkpoint(const Gpt& model);
std::shared_ptr<Gpt> load_gpt_checkpoint(const std::string& path);

}  // namespace wensu::models
