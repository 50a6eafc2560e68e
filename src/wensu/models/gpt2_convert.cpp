#include "wensu/models/gpt2_convert.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "wensu/io/jsonl.h"
#include "wensu/io/safetensors.h"
#include "wensu/nn/transformer.h"
#include "wensu/ops/shape.h"

namespace wensu::models {
namespace {

namespace fs = std::filesystem;

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }


std::vector<io::NamedTensor> to_io(const nn::NamedTensors& named) {
  std::vector<io::NamedTensor> out;
  for (const auto& [n, t] : named) out.push_back({n, t});
  return out;
}

// HF activation names (transformers' ACT2FN) onto nn::apply_activation's. gelu_new,
// gelu_pytorch_tanh and gelu_fast are all 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
const std::map<std::string, std::string> kActivations = {
    {"gelu_new", "gelu_tanh"}, {"gelu_pytorch_tanh", "gelu_tanh"}, {"gelu_fast", "gelu_tanh"},
    {"gelu", "gelu"},          {"relu", "relu"},                   {"silu", "silu"},
    {"swish", "silu"},
};

// One tensor GPT-2 stores (its name without the "transformer." prefix) and the Gpt parameters
// it becomes.
struct Source {
  std::string name;
  Shape shape;  // in GPT-2's layout
  std::function<std::vector<io::NamedTensor>(const Tensor&)> to_params;
};

Source same(const std::string& name, const Shape& shape, const std::string& param) {
  return {name, shape, [param](const Tensor& t) { return std::vector<io::NamedTensor>{{param, t}}; }};
}

// Conv1D weight [in, out] -> Linear weight [out, in] (a view; copied when loaded).
Source conv1d_weight(const std::string& name, int64_t in, int64_t out, const std::string& param) {
  return {name, {in, out}, [param](const Tensor& t) { return std::vector<io::NamedTensor>{{param, t.transpose(0, 1)}}; }};
}

// The sources a GPT-2 of this config holds, in the order the errors should find them.
std::vector<Source> gpt2_sources(const GptConfig& c) {
  const int64_t D = c.embed_dim, F = c.d_ff();
  std::vector<Source> s;
  s.push_back(same("wte.weight", {c.vocab_size, D}, "embed_tokens.weight"));
  s.push_back(same("wpe.weight", {c.max_positions, D}, "embed_positions.weight"));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string h = "h." + std::to_string(i) + ".", l = "layers." + std::to_string(i) + ".";
    for (const char* p : {"weight", "bias"}) {
      s.push_back(same(h + "ln_1." + p, {D}, l + "ln1." + p));
      s.push_back(same(h + "ln_2." + p, {D}, l + "ln2." + p));
    }
    // c_attn computes q | k | v in one [D, 3D] product: columns [0, D) are q, then k, then v.
    s.push_back({h + "attn.c_attn.weight", {D, 3 * D}, [l, D](const Tensor& t) {
                   return std::vector<io::NamedTensor>{{l + "attn.q_proj.weight", t.narrow(1, 0, D).transpose(0, 1)},
                                                       {l + "attn.k_proj.weight", t.narrow(1, D, D).transpose(0, 1)},
                                                       {l + "attn.v_proj.weight", t.narrow(1, 2 * D, D).transpose(0, 1)}};
                 }});
    s.push_back({h + "attn.c_attn.bias", {3 * D}, [l, D](const Tensor& t) {
                   return std::vector<io::NamedTensor>{{l + "attn.q_proj.bias", t.narrow(0, 0, D)},
                                                       {l + "attn.k_proj.bias", t.narrow(0, D, D)},
                                                       {l + "attn.v_proj.bias", t.narrow(0, 2 * D, D)}};
                 }});
    s.push_back(conv1d_weight(h + "attn.c_proj.weight", D, D, l + "attn.out_proj.weight"));
    s.push_back(same(h + "attn.c_proj.bias", {D}, l + "attn.out_proj.bias"));
    s.push_back(conv1d_weight(h + "mlp.c_fc.weight", D, F, l + "ffn.fc1.weight"));
    s.push_back(same(h + "mlp.c_fc.bias", {F}, l + "ffn.fc1.bias"));
    s.push_back(conv1d_weight(h + "mlp.c_proj.weight", F, D, l + "ffn.fc2.weight"));
    s.push_back(same(h + "mlp.c_proj.bias", {D}, l + "ffn.fc2.bias"));
  }
  s.push_back(same("ln_f.weight", {D}, "final_norm.weight"));
  s.push_back(same("ln_f.bias", {D}, "final_norm.bias"));
  if (!c.tie_embeddings) s.push_back(same("lm_head.weight", {c.vocab_size, D}, "lm_head.weight"));
  return s;
}

