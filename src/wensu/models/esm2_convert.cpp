#include "wensu/models/esm2_convert.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "wensu/io/jsonl.h"
#include "wensu/io/safetensors.h"

namespace wensu::models {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// The name tables (docs/esm2.md shows them side by side). Inside a layer, a source module
// prefix maps to an nn::TransformerLayer prefix; the parameter ("weight", "bias") is kept.
struct Rename {
  const char* from;
  const char* to;
};

constexpr Rename kFairEsmLayer[] = {
    {"self_attn_layer_norm.", "ln1."},      {"self_attn.q_proj.", "attn.q_proj."},
    {"self_attn.k_proj.", "attn.k_proj."},  {"self_attn.v_proj.", "attn.v_proj."},
    {"self_attn.out_proj.", "attn.out_proj."}, {"final_layer_norm.", "ln2."},
    {"fc1.", "ffn.fc1."},                   {"fc2.", "ffn.fc2."},
};
constexpr Rename kHfLayer[] = {
    {"attention.self.query.", "attn.q_proj."}, {"attention.self.key.", "attn.k_proj."},
    {"attention.self.value.", "attn.v_proj."}, {"attention.output.dense.", "attn.out_proj."},
    {"attention.LayerNorm.", "ln1."},          {"intermediate.dense.", "ffn.fc1."},
    {"output.dense.", "ffn.fc2."},             {"LayerNorm.", "ln2."},
};
// Whole names outside the layers. Names shared by both sources come last.
constexpr Rename kHfGlobal[] = {
    {"esm.embeddings.word_embeddings.weight", "embed_tokens.weight"},
    {"esm.encoder.emb_layer_norm_after.weight", "emb_layer_norm_after.weight"},
    {"esm.encoder.emb_layer_norm_after.bias", "emb_layer_norm_after.bias"},
};
constexpr const char* kSharedGlobal[] = {
    "embed_tokens.weight",    "emb_layer_norm_after.weight", "emb_layer_norm_after.bias",
    "lm_head.dense.weight",   "lm_head.dense.bias",          "lm_head.layer_norm.weight",
    "lm_head.layer_norm.bias", "lm_head.bias",
};
// The LM head's projection is embed_tokens.weight in every source (tied); checked, not loaded.
bool is_tied_head(const std::string& n) { return n == "lm_head.weight" || n == "lm_head.decoder.weight"; }
bool is_inv_freq(const std::string& n) { return ends_with(n, ".inv_freq"); }

[[noreturn]] void unknown_name(const std::string& name, Esm2Naming naming, const char* hint = "") {
  throw Error(detail::concat("tensor '", name, "' is not part of an ESM-2 model in ", esm2_naming_name(naming),
                             " naming", hint));
}

std::string layer_name(const std::string& name, const std::string& prefix, const Rename* table, size_t n,
                       const std::string& skip, Esm2Naming naming) {
  size_t dot = name.find('.', prefix.size());
  const std::string idx = name.substr(prefix.size(), dot - prefix.size());
  if (dot == std::string::npos || idx.empty() || idx.find_first_not_of("0123456789") != std::string::npos)
    unknown_name(name, naming);
  const std::string rest = name.substr(dot + 1);
  if (rest == skip) return "";
  for (size_t i = 0; i < n; ++i) {
    const std::string from = table[i].from;
    if (!starts_with(rest, from)) continue;
    const std::string param = rest.substr(from.size());
    if (param != "weight" && param != "bias") unknown_name(name, naming);
    return "layers." + idx + "." + table[i].to + param;
  }
  unknown_name(name, naming);
}


// HF transformers' EsmConfig (configuration_esm.py): only the rotary ESM-2 layout maps onto Esm2.
Esm2Config config_from_hf(const nlohmann::json& j, const std::string& what) {
  auto fail = [&](const auto&... a) { throw Error(detail::concat(what, ": ", a...)); };
  auto need = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) fail("HF ESM config has no '", key, "'");
    return j.at(key);
  };
  // EsmConfig's own defaults where a key is absent or null.
  auto opt = [&](const char* key, auto dflt) {
    return j.contains(key) && !j.at(key).is_null() ? j.at(key).get<decltype(dflt)>() : dflt;
  };
  Esm2Config c;
  try {
    c.num_layers = need("num_hidden_layers").get<int64_t>();
    c.embed_dim = need("hidden_size").get<int64_t>();
    c.attention_heads = need("num_attention_heads").get<int64_t>();
    c.ffn.d_ff = need("intermediate_size").get<int64_t>();
    c.token_dropout = opt("token_dropout", false);
    c.norm_eps = opt("layer_norm_eps", 1e-12);
    c.attention.rope_base = opt("rope_theta", 10000.0);  // transformers >= 5 writes it
    const std::string pos = opt("position_embedding_type", std::string("absolute"));
    if (pos != "rotary")
      fail("position_embedding_type '", pos, "': only rotary (ESM-2) models convert, not ESM-1b's learned positions");
    if (opt("vocab_size", kEsm2VocabSize) != kEsm2VocabSize)
      fail("vocab_size ", j.at("vocab_size").dump(), ": ESM-2 uses the 33-token ESM alphabet");
    if (opt("pad_token_id", kEsm2PaddingIdx) != kEsm2PaddingIdx)
      fail("pad_token_id ", j.at("pad_token_id").dump(), ": the ESM alphabet pads with 1");
    if (opt("mask_token_id", kEsm2MaskIdx) != kEsm2MaskIdx)
      fail("mask_token_id ", j.at("mask_token_id").dump(), ": the ESM alphabet's <mask> is 32");
    if (opt("emb_layer_norm_before", false)) fail("emb_layer_norm_before = true is not part of ESM-2");
    if (opt("hidden_act", std::string("gelu")) != "gelu")
      fail("hidden_act '", j.at("hidden_act").get<std::string>(), "': ESM-2 uses gelu");
    if (!opt("tie_word_embeddings", true)) fail("tie_word_embeddings = false: Esm2 ties its LM head to the embedding");
  } catch (const nlohmann::json::exception& e) {
    fail("HF ESM config: ", e.what());
  }
  c.validate();
  return c;
}

