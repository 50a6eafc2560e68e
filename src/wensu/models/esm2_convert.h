// ESM-2 weights from other implementations into Esm2, and Esm2 <-> Wensu checkpoints.
//
// Sources (a safetensors file, io/safetensors.h), told apart by their tensor names:
//   fair-esm   ESM2.state_dict() as scripts/export_esm2.py writes it ("layers.0.self_attn.q_proj.weight")
//   hf         HF transformers' EsmForMaskedLM ("esm.encoder.layer.0.attention.self.query.weight")
//   wensu      Esm2's own names ("layers.0.attn.q_proj.weight")
// The name tables, and which tensors are skipped (rotary inv_freq buffers, the contact head,
// the tied LM-head matrix), are in docs/esm2.md.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "wensu/io/checkpoint.h"
#include "wensu/models/esm2.h"

namespace wensu::models {

// The safetensors metadata key scripts/export_esm2.py stores the Esm2Config JSON under.
constexpr const char* kEsm2ConfigMetadataKey = "esm2_config";

enum class Esm2Naming { wensu, fair_esm, hf };
const char* esm2_naming_name(Esm2Naming n);  // "wensu", "fair-esm", "hf"
// By the names present: any "esm." prefix is hf, any "self_attn" is fair-esm, else wensu.
Esm2Naming detect_esm2_naming(const std::vector<io::NamedTensor>& tensors);

// The Esm2 parameter name of one source tensor; "" when the tensor has no Esm2 counterpart and
// is skipped. Throws for names it does not know (e.g. ESM-1b's learned positions), naming them.
std::string esm2_parameter_name(const std::string& name, Esm2Naming naming);

// An Esm2Config from JSON: Wensu's own (to_json above), or an HF config.json (recognised by
// "model_type": "esm"; rotary ESM-2 settings are required). `what` names the source in errors.
Esm2Config esm2_config_from_any_json(const nlohmann::json& j, const std::string& what);

struct Esm2Import {
  std::shared_ptr<Esm2> model;
  Esm2Naming naming = Esm2Naming::wensu;
  std::vector<std::string> skipped;  // source tensors with no Esm2 counterpart
};

// Builds an Esm2 from a safetensors file and copies its weights in (any floating dtype is
// converted to float32). The config comes from `config_path` (Wensu or HF JSON) when given,
// else from the file's kEsm2ConfigMetadataKey metadata. Every Esm2 parameter must be present
// with its shape, no unknown tensor may be left over, a tied LM-head matrix must equal
// embed_tokens.weight, and rotary inv_freq buffers must match the config's head size: each
// failure is one line naming the file and the tensor.
Esm2Import load_esm2_safetensors(const std::string& path, const std::string& config_path = "");

// A checkpoint holding the model's parameters, its config as model_config and meta "model" =
// "esm2"; and the reverse, which checks both.
io::Checkpoint esm2_checkpoint(const Esm2& model);
std::shared_ptr<Esm2> load_esm2_checkpoint(const std::string& path);

}  // namespace wensu::models
