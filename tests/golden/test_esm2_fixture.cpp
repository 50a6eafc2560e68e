// Golden test: Esm2 against fair-esm and HF transformers (tests/data/esm2_tiny*.safetensors and
// esm2_tiny_logits.h5, written by scripts/make_esm2_fixture.py: random weights in float32,
// reference outputs in float64). Three padded sequences with <mask> tokens in different
// proportions, so padding, token dropout and rotary positions all show in the logits.
// Also: `wensu convert esm2` round trip and the errors bad inputs give.
#include <gtest/gtest.h>
#include <unistd.h>

#include <H5Cpp.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/models/esm2_convert.h"

using namespace wensu;
using wensu::test::read_text;
using wensu::test::run_wensu;
namespace fs = std::filesystem;

namespace {

Tensor read_dataset(const H5::Group& g, const std::string& name, DType want) {
  H5::DataSet ds = g.openDataSet(name);
  H5::DataSpace sp = ds.getSpace();
  std::vector<hsize_t> dims(size_t(sp.getSimpleExtentNdims()));
  sp.getSimpleExtentDims(dims.data());
  Tensor t = Tensor::empty(Shape(dims.begin(), dims.end()), want);
  if (want == DType::i64)
    ds.read(t.data<int64_t>(), H5::PredType::NATIVE_INT64);
  else
    ds.read(t.data<double>(), H5::PredType::NATIVE_DOUBLE);
  return t;
}

int64_t read_attr(const H5::Group& g, const char* name) {
  int64_t v = 0;
  g.openAttribute(name).read(H5::PredType::NATIVE_INT64, &v);
  return v;
}

// max |a - b| / max |b| over every element (padded positions included).
double rel_error(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  auto a = got.to(DType::f64).to_vector<double>(), b = want.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

std::string data(const std::string& name) { return wensu::test::test_data_dir() + "/" + name; }

struct Reference {
  Tensor tokens, logits, representations;
  int64_t num_layers, embed_dim, attention_heads;
};

Reference read_reference(const std::string& group) {
  H5::Exception::dontPrint();
  H5::H5File file(data("esm2_tiny_logits.h5"), H5F_ACC_RDONLY);
  H5::Group g = file.openGroup(group);
  return {read_dataset(g, "tokens", DType::i64),
          read_dataset(g, "logits", DType::f64),
          read_dataset(g, "representations", DType::f64),
          read_attr(g, "num_layers"),
          read_attr(g, "embed_dim"),
          read_attr(g, "attention_heads")};
}

void expect_matches(models::Esm2& model, const Reference& ref) {
  const auto& c = model.config();
  EXPECT_EQ(c.num_layers, ref.num_layers);
  EXPECT_EQ(c.embed_dim, ref.embed_dim);
  EXPECT_EQ(c.attention_heads, ref.attention_heads);
  model.eval();
  NoGradGuard ng;
  Tensor reps;
  Tensor logits = model.forward(ref.tokens, &reps);
  const double e_logits = rel_error(logits, ref.logits), e_reps = rel_error(reps, ref.representations);
  EXPECT_LE(e_logits, 1e-4);
  EXPECT_LE(e_reps, 1e-4);
  std::printf("  relative error: logits %.2e, representations %.2e\n", e_logits, e_reps);
}

}  // namespace

TEST(Esm2Golden, MatchesFairEsm) {
  models::Esm2Import imp = models::load_esm2_safetensors(data("esm2_tiny.safetensors"));
  EXPECT_EQ(imp.naming, models::Esm2Naming::fair_esm);
  EXPECT_TRUE(imp.model->config().token_dropout);
  expect_matches(*imp.model, read_reference("fair_esm"));
}

TEST(Esm2Golden, MatchesHfTransformers) {
  models::Esm2Import imp =
      models::load_esm2_safetensors(data("esm2_tiny_hf.safetensors"), data("esm2_tiny_hf.config.json"));
  EXPECT_EQ(imp.naming, models::Esm2Naming::hf);
  expect_matches(*imp.model, read_reference("hf"));
}

// The fixture would not catch a missing token dropout unless its masks move the logits.
TEST(Esm2Golden, TokenDropoutChangesTheFixtureLogits) {
  Reference ref = read_reference("fair_esm");
  models::Esm2Import imp = models::load_esm2_safetensors(data("esm2_tiny.safetensors"));
  models::Esm2Config cfg = imp.model->config();
  cfg.token_dropout = false;
  Generator gen(0);
  models::Esm2 plain(cfg, gen);
  {
    NoGradGuard ng;
    auto src = imp.model->named_parameters(), dst = plain.named_parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].second.copy_(src[i].second);
  }
  NoGradGuard ng;
  EXPECT_GT(rel_error(plain.forward(ref.tokens), ref.logits), 1e-2);
}