std::vector<io::NamedTensor> to_io(const nn::NamedTensors& named) {
  std::vector<io::NamedTensor> out;
  for (const auto& [n, t] : named) out.push_back({n, t});
  return out;
}

// inv_freq[i] = base^(-2i / head_dim): its length says the head size the weights were
// trained with. A config with the wrong number of heads has the same parameter shapes, so
// this is the one place that catches it.
void check_inv_freq(const std::string& path, const std::string& name, const Tensor& t, const Esm2Config& cfg) {
  auto fail = [&](const auto&... a) { throw Error(detail::concat("safetensors ", path, ": tensor '", name, "' ", a...)); };
  if (!cfg.attention.rotary) fail("is a rotary embedding buffer but the config has attention.rotary = false");
  const int64_t dh = cfg.embed_dim / cfg.attention_heads;
  if (t.dim() != 1 || t.size(0) != dh / 2)
    fail("has shape ", shape_str(t.shape()), ", expected [", dh / 2, "] for head size ", dh, " (embed_dim ",
         cfg.embed_dim, " / attention_heads ", cfg.attention_heads, "): is attention_heads right?");
  const auto v = t.to(DType::f64).to_vector<double>();
  for (int64_t i = 0; i < dh / 2; ++i) {
    const double want = std::pow(cfg.attention.rope_base, -2.0 * double(i) / double(dh));
    if (std::abs(v[size_t(i)] - want) > 1e-5 * want)
      fail("[", i, "] = ", v[size_t(i)], ", expected ", want, " (rope_base ", cfg.attention.rope_base, ", head size ",
           dh, ")");
  }
}

}  // namespace

