// The GPT decoder (models/gpt.h) and its GPT-2 import (models/gpt2_convert.h): the imported
// tiny GPT-2 of scripts/text/make_gpt2_fixture.py against HF transformers' logits and greedy
// continuation; KV-cached decoding against the full forward for learned and rotary positions,
// with and without biases, layernorm and rmsnorm, dense, GLU and MoE FFNs; checkpoint round
// trips; finite-difference gradients of the training forward; one-line errors for bad inputs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gradcheck.h"
#include "test_support.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/io/checkpoint.h"
#include "wensu/io/safetensors.h"
#include "wensu/models/esm2_convert.h"
#include "wensu/models/gpt2_convert.h"
#include "wensu/ops/loss.h"

using namespace wensu;
namespace fs = std::filesystem;

namespace {

std::string fixture_dir() { return (fs::path(test::test_data_dir()) / "gpt2_tiny").string(); }

std::map<std::string, Tensor> fixture_ref() {
  std::map<std::string, Tensor> out;
  for (auto& nt : io::load_safetensors((fs::path(test::test_data_dir()) / "gpt2_tiny_ref.safetensors").string()).tensors)
    out[nt.name] = nt.tensor;
  return out;
}

// max |a - b| / max |b|
double rel_error(const Tensor& a, const Tensor& b) {
  auto x = a.to(DType::f64).to_vector<double>(), y = b.to(DType::f64).to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    num = std::max(num, std::abs(x[i] - y[i]));
    den = std::max(den, std::abs(y[i]));
  }
  return num / den;
}

int64_t argmax_last(const Tensor& logits) {  // logits [1, T, V] -> argmax of row T-1
  const int64_t T = logits.size(1), V = logits.size(2);
  auto v = logits.narrow(1, T - 1, 1).to(DType::f64).to_vector<double>();
  int64_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (v[size_t(i)] > v[size_t(best)]) best = i;
  return best;
}

Tensor random_ids(int64_t B, int64_t L, int64_t vocab, uint64_t seed) {
  Generator gen(seed);
  auto u = Tensor::rand({B, L}, gen, DType::f64).to_vector<double>();
  std::vector<int64_t> ids;
  for (double x : u) ids.push_back(std::min<int64_t>(int64_t(x * double(vocab)), vocab - 1));
  return Tensor::from_vector(ids, {B, L});
}

models::GptConfig tiny_config() {
  models::GptConfig c;
  c.vocab_size = 37;
  c.max_positions = 24;
  c.embed_dim = 16;
  c.num_heads = 4;
  c.num_layers = 2;
  return c;
}

// A fresh folder per test, removed afterwards.
class GptFiles : public test::TempDirTest {
 protected:
  // A copy of the fixture's GPT-2 folder to break.
  std::string copy_fixture(const std::string& name) {
    const fs::path d = dir_ / name;
    fs::create_directories(d);
    for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(fs::path(fixture_dir()) / f, d / f);
    return d.string();
  }
};

// The error of `f` must be one line containing every piece.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& pieces) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << pieces.front();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

}  // namespace

// ---- config ----