namespace {

class Esm2Convert : public wensu::test::CliTest {
 protected:
};

std::string load_error(const std::string& file, const std::string& config = "") {
  try {
    models::load_esm2_safetensors(file, config);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_F(Esm2Convert, CliCheckpointGivesIdenticalLogits) {
  const std::string ck = path("esm2.h5");
  ASSERT_EQ(run("convert esm2 '" + data("esm2_tiny.safetensors") + "' '" + ck + "'"), 0) << err();
  auto from_ckpt = models::load_esm2_checkpoint(ck);
  auto from_st = models::load_esm2_safetensors(data("esm2_tiny.safetensors")).model;
  EXPECT_EQ(from_ckpt->config().num_layers, from_st->config().num_layers);
  from_ckpt->eval();
  from_st->eval();
  NoGradGuard ng;
  Tensor tokens = read_reference("fair_esm").tokens;
  EXPECT_EQ(rel_error(from_ckpt->forward(tokens), from_st->forward(tokens).to(DType::f64)), 0.0);
  EXPECT_EQ(io::inspect_checkpoint(ck).meta.at("model"), "esm2");

  // HF weights with their config.json convert too.
  ASSERT_EQ(run("convert esm2 '" + data("esm2_tiny_hf.safetensors") + "' '" + path("hf.h5") + "' --config '" +
                data("esm2_tiny_hf.config.json") + "'"),
            0)
      << err();
  EXPECT_EQ(models::load_esm2_checkpoint(path("hf.h5"))->config().embed_dim, 16);
}

TEST_F(Esm2Convert, HelpAndUsage) {
  EXPECT_EQ(run("convert --help"), 0) << err();
  EXPECT_EQ(run("convert esm2 --help"), 0) << err();
  EXPECT_NE(read_text(path("out.txt")).find("--config"), std::string::npos);
  EXPECT_EQ(run("convert esm3 a b"), 2);
  EXPECT_EQ(run("convert esm2 only-one-arg"), 1);
}

TEST_F(Esm2Convert, TruncatedFileFailsWithOneLineNamingFileAndTensor) {
  const std::string bad = path("truncated.safetensors");
  fs::copy_file(data("esm2_tiny.safetensors"), bad);
  fs::resize_file(bad, fs::file_size(bad) - 1000);
  const std::string e = load_error(bad);
  EXPECT_NE(e.find(bad), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  EXPECT_NE(e.find("tensor '"), std::string::npos) << e;

  // The CLI prints the same, on one line, exit 1, and writes nothing.
  EXPECT_EQ(run("convert esm2 '" + bad + "' '" + path("out.h5") + "'"), 1);
  const std::string cli = err();
  EXPECT_NE(cli.find("truncated"), std::string::npos) << cli;
  EXPECT_EQ(std::count(cli.begin(), cli.end(), '\n'), 1) << cli;
  EXPECT_FALSE(fs::exists(path("out.h5")));
}

TEST_F(Esm2Convert, WrongDtypeFailsNamingTheTensor) {
  // Rewrite the header of the fixture: one tensor claims I32 (not read), then one claims F16
  // (half the bytes its offsets hold).
  std::string bytes = read_text(data("esm2_tiny.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  const std::string rest = bytes.substr(8 + n);
  auto write = [&](const nlohmann::json& h, const std::string& file) {
    std::string text = h.dump();
    uint64_t len = text.size();
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << text << rest;
  };
  nlohmann::json h = header;
  h["lm_head.bias"]["dtype"] = "I32";
  write(h, path("i32.safetensors"));
  std::string e = load_error(path("i32.safetensors"));
  EXPECT_NE(e.find("lm_head.bias"), std::string::npos) << e;
  EXPECT_NE(e.find("I32"), std::string::npos) << e;

  h = header;
  h["embed_tokens.weight"]["dtype"] = "F16";
  write(h, path("f16.safetensors"));
  e = load_error(path("f16.safetensors"));
  EXPECT_NE(e.find("embed_tokens.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("wrong dtype or shape"), std::string::npos) << e;
}

TEST_F(Esm2Convert, ConfigThatDoesNotFitTheWeightsIsAnError) {
  nlohmann::json cfg = {{"num_layers", 2}, {"embed_dim", 32}, {"attention_heads", 8}};
  std::ofstream(path("heads.json")) << cfg.dump();
  // Same parameter shapes, different head size: only the rotary buffer tells.
  std::string e = load_error(data("esm2_tiny.safetensors"), path("heads.json"));
  EXPECT_NE(e.find("attention_heads"), std::string::npos) << e;
  EXPECT_NE(e.find("inv_freq"), std::string::npos) << e;

  cfg["attention_heads"] = 4;
  cfg["num_layers"] = 3;
  std::ofstream(path("layers.json")) << cfg.dump();
  e = load_error(data("esm2_tiny.safetensors"), path("layers.json"));
  EXPECT_NE(e.find("layers.2."), std::string::npos) << e;

  cfg["num_layers"] = 2;
  cfg["embed_dim"] = 48;
  std::ofstream(path("dim.json")) << cfg.dump();
  e = load_error(data("esm2_tiny.safetensors"), path("dim.json"));
  EXPECT_NE(e.find("has shape"), std::string::npos) << e;
}

TEST(Esm2Names, FairEsmAndHfTables) {
  using models::Esm2Naming;
  using models::esm2_parameter_name;
  EXPECT_EQ(esm2_parameter_name("layers.11.self_attn.q_proj.weight", Esm2Naming::fair_esm), "layers.11.attn.q_proj.weight");
  EXPECT_EQ(esm2_parameter_name("layers.0.final_layer_norm.bias", Esm2Naming::fair_esm), "layers.0.ln2.bias");
  EXPECT_EQ(esm2_parameter_name("layers.3.fc1.weight", Esm2Naming::fair_esm), "layers.3.ffn.fc1.weight");
  EXPECT_EQ(esm2_parameter_name("layers.3.self_attn.rot_emb.inv_freq", Esm2Naming::fair_esm), "");
  EXPECT_EQ(esm2_parameter_name("contact_head.regression.weight", Esm2Naming::fair_esm), "");
  EXPECT_EQ(esm2_parameter_name("esm.encoder.layer.2.attention.output.dense.bias", Esm2Naming::hf),
            "layers.2.attn.out_proj.bias");
  EXPECT_EQ(esm2_parameter_name("esm.encoder.layer.2.output.dense.weight", Esm2Naming::hf), "layers.2.ffn.fc2.weight");
  EXPECT_EQ(esm2_parameter_name("esm.encoder.layer.2.LayerNorm.weight", Esm2Naming::hf), "layers.2.ln2.weight");
  EXPECT_EQ(esm2_parameter_name("esm.encoder.layer.2.attention.self.rotary_embeddings.inv_freq", Esm2Naming::hf), "");
  EXPECT_EQ(esm2_parameter_name("lm_head.decoder.weight", Esm2Naming::hf), "");
  EXPECT_THROW(esm2_parameter_name("esm.embeddings.position_embeddings.weight", Esm2Naming::hf), Error);
  EXPECT_THROW(esm2_parameter_name("layers.x.fc1.weight", Esm2Naming::fair_esm), Error);
  EXPECT_THROW(esm2_parameter_name("layers.0.fc1.scale", Esm2Naming::fair_esm), Error);
}