// h.{i}.attn.bias and h.{i}.attn.masked_bias: the causal mask and its fill value, stored as
// buffers by transformers before 4.3x; Gpt's attention is causal by construction.
bool is_mask_buffer(const std::string& n) {
  if (!starts_with(n, "h.")) return false;
  const size_t dot = n.find('.', 2);
  if (dot == std::string::npos || dot == 2 || n.substr(2, dot - 2).find_first_not_of("0123456789") != std::string::npos)
    return false;
  const std::string rest = n.substr(dot + 1);
  return rest == "attn.bias" || rest == "attn.masked_bias";
}

}  // namespace

GptConfig gpt_config_from_hf_json(const nlohmann::json& j, const std::string& what) {
  auto fail = [&](const auto&... a) { throw Error(detail::concat(what, ": ", a...)); };
  if (!j.is_object()) fail("not a JSON object");
  if (!j.contains("model_type"))
    fail("no 'model_type': not a Hugging Face config.json", j.contains("embed_dim") ? " (a Wensu model config?)" : "");
  if (j.at("model_type") != "gpt2")
    fail("model_type ", j.at("model_type").dump(), " is not GPT-2 (expected \"gpt2\")");
  auto need = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key) || j.at(key).is_null()) fail("GPT-2 config has no '", key, "'");
    return j.at(key);
  };
  // GPT2Config's own defaults where a key is absent or null.
  auto opt = [&](const char* key, auto dflt) {
    return j.contains(key) && !j.at(key).is_null() ? j.at(key).get<decltype(dflt)>() : dflt;
  };
  GptConfig c;
  const char* field = "";
  try {
    c.vocab_size = need(field = "vocab_size").get<int64_t>();
    c.max_positions = need(field = "n_positions").get<int64_t>();
    c.embed_dim = need(field = "n_embd").get<int64_t>();
    c.num_layers = need(field = "n_layer").get<int64_t>();
    c.num_heads = need(field = "n_head").get<int64_t>();
    c.ffn.d_ff = opt(field = "n_inner", int64_t(0));  // null: 4 * n_embd
    if (c.ffn.d_ff < 0 || (j.contains("n_inner") && !j.at("n_inner").is_null() && c.ffn.d_ff == 0))
      fail("n_inner ", j.at("n_inner").dump(), " must be null (4 * n_embd) or a positive number");
    const std::string act = opt(field = "activation_function", std::string("gelu_new"));
    auto it = kActivations.find(act);
    if (it == kActivations.end())
      fail("activation_function '", act, "' is not supported (gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu, silu)");
    c.ffn.activation = it->second;
    c.norm_eps = opt(field = "layer_norm_epsilon", 1e-5);
    if (!opt(field = "scale_attn_weights", true))
      fail("scale_attn_weights = false (unscaled attention scores) is not supported");
    if (opt(field = "scale_attn_by_inverse_layer_idx", false))
      fail("scale_attn_by_inverse_layer_idx = true is not supported");
    if (opt(field = "reorder_and_upcast_attn", false)) fail("reorder_and_upcast_attn = true is not supported");
    if (opt(field = "add_cross_attention", false))
      fail("add_cross_attention = true (an encoder-decoder GPT-2) is not supported");
    c.tie_embeddings = opt(field = "tie_word_embeddings", true);
    // Informational: a token id the vocabulary holds, else none.
    field = "eos_token_id";
    if (j.contains("eos_token_id") && j.at("eos_token_id").is_number_integer()) {
      const int64_t eos = j.at("eos_token_id").get<int64_t>();
      c.eos_id = eos >= 0 && eos < c.vocab_size ? eos : -1;
    }
  } catch (const nlohmann::json::exception& e) {
    fail(field, ": ", e.what());
  }
  // GPT-2 proper; dropout (resid_pdrop, embd_pdrop, attn_pdrop) is a training choice, not part
  // of the function, and starts at 0 here.
  c.positions = "learned";
  c.norm = "layernorm";
  c.bias = true;
  c.dropout = 0.0;
  try {
    c.validate();
  } catch (const Error& e) {
    fail(e.what());
  }
  return c;
}