const char* esm2_naming_name(Esm2Naming n) {
  switch (n) {
    case Esm2Naming::wensu: return "wensu";
    case Esm2Naming::fair_esm: return "fair-esm";
    case Esm2Naming::hf: return "hf";
  }
  return "?";
}

Esm2Naming detect_esm2_naming(const std::vector<io::NamedTensor>& tensors) {
  bool fair = false;
  for (const auto& t : tensors) {
    if (starts_with(t.name, "esm.")) return Esm2Naming::hf;
    fair = fair || t.name.find(".self_attn") != std::string::npos;
  }
  return fair ? Esm2Naming::fair_esm : Esm2Naming::wensu;
}

std::string esm2_parameter_name(const std::string& name, Esm2Naming naming) {
  if (naming == Esm2Naming::wensu) return name;  // the strict load checks them
  if (is_tied_head(name)) return "";
  if (naming == Esm2Naming::fair_esm) {
    if (starts_with(name, "layers."))
      return layer_name(name, "layers.", kFairEsmLayer, std::size(kFairEsmLayer), "self_attn.rot_emb.inv_freq", naming);
    if (starts_with(name, "contact_head.")) return "";
  } else {
    if (starts_with(name, "esm.encoder.layer."))
      return layer_name(name, "esm.encoder.layer.", kHfLayer, std::size(kHfLayer),
                        "attention.self.rotary_embeddings.inv_freq", naming);
    // transformers >= 5 keeps one rotary buffer for the model, older versions one per layer.
    if (starts_with(name, "esm.contact_head.") || name == "esm.embeddings.position_ids" ||
        name == "esm.rotary_embeddings.inv_freq")
      return "";
    for (const Rename& r : kHfGlobal)
      if (name == r.from) return r.to;
    if (starts_with(name, "esm.embeddings.position_embeddings."))
      unknown_name(name, naming, " (learned absolute positions are ESM-1b's; ESM-2 is rotary)");
    if (starts_with(name, "esm.embeddings.layer_norm."))
      unknown_name(name, naming, " (emb_layer_norm_before is not part of ESM-2)");
    if (starts_with(name, "esm.")) unknown_name(name, naming);
  }
  for (const char* n : kSharedGlobal)
    if (name == n) return name;
  unknown_name(name, naming);
}

Esm2Config esm2_config_from_any_json(const nlohmann::json& j, const std::string& what) {
  if (j.is_object() && j.contains("model_type")) {
    WENSU_CHECK(j.at("model_type") == "esm", what, ": model_type ", j.at("model_type").dump(),
                " is not an ESM model (expected \"esm\")");
    return config_from_hf(j, what);
  }
  try {
    return j.get<Esm2Config>();
  } catch (const Error& e) {
    throw Error(detail::concat(what, ": ", e.what()));
  }
}