TEST(GptConfig, JsonRoundTripDefaultsAndStrictKeys) {
  models::GptConfig c = nlohmann::json::parse(R"({"vocab_size": 100, "embed_dim": 32, "num_heads": 4,
                                                  "num_layers": 2, "positions": "rotary", "eos_id": 7})")
                            .get<models::GptConfig>();
  EXPECT_TRUE(c.attention.causal);
  EXPECT_EQ(c.d_ff(), 128);
  EXPECT_EQ(c.ffn.activation, "gelu_tanh");
  EXPECT_TRUE(c.layer_config().attention.rotary);
  nlohmann::json j = c;
  EXPECT_EQ(j.at("ffn").at("d_ff"), 128);  // written resolved
  EXPECT_EQ(j.at("attention").at("rotary"), true);
  EXPECT_EQ(nlohmann::json(j.get<models::GptConfig>()), j);

  auto parse = [](const char* text) { return nlohmann::json::parse(text).get<models::GptConfig>(); };
  // A partial section keeps the GPT's defaults for the keys it leaves out, not the nn ones.
  const auto partial = parse(R"({"attention": {"rope_base": 500.0}, "ffn": {"d_ff": 96}})");
  EXPECT_TRUE(partial.attention.causal);
  EXPECT_EQ(partial.attention.rope_base, 500.0);
  EXPECT_EQ(partial.ffn.activation, "gelu_tanh");
  EXPECT_EQ(partial.d_ff(), 96);
  expect_error([&] { parse(R"({"vocab": 3})"); }, {"unknown key 'vocab'"});
  expect_error([&] { parse(R"({"attention": null})"); }, {"attention", "object"});
  expect_error([&] { parse(R"({"ffn": {"dff": 3}})"); }, {"dff"});
  expect_error([&] { parse(R"({"attention": {"causal": false}})"); }, {"attention.causal"});
  expect_error([&] { parse(R"({"attention": {"rotary": true}})"); }, {"positions"});
  expect_error([&] { parse(R"({"positions": "alibi"})"); }, {"positions", "alibi"});
  expect_error([&] { parse(R"({"embed_dim": 30, "num_heads": 4})"); }, {"num_heads"});
  expect_error([&] { parse(R"({"norm": "batchnorm"})"); }, {"norm"});
  expect_error([&] { parse(R"({"eos_id": 50257})"); }, {"eos_id"});
  expect_error([&] { parse(R"({"ffn": {"activation": "gelu_new"}})"); }, {"ffn.activation"});
}

// ---- the HF GPT-2 fixture ----

TEST(Gpt2Import, LogitsMatchTransformers) {
  auto model = models::load_gpt2_hf(fixture_dir());
  model->eval();
  EXPECT_EQ(model->config().vocab_size, 512);
  EXPECT_EQ(model->config().eos_id, 511);
  EXPECT_EQ(model->config().ffn.activation, "gelu_tanh");
  EXPECT_FALSE(model->lm_head);  // tied
  auto ref = fixture_ref();
  NoGradGuard ng;
  Tensor logits = model->forward(ref.at("input_ids"));
  ASSERT_EQ(logits.shape(), ref.at("logits").shape());
  EXPECT_LE(rel_error(logits, ref.at("logits")), 1e-4);
}

// Greedy decoding (argmax every step) reproduces HF generate(do_sample=False), once by running
// the whole sequence again per token and once through the KV cache.
TEST(Gpt2Import, GreedyDecodingMatchesTransformers) {
  auto model = models::load_gpt2_hf(fixture_dir());
  model->eval();
  auto ref = fixture_ref();
  const auto prompt = ref.at("greedy_prompt").to_vector<int64_t>();
  const auto want = ref.at("greedy_tokens").to_vector<int64_t>();
  const int64_t n = int64_t(want.size());
  NoGradGuard ng;

  std::vector<int64_t> seq = prompt, recomputed;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = argmax_last(model->forward(Tensor::from_vector(seq, {1, int64_t(seq.size())})));
    recomputed.push_back(t);
    seq.push_back(t);
  }
  EXPECT_EQ(recomputed, want);

  auto cache = model->make_cache(1, int64_t(prompt.size()) + n);
  std::vector<int64_t> cached;
  int64_t t = argmax_last(model->forward_cached(Tensor::from_vector(prompt, {1, int64_t(prompt.size())}), cache, 1));
  for (int64_t i = 0; i < n; ++i) {
    cached.push_back(t);
    if (i + 1 < n) t = argmax_last(model->forward_cached(Tensor::from_vector(std::vector<int64_t>{t}, {1, 1}), cache));
  }
  EXPECT_EQ(cached, want);
  EXPECT_EQ(cache.length, int64_t(prompt.size()) + n - 1);
}

// ---- cached decoding ----

struct CacheCase {
  const char* label;
  std::string positions, norm, ffn;
  bool bias, tie;
};