std::shared_ptr<Gpt> load_gpt2_hf(const std::string& dir) {
  WENSU_CHECK(fs::is_directory(dir), "GPT-2 import: ", dir,
              " is not a directory (expected a Hugging Face GPT2LMHeadModel folder with config.json and "
              "model.safetensors; a Wensu checkpoint loads with load_gpt_checkpoint)");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  const std::string path = (fs::path(dir) / "model.safetensors").string();
  WENSU_CHECK(fs::exists(config_path), "GPT-2 import: ", config_path, " not found (the model's Hugging Face config)");
  if (!fs::exists(path)) {
    const bool sharded = fs::exists(fs::path(dir) / "model.safetensors.index.json");
    const bool pickled = fs::exists(fs::path(dir) / "pytorch_model.bin");
    throw Error(detail::concat("GPT-2 import: ", path, " not found",
                               sharded ? " (sharded weights are not read: save the model as one file)"
                               : pickled ? " (pytorch_model.bin is not read: re-save with safe_serialization=True)"
                                         : ""));
  }
  const GptConfig cfg = gpt_config_from_hf_json(io::read_json_file(config_path), config_path);

  io::SafetensorsFile file = io::load_safetensors(path);
  auto fail = [&](const auto&... a) { throw Error(detail::concat("safetensors ", path, ": ", a...)); };
  const std::string hint = detail::concat(" (config.json: n_layer ", cfg.num_layers, ", n_embd ", cfg.embed_dim,
                                          ", n_inner ", cfg.d_ff(), ", vocab_size ", cfg.vocab_size, ", n_positions ",
                                          cfg.max_positions, ")");

  // Names without the optional "transformer." prefix (GPT2Model saves without it).
  std::map<std::string, const io::NamedTensor*> by_name;
  for (const auto& nt : file.tensors) {
    const std::string n = starts_with(nt.name, "transformer.") ? nt.name.substr(12) : nt.name;
    auto [it, fresh] = by_name.emplace(n, &nt);
    if (!fresh) fail("tensors '", it->second->name, "' and '", nt.name, "' are the same GPT-2 tensor");
  }

  std::vector<io::NamedTensor> mapped;
  std::set<std::string> used;
  for (const Source& s : gpt2_sources(cfg)) {
    auto it = by_name.find(s.name);
    if (it == by_name.end()) fail("no tensor '", s.name == "lm_head.weight" ? "" : "transformer.", s.name, "'", hint);
    const io::NamedTensor& nt = *it->second;
    if (nt.tensor.shape() != s.shape)
      fail("tensor '", nt.name, "' has shape ", shape_str(nt.tensor.shape()), ", expected ", shape_str(s.shape), hint);
    if (!is_floating(nt.tensor.dtype()))
      fail("tensor '", nt.name, "' is ", dtype_name(nt.tensor.dtype()), ", expected a floating dtype");
    for (auto& p : s.to_params(nt.tensor)) mapped.push_back(std::move(p));
    used.insert(s.name);
  }
  const io::NamedTensor* tied_head = nullptr;
  for (const auto& [n, nt] : by_name) {
    if (used.count(n) || is_mask_buffer(n)) continue;
    if (n == "lm_head.weight") {
      tied_head = nt;
      continue;
    }
    fail("tensor '", nt->name, "' is not part of a GPT-2 model of this config", hint);
  }

  Generator gen(0);  // every parameter is overwritten below
  auto model = std::make_shared<Gpt>(cfg, gen);
  io::load_tensors_into(mapped, to_io(model->named_parameters()), path, "parameter", true);

  // transformers ties lm_head.weight to wte; a file that stores both must store them equal.
  if (tied_head) {
    const Tensor& wte = model->embed_tokens->weight;
    if (tied_head->tensor.shape() != wte.shape() ||
        tied_head->tensor.to(DType::f64).to_vector<double>() != wte.to(DType::f64).to_vector<double>())
      fail("tensor '", tied_head->name, "' differs from transformer.wte.weight, but config.json ties them "
           "(tie_word_embeddings = true)");
  }
  return model;
}