Esm2Import load_esm2_safetensors(const std::string& path, const std::string& config_path) {
  io::SafetensorsFile file = io::load_safetensors(path);
  auto fail = [&](const auto&... a) { throw Error(detail::concat("safetensors ", path, ": ", a...)); };

  Esm2Config cfg;
  if (!config_path.empty()) {
    cfg = esm2_config_from_any_json(io::read_json_file(config_path),
                                    "config " + config_path);
  } else {
    auto it = file.metadata.find(kEsm2ConfigMetadataKey);
    if (it == file.metadata.end())
      fail("no '", kEsm2ConfigMetadataKey, "' metadata to take the model config from; pass the config "
           "(a Wensu ESM-2 config or the model's HF config.json)");
    const std::string what = detail::concat("safetensors ", path, " metadata ", kEsm2ConfigMetadataKey);
    cfg = esm2_config_from_any_json(io::parse_json(it->second, what), what);
  }

  Esm2Import out;
  out.naming = detect_esm2_naming(file.tensors);
  Generator gen(0);  // every parameter is overwritten below
  out.model = std::make_shared<Esm2>(cfg, gen);

  // Map names, remembering where each came from so errors can name the file's own tensor.
  std::vector<io::NamedTensor> mapped;
  std::map<std::string, std::string> source_of;  // Esm2 name -> file name
  std::map<std::string, size_t> index_of;        // Esm2 name -> position in mapped
  std::vector<const io::NamedTensor*> tied, inv_freq;
  for (const auto& nt : file.tensors) {
    std::string to;
    try {
      to = esm2_parameter_name(nt.name, out.naming);
    } catch (const Error& e) {
      fail(e.what());
    }
    if (to.empty()) {
      if (is_tied_head(nt.name)) tied.push_back(&nt);
      if (is_inv_freq(nt.name)) inv_freq.push_back(&nt);
      out.skipped.push_back(nt.name);
      continue;
    }
    if (!source_of.emplace(to, nt.name).second)
      fail("tensors '", source_of[to], "' and '", nt.name, "' both map to parameter '", to, "'");
    index_of[to] = mapped.size();
    mapped.push_back({to, nt.tensor});
  }

  // Check against the model built from the config before copying anything, in the file's names.
  const std::string shape_hint = detail::concat(" (config: num_layers ", cfg.num_layers, ", embed_dim ", cfg.embed_dim,
                                                ", d_ff ", cfg.d_ff(), ")");
  const auto params = to_io(out.model->named_parameters());
  std::set<std::string> wanted;
  for (const auto& p : params) {
    wanted.insert(p.name);
    auto it = source_of.find(p.name);
    if (it == source_of.end()) fail("no tensor for parameter '", p.name, "'", shape_hint);
    const Tensor& src = mapped[index_of.at(p.name)].tensor;
    if (src.shape() != p.tensor.shape())
      fail("tensor '", it->second, "' has shape ", shape_str(src.shape()), ", parameter '", p.name, "' needs ",
           shape_str(p.tensor.shape()), shape_hint);
  }
  for (const auto& m : mapped)
    if (!wanted.count(m.name))
      fail("tensor '", source_of[m.name], "' (parameter '", m.name, "') has no place in this model", shape_hint);
  for (const auto* t : inv_freq) check_inv_freq(path, t->name, t->tensor, cfg);
  io::load_tensors_into(mapped, params, path, "parameter", true);

  // A separate LM-head matrix must be the embedding (fair-esm and HF tie them).
  const auto embed = out.model->embed_tokens->weight.to(DType::f64).to_vector<double>();
  for (const auto* t : tied) {
    if (t->tensor.shape() != out.model->embed_tokens->weight.shape() || t->tensor.to(DType::f64).to_vector<double>() != embed)
      fail("tensor '", t->name, "' differs from the token embedding; Esm2 ties its LM head to embed_tokens.weight");
  }
  return out;
}

io::Checkpoint esm2_checkpoint(const Esm2& model) {
  io::Checkpoint ck;
  ck.model_config = nlohmann::json(model.config()).dump();
  ck.params = to_io(model.named_parameters());
  ck.meta["model"] = "esm2";
  return ck;
}

std::shared_ptr<Esm2> load_esm2_checkpoint(const std::string& path) {
  io::Checkpoint ck = io::load_checkpoint(path);
  auto it = ck.meta.find("model");
  WENSU_CHECK(it == ck.meta.end() || it->second == "esm2", "checkpoint ", path, " holds a '", it->second,
              "' model, not esm2");
  const std::string what = "checkpoint " + path + " model_config";
  const Esm2Config cfg = esm2_config_from_any_json(io::parse_json(ck.model_config, what), what);
  Generator gen(0);
  auto model = std::make_shared<Esm2>(cfg, gen);
  io::load_tensors_into(ck.params, to_io(model->named_parameters()), path, "parameter", true);
  return model;
}

}  // namespace wensu::models