// Prefill of 5 tokens, then 1, 1, a chunk of 3, then 1 at a time up to L: every chunk's logits
// equal the full forward's at the same positions.
TEST(Gpt, CachedDecodingEqualsFullForward) {
  const std::vector<CacheCase> cases = {
      {"learned_bias_layernorm", "learned", "layernorm", "dense", true, true},
      {"rotary_nobias_rmsnorm_glu", "rotary", "rmsnorm", "glu", false, true},
      {"learned_nobias_rmsnorm_untied", "learned", "rmsnorm", "dense", false, false},
      {"rotary_bias_layernorm_glu_untied", "rotary", "layernorm", "glu", true, false},
      {"learned_moe", "learned", "layernorm", "moe", true, true},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.label);
    models::GptConfig c = tiny_config();
    c.positions = k.positions;
    c.norm = k.norm;
    c.ffn.kind = k.ffn;
    c.ffn.activation = k.ffn == "glu" ? "silu" : "gelu_tanh";
    c.ffn.moe.num_experts = 3;
    c.ffn.moe.top_k = 2;
    c.bias = k.bias;
    c.tie_embeddings = k.tie;
    c.dropout = 0.1;  // ignored in eval mode and by the cache
    Generator gen(41);
    models::Gpt model(c, gen);
    model.eval();
    EXPECT_EQ(model.lm_head != nullptr, !k.tie);
    EXPECT_EQ(model.embed_positions != nullptr, k.positions == "learned");
    const int64_t B = 2, L = 17;
    Tensor ids = random_ids(B, L, c.vocab_size, 5);
    NoGradGuard ng;
    Tensor full = model.forward(ids);  // [B, L, V]

    auto cache = model.make_cache(B, 20);
    const std::vector<Tensor> k0 = cache.k;
    int64_t pos = 0;
    for (int64_t chunk : {5, 1, 1, 3, 1, 1, 1, 1, 1, 1, 1}) {
      Tensor got = model.forward_cached(ids.narrow(1, pos, chunk), cache);  // [B, chunk, V]
      ASSERT_EQ(got.shape(), (Shape{B, chunk, c.vocab_size}));
      EXPECT_LE(rel_error(got, full.narrow(1, pos, chunk)), 1e-5) << "positions " << pos << " .. " << pos + chunk - 1;
      pos += chunk;
    }
    ASSERT_EQ(pos, L);
    EXPECT_EQ(cache.length, L);
    for (size_t i = 0; i < k0.size(); ++i) EXPECT_TRUE(cache.k[i].shares_storage(k0[i]));  // filled in place

    // clear() starts over in the same memory; last_logits keeps the last positions only.
    cache.clear();
    EXPECT_LE(rel_error(model.forward_cached(ids.narrow(1, 0, 4), cache), full.narrow(1, 0, 4)), 1e-5);
    Tensor last2 = model.forward_cached(ids.narrow(1, 4, 5), cache, 2);  // positions 7, 8
    ASSERT_EQ(last2.shape(), (Shape{B, 2, c.vocab_size}));
    EXPECT_LE(rel_error(last2, full.narrow(1, 7, 2)), 1e-5);
    EXPECT_EQ(model.forward_cached(ids.narrow(1, 9, 1), cache, 3).shape(), (Shape{B, 1, c.vocab_size}));
  }
}