void save_gpt2_hf(const Gpt& model, const std::string& dir) {
  const GptConfig& c = model.config();
  auto need = [&](bool ok, const char* what) { WENSU_CHECK(ok, "save_gpt2_hf: GPT-2 has ", what, "; this model does not"); };
  need(c.positions == "learned", "learned positions");
  need(c.norm == "layernorm", "layernorm");
  need(c.bias, "biases");
  need(c.tie_embeddings, "a tied head");
  need(c.ffn.kind == "dense", "a dense FFN");
  need(c.attention.kind == "dense", "dense attention");
  const std::map<std::string, std::string> act = {
      {"gelu_tanh", "gelu_new"}, {"gelu", "gelu"}, {"relu", "relu"}, {"silu", "silu"}};
  WENSU_CHECK(act.count(c.ffn.activation), "save_gpt2_hf: activation ", c.ffn.activation, " has no GPT-2 name");
  const nlohmann::json config = {{"model_type", "gpt2"},
                                 {"architectures", {"GPT2LMHeadModel"}},
                                 {"vocab_size", c.vocab_size},
                                 {"n_positions", c.max_positions},
                                 {"n_embd", c.embed_dim},
                                 {"n_layer", c.num_layers},
                                 {"n_head", c.num_heads},
                                 {"n_inner", c.d_ff()},
                                 {"activation_function", act.at(c.ffn.activation)},
                                 {"layer_norm_epsilon", c.norm_eps},
                                 {"resid_pdrop", 0.0},
                                 {"embd_pdrop", 0.0},
                                 {"attn_pdrop", 0.0},
                                 {"scale_attn_weights", true},
                                 {"tie_word_embeddings", true},
                                 {"bos_token_id", c.eos_id >= 0 ? c.eos_id : 0},
                                 {"eos_token_id", c.eos_id >= 0 ? c.eos_id : 0}};
  std::vector<io::NamedTensor> t;
  auto f32 = [](const Tensor& x) { return x.detach().to(DType::f32).contiguous(); };
  auto conv1d = [&](const Tensor& w) { return f32(w).transpose(0, 1).contiguous(); };  // Linear [out, in] -> [in, out]
  t.push_back({"transformer.wte.weight", f32(model.embed_tokens->weight)});
  t.push_back({"transformer.wpe.weight", f32(model.embed_positions->weight)});
  for (size_t i = 0; i < model.layers.size(); ++i) {
    const auto& L = *model.layers[i];
    const std::string h = "transformer.h." + std::to_string(i) + ".";
    auto norm_param = [&](const std::shared_ptr<nn::Module>& n, const char* p) { return f32(n->parameter(p)); };
    t.push_back({h + "ln_1.weight", norm_param(L.ln1, "weight")});
    t.push_back({h + "ln_1.bias", norm_param(L.ln1, "bias")});
    t.push_back({h + "attn.c_attn.weight",
                 ops::concat({conv1d(L.attn->q_proj->weight), conv1d(L.attn->k_proj->weight), conv1d(L.attn->v_proj->weight)}, 1)
                     .contiguous()});
    t.push_back({h + "attn.c_attn.bias",
                 ops::concat({f32(L.attn->q_proj->bias), f32(L.attn->k_proj->bias), f32(L.attn->v_proj->bias)}, 0)});
    t.push_back({h + "attn.c_proj.weight", conv1d(L.attn->out_proj->weight)});
    t.push_back({h + "attn.c_proj.bias", f32(L.attn->out_proj->bias)});
    t.push_back({h + "ln_2.weight", norm_param(L.ln2, "weight")});
    t.push_back({h + "ln_2.bias", norm_param(L.ln2, "bias")});
    const auto& ffn = dynamic_cast<const nn::FeedForward&>(*L.ffn);
    t.push_back({h + "mlp.c_fc.weight", conv1d(ffn.fc1->weight)});
    t.push_back({h + "mlp.c_fc.bias", f32(ffn.fc1->bias)});
    t.push_back({h + "mlp.c_proj.weight", conv1d(ffn.fc2->weight)});
    t.push_back({h + "mlp.c_proj.bias", f32(ffn.fc2->bias)});
  }
  t.push_back({"transformer.ln_f.weight", f32(model.final_norm->parameter("weight"))});
  t.push_back({"transformer.ln_f.bias", f32(model.final_norm->parameter("bias"))});
  std::filesystem::create_directories(dir);
  io::save_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), t, {{"format", "pt"}});
  const std::string cfg_path = (std::filesystem::path(dir) / "config.json").string();
  std::ofstream out(cfg_path);
  out << config.dump(2) << "\n";
  WENSU_CHECK(out.good(), "save_gpt2_hf: cannot write ", cfg_path);
}

io::Checkpoint gpt_checkpoint(const Gpt& model) {
  io::Checkpoint ck;
  ck.model_config = nlohmann::json(model.config()).dump();
  ck.params = to_io(model.named_parameters());
  ck.meta["model"] = "gpt";
  return ck;
}

std::shared_ptr<Gpt> load_gpt_checkpoint(const std::string& path) {
  io::Checkpoint ck = io::load_checkpoint(path);
  auto it = ck.meta.find("model");
  WENSU_CHECK(it != ck.meta.end(), "checkpoint ", path,
              " does not say which model it holds (no meta 'model'); expected a gpt checkpoint");
  WENSU_CHECK(it->second == "gpt", "checkpoint ", path, " holds a '", it->second, "' model, not gpt");
  const std::string what = "checkpoint " + path + " model_config";
  const nlohmann::json j = io::parse_json(ck.model_config, what);
  GptConfig cfg;
  try {
    cfg = j.get<GptConfig>();
  } catch (const Error& e) {
    throw Error(detail::concat(what, ": ", e.what()));
  }
  Generator gen(0);
  auto model = std::make_shared<Gpt>(cfg, gen);
  io::load_tensors_into(ck.params, to_io(model->named_parameters()), path, "parameter", true);
  return model;
}

}  // namespace wensu::models