TEST(Gpt, CachedDecodingErrors) {
  models::GptConfig c = tiny_config();
  Generator gen(3);
  models::Gpt model(c, gen);
  model.eval();
  expect_error([&] { model.make_cache(1, 25); }, {"capacity", "max_positions = 24"});
  auto cache = model.make_cache(2, 6);
  expect_error([&] { model.forward_cached(random_ids(1, 2, 37, 1), cache); }, {"batch"});
  model.forward_cached(random_ids(2, 4, 37, 1), cache);
  expect_error([&] { model.forward_cached(random_ids(2, 3, 37, 2), cache); }, {"capacity 6"});
  EXPECT_EQ(cache.length, 4);  // a refused call leaves the cache as it was
  expect_error([&] { model.forward_cached(Tensor::zeros({2, 1}), cache); }, {"int64"});
  expect_error([&] { model.forward_cached(random_ids(2, 1, 37, 2), cache, -1); }, {"last_logits"});
  expect_error([&] { model.forward(random_ids(1, 25, 37, 1)); }, {"max_positions = 24"});
  expect_error([&] { model.forward(Tensor::from_vector(std::vector<int64_t>{3, 37}, {1, 2})); }, {"37"});

  models::GptConfig s = c;
  s.max_positions = 64;
  s.attention.kind = "block_sparse";
  s.attention.sparse.kind = "dense";
  s.attention.sparse.block = 32;
  models::Gpt sparse(s, gen);
  auto sc = sparse.make_cache(1, 8);
  expect_error([&] { sparse.forward_cached(random_ids(1, 3, 37, 1), sc); },
               {"dense attention", "generate by recomputing"});
  EXPECT_EQ(sparse.forward(random_ids(1, 40, 37, 1)).shape(), (Shape{1, 40, 37}));  // training path works
  s.attention.sparse.block = 8;
  expect_error([&] { models::Gpt bad(s, gen); }, {"gpt config", "block"});
}

// ---- training forward ----

// Central differences (float64) of the cross-entropy of next-token prediction against the
// autograd gradients, for a few entries of every kind of parameter, with learned and rotary
// positions.
TEST(Gpt, GradientsMatchFiniteDifferences) {
  for (std::string positions : {"learned", "rotary"}) {
    SCOPED_TRACE(positions);
    models::GptConfig c = tiny_config();
    c.vocab_size = 11;
    c.max_positions = 8;
    c.embed_dim = 8;
    c.num_heads = 2;
    c.positions = positions;
    c.tie_embeddings = positions == "learned";
    Generator gen(17);
    models::Gpt model(c, gen);
    model.convert_(DType::f64);
    Tensor ids = random_ids(2, 7, c.vocab_size, 9);
    Tensor inputs = ids.narrow(1, 0, 6).contiguous(), targets = ids.narrow(1, 1, 6).contiguous();
    auto loss = [&] { return ops::cross_entropy(model.forward(inputs), targets); };
    // Embedding rows of tokens that occur are among the checked entries for the small vocabulary.
    const int checked = test::expect_gradients_match_finite_differences(model, loss);
    EXPECT_GT(checked, 40);
  }
}

// ---- checkpoints ----

TEST_F(GptFiles, CheckpointRoundTripGivesIdenticalLogits) {
  models::GptConfig c = tiny_config();
  c.positions = "rotary";
  c.tie_embeddings = false;
  c.norm = "rmsnorm";
  c.ffn.kind = "glu";
  c.eos_id = 3;
  Generator gen(8);
  models::Gpt model(c, gen);
  model.eval();
  auto hf = models::load_gpt2_hf(fixture_dir());
  hf->eval();
  io::save_checkpoint(path("a.h5"), models::gpt_checkpoint(model));
  io::save_checkpoint(path("hf.h5"), models::gpt_checkpoint(*hf));
  EXPECT_EQ(io::inspect_checkpoint(path("a.h5")).meta.at("model"), "gpt");
  auto back = models::load_gpt_checkpoint(path("a.h5"));
  auto hf_back = models::load_gpt_checkpoint(path("hf.h5"));
  back->eval();
  hf_back->eval();
  EXPECT_EQ(nlohmann::json(back->config()), nlohmann::json(c));
  NoGradGuard ng;
  Tensor ids = random_ids(2, 9, c.vocab_size, 4);
  EXPECT_EQ(back->forward(ids).to_vector<float>(), model.forward(ids).to_vector<float>());
  Tensor hf_ids = fixture_ref().at("input_ids");
  EXPECT_EQ(hf_back->forward(hf_ids).to_vector<float>(), hf->forward(hf_ids).to_vector<float>());
}

TEST_F(GptFiles, CheckpointOfAnotherModelIsAnError) {
  models::Esm2Config ec;
  ec.num_layers = 1;
  ec.embed_dim = 8;
  ec.attention_heads = 2;
  Generator gen(1);
  models::Esm2 esm(ec, gen);
  io::save_checkpoint(path("esm.h5"), models::esm2_checkpoint(esm));
  expect_error([&] { models::load_gpt_checkpoint(path("esm.h5")); }, {"esm.h5", "'esm2' model", "not gpt"});

  models::Gpt gpt(tiny_config(), gen);
  io::Checkpoint ck = models::gpt_checkpoint(gpt);
  ck.meta.erase("model");
  io::save_checkpoint(path("anon.h5"), ck);
  expect_error([&] { models::load_gpt_checkpoint(path("anon.h5")); }, {"anon.h5", "meta 'model'"});
  // A GPT-2 folder loader given a checkpoint file.
  expect_error([&] { models::load_gpt2_hf(path("esm.h5")); }, {"esm.h5", "not a directory"});
}

// ---- import errors ----

TEST_F(GptFiles, MissingFilesAreErrors) {
  const std::string a = copy_fixture("a");
  fs::remove(fs::path(a) / "config.json");
  expect_error([&] { models::load_gpt2_hf(a); }, {"config.json", "not found"});
  const std::string b = copy_fixture("b");
  fs::remove(fs::path(b) / "model.safetensors");
  expect_error([&] { models::load_gpt2_hf(b); }, {"model.safetensors", "not found"});
}

TEST_F(GptFiles, UnsupportedConfigsAreErrors) {
  auto with = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    const std::string d = copy_fixture(name);
    std::ifstream in(fs::path(d) / "config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    in.close();
    edit(j);
    std::ofstream(fs::path(d) / "config.json") << j.dump(2);
    return d;
  };
  const std::string llama = with("llama", [](auto& j) { j["model_type"] = "llama"; });
  expect_error([&] { models::load_gpt2_hf(llama); }, {"config.json", "model_type", "llama"});
  const std::string esm = with("esm", [](auto& j) { j["model_type"] = "esm"; });
  expect_error([&] { models::load_gpt2_hf(esm); }, {"config.json", "model_type", "esm"});
  const std::string inv = with("inv", [](auto& j) { j["scale_attn_by_inverse_layer_idx"] = true; });
  expect_error([&] { models::load_gpt2_hf(inv); }, {"config.json", "scale_attn_by_inverse_layer_idx"});
  const std::string reorder = with("reorder", [](auto& j) { j["reorder_and_upcast_attn"] = true; });
  expect_error([&] { models::load_gpt2_hf(reorder); }, {"config.json", "reorder_and_upcast_attn"});
  const std::string unscaled = with("unscaled", [](auto& j) { j["scale_attn_weights"] = false; });
  expect_error([&] { models::load_gpt2_hf(unscaled); }, {"config.json", "scale_attn_weights"});
  const std::string act = with("act", [](auto& j) { j["activation_function"] = "quick_gelu"; });
  expect_error([&] { models::load_gpt2_hf(act); }, {"config.json", "activation_function", "quick_gelu"});
  const std::string noembd = with("noembd", [](auto& j) { j.erase("n_embd"); });
  expect_error([&] { models::load_gpt2_hf(noembd); }, {"config.json", "n_embd"});
  const std::string badtype = with("badtype", [](auto& j) { j["n_layer"] = "two"; });
  expect_error([&] { models::load_gpt2_hf(badtype); }, {"config.json", "n_layer"});

  // gelu (erf) and a numeric n_inner are GPT-2 settings Gpt computes: they convert (and then
  // the shapes must fit).
  const std::string gelu = with("gelu", [](auto& j) { j["activation_function"] = "gelu"; });
  EXPECT_EQ(models::load_gpt2_hf(gelu)->config().ffn.activation, "gelu");
  const std::string inner = with("inner", [](auto& j) { j["n_inner"] = 64; });
  expect_error([&] { models::load_gpt2_hf(inner); }, {"model.safetensors", "mlp.c_fc.weight", "[32, 64]"});
}

TEST_F(GptFiles, BadTensorsAreErrors) {
  const io::SafetensorsFile original = io::load_safetensors((fs::path(fixture_dir()) / "model.safetensors").string());
  auto with = [&](const std::string& name, const std::function<void(std::vector<io::NamedTensor>&)>& edit) {
    const std::string d = copy_fixture(name);
    auto tensors = original.tensors;
    edit(tensors);
    io::save_safetensors((fs::path(d) / "model.safetensors").string(), tensors, original.metadata);
    return d;
  };
  auto find = [](std::vector<io::NamedTensor>& ts, const std::string& n) -> io::NamedTensor& {
    for (auto& t : ts)
      if (t.name == n) return t;
    throw Error("fixture has no " + n);
  };

  const std::string missing = with("missing", [](auto& ts) {
    std::erase_if(ts, [](const io::NamedTensor& t) { return t.name == "transformer.h.1.ln_2.bias"; });
  });
  expect_error([&] { models::load_gpt2_hf(missing); }, {"model.safetensors", "transformer.h.1.ln_2.bias"});

  const std::string shape = with("shape", [&](auto& ts) {
    auto& t = find(ts, "transformer.h.0.attn.c_attn.weight");
    t.tensor = t.tensor.transpose(0, 1).contiguous();  // Linear's layout instead of Conv1D's
  });
  expect_error([&] { models::load_gpt2_hf(shape); }, {"transformer.h.0.attn.c_attn.weight", "[96, 32]", "[32, 96]"});

  const std::string extra = with("extra", [](auto& ts) { ts.push_back({"transformer.h.2.ln_1.weight", Tensor::ones({32})}); });
  expect_error([&] { models::load_gpt2_hf(extra); }, {"transformer.h.2.ln_1.weight", "n_layer 2"});

  const std::string untied = with("untied", [](auto& ts) { ts.push_back({"lm_head.weight", Tensor::zeros({512, 32})}); });
  expect_error([&] { models::load_gpt2_hf(untied); }, {"lm_head.weight", "tie_word_embeddings"});

  // Accepted variants: no "transformer." prefix (GPT2Model's names), the old mask buffers, a
  // tied lm_head.weight stored equal to wte, float16 storage.
  const std::string plain = with("plain", [&](auto& ts) {
    Tensor wte = find(ts, "transformer.wte.weight").tensor;
    for (auto& t : ts) t.name = t.name.substr(std::string("transformer.").size());
    ts.push_back({"h.0.attn.bias", Tensor::ones({1, 1, 64, 64})});
    ts.push_back({"h.0.attn.masked_bias", Tensor::full({}, -1e4)});
    ts.push_back({"lm_head.weight", wte});
  });
  auto ref = fixture_ref();
  auto a = models::load_gpt2_hf(fixture_dir()), b = models::load_gpt2_hf(plain);
  NoGradGuard ng;
  EXPECT_EQ(b->forward(ref.at("input_ids")).to_vector<float>(), a->forward(ref.at("input_ids")).to_vector<float>());

  const std::string half = with("half", [](auto& ts) {
    for (auto& t : ts) t.tensor = t.tensor.to(DType::f16);
  });
  EXPECT_LE(rel_error(models::load_gpt2_hf(half)->forward(ref.at("input_ids")), ref.at("logits")), 1e-2);
}

// Export to the HF layout and import again: the same function.
TEST_F(GptFiles, Gpt2ExportImportRoundTrip) {
  auto model = models::load_gpt2_hf(fixture_dir());
  const std::string dir = path("exported");
  models::save_gpt2_hf(*model, dir);
  auto again = models::load_gpt2_hf(dir);
  NoGradGuard ng;
  Tensor ids = random_ids(2, 16, model->config().vocab_size, 5);
  EXPECT_EQ(rel_error(again->forward(ids), model->forward(ids)), 0.0);
  models::GptConfig rotary = model->config();
  rotary.positions = "rotary";
  Generator gen(1);
  models::Gpt other(rotary, gen);
  EXPECT_THROW(models::save_gpt2_hf(other, path("rotary")), Error);
}
