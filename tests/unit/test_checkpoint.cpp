// Checkpoints: bit-exact round trips of every dtype, atomic writes, one-line load errors that
// name the file (and the tensor), and `wensu ckpt info` on real files.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/core/check.h"
#include "wensu/core/generator.h"
#include "wensu/core/tensor.h"
#include "wensu/io/checkpoint.h"
#include "wensu/version.h"

using namespace wensu;
using namespace wensu::io;
using wensu::test::read_text;
using wensu::test::run_wensu;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed afterwards.
class Checkpoints : public test::TempDirTest {};

// Tensors whose bits are set directly, so special values (NaN payloads, -0, subnormals,
// infinities) are part of the round trip.
template <typename T>
Tensor from_bits(const std::vector<T>& v, const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  EXPECT_EQ(size_t(t.numel()), v.size());
  if (!v.empty()) std::memcpy(t.raw_data(), v.data(), v.size() * sizeof(T));
  return t;
}

std::vector<uint32_t> f32_specials() {
  auto b = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
  };
  return {b(1.5f), b(-0.0f), b(std::numeric_limits<float>::infinity()),
          b(-std::numeric_limits<float>::infinity()), 0x7fc12345u /* NaN with payload */,
          b(std::numeric_limits<float>::denorm_min()), b(std::numeric_limits<float>::max()),
          b(-3.25e-20f)};
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

Checkpoint small_checkpoint() {
  Checkpoint ck;
  ck.step = 1234;
  ck.model_config = R"({"dim": 8, "layers": 2})";
  ck.train_config = R"({"lr": 0.001})";
  ck.params.push_back({"embed.weight", Tensor::full({4, 8}, 0.5)});
  ck.params.push_back({"layers.0.ffn.fc1.weight", Tensor::full({16, 8}, -1.0)});
  ck.params.push_back({"layers.0.ffn.fc1.bias", Tensor::zeros({16})});
  ck.optimizer.push_back({"adamw.exp_avg/embed.weight", Tensor::zeros({4, 8})});
  ck.rng["default"] = GeneratorState{7, 96};
  ck.extra.push_back({"loader.cursor", Tensor::from_vector(std::vector<int64_t>{3, 17}, {2})});
  return ck;
}

// HDF5 edits for corrupting files the way other tools or crashes would.
void set_root_attr(const std::string& file, const char* name, const std::function<void(hid_t)>& write) {
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  if (H5Aexists(f, name) > 0) H5Adelete(f, name);
  write(f);
  H5Fclose(f);
}

void write_string_attr(hid_t obj, const char* name, const std::string& value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, value.size());
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, t, value.data());
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
}

void write_int_attr(hid_t obj, const char* name, int64_t v) {
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, &v);
  H5Aclose(a);
  H5Sclose(s);
}

std::string load_error(const std::string& file) {
  try {
    load_checkpoint(file);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(CheckpointNames, EscapeRoundTrips) {
  for (std::string n : {"layers.0.attn.q_proj.weight", "adamw.exp_avg/layers.0.w", "a%2Fb", ".",
                        "..", "%", "/lead/and/trail/", "100%/done"}) {
    const std::string link = escape_tensor_name(n);
    EXPECT_EQ(link.find('/'), std::string::npos) << n;
    EXPECT_NE(link, ".");
    EXPECT_EQ(unescape_tensor_name(link), n);
  }
  EXPECT_EQ(escape_tensor_name("layers.0.w"), "layers.0.w");  // the common case reads as is
}

TEST_F(Checkpoints, RoundTripEveryDtypeBitForBit) {
  Checkpoint ck;
  const auto f32 = f32_specials();
  std::vector<uint64_t> f64 = {0x3ff8000000000000ull, 0x8000000000000000ull, 0x7ff8000000abcdefull,
                               0x0000000000000001ull, 0xfff0000000000000ull, 0x7fefffffffffffffull};
  std::vector<uint16_t> halves = {0x3fc0, 0x8000, 0x7f81 /* NaN payload */, 0x0001, 0xff80, 0x7bff};
  std::vector<int64_t> ints = {std::numeric_limits<int64_t>::min(), -1, 0, 1,
                               std::numeric_limits<int64_t>::max(), 42};
  ck.params.push_back({"f32.weight", from_bits(f32, {2, 4}, DType::f32)});
  ck.params.push_back({"f64.weight", from_bits(f64, {3, 2}, DType::f64)});
  ck.params.push_back({"bf16.weight", from_bits(halves, {6}, DType::bf16)});
  ck.params.push_back({"f16.weight", from_bits(halves, {2, 3}, DType::f16)});
  ck.params.push_back({"scalar", from_bits(std::vector<uint32_t>{0x40490fdbu}, {}, DType::f32)});
  ck.params.push_back({"empty", Tensor::zeros({0, 3})});
  // A strided view is written as its logical (contiguous) contents.
  Tensor base = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  ck.params.push_back({"transposed", base.transpose(0, 1)});
  // Names with dots, slashes and '%' survive exactly; section order is kept (not sorted).
  ck.optimizer.push_back({"adamw.exp_avg/f32.weight", from_bits(f32, {2, 4}, DType::f32)});
  ck.optimizer.push_back({"adamw.exp_avg_sq/100%/x", from_bits(halves, {3, 2}, DType::bf16)});
  ck.optimizer.push_back({"adamw.step", from_bits(ints, {6}, DType::i64)});
  ck.extra.push_back({"loader/cursor", from_bits(ints, {2, 3}, DType::i64)});

  save_checkpoint(path("ck.h5"), ck);
  Checkpoint got = load_checkpoint(path("ck.h5"));

  auto same_section = [](const std::vector<NamedTensor>& a, const std::vector<NamedTensor>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].name, b[i].name);
      EXPECT_TRUE(same_bits(a[i].tensor, b[i].tensor))
          << a[i].name << ": " << a[i].tensor.describe() << " vs " << b[i].tensor.describe();
    }
  };
  same_section(ck.params, got.params);
  same_section(ck.optimizer, got.optimizer);
  same_section(ck.extra, got.extra);
  EXPECT_EQ(got.params[6].tensor.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(got.params[4].tensor.shape(), Shape{});
  EXPECT_EQ(got.params[5].tensor.shape(), (Shape{0, 3}));
}

TEST_F(Checkpoints, RoundTripStepConfigsMetaAndRng) {
  Checkpoint ck = small_checkpoint();
  ck.step = int64_t(1) << 40;
  ck.model_config = R"({"name": "protein-lm", "dim": 64, "vocab": "ACDEFGHIKLMNPQRSTVWY", "note": "ünïcode"})";
  ck.train_config = "";
  ck.meta["run"] = "exp-7/seed 3";
  ck.meta["created"] = "2001-02-03T04:05:06Z";  // a caller's value is kept
  ck.rng.clear();
  ck.rng["default"] = GeneratorState{0, 0};
  ck.rng["dropout"] = GeneratorState{std::numeric_limits<uint64_t>::max(), 123456789012345ull};
  ck.rng["data/shuffle"] = GeneratorState{99, 4};

  save_checkpoint(path("ck.h5"), ck);
  Checkpoint got = load_checkpoint(path("ck.h5"));
  EXPECT_EQ(got.format_version, kCheckpointFormatVersion);
  EXPECT_EQ(got.step, ck.step);
  EXPECT_EQ(got.model_config, ck.model_config);
  EXPECT_EQ(got.train_config, "");
  ASSERT_EQ(got.rng.size(), 3u);
  for (const auto& [name, s] : ck.rng) {
    ASSERT_TRUE(got.rng.count(name)) << name;
    EXPECT_EQ(got.rng[name].seed, s.seed) << name;
    EXPECT_EQ(got.rng[name].offset, s.offset) << name;
  }
  EXPECT_EQ(got.meta["run"], "exp-7/seed 3");
  EXPECT_EQ(got.meta["created"], "2001-02-03T04:05:06Z");
  EXPECT_EQ(got.meta["wensu_version"], WENSU_VERSION);  // added by save_checkpoint
}

TEST_F(Checkpoints, GeneratorStatesRestoreTheStream) {
  Generator g(11);
  Tensor::randn({5}, g);
  Checkpoint ck;
  ck.rng["g"] = g.state();
  save_checkpoint(path("ck.h5"), ck);
  auto expected = Tensor::randn({8}, g).to_vector<float>();
  Generator h(0);
  h.set_state(load_checkpoint(path("ck.h5")).rng.at("g"));
  EXPECT_EQ(Tensor::randn({8}, h).to_vector<float>(), expected);
}

TEST_F(Checkpoints, InspectReadsShapesWithoutData) {
  save_checkpoint(path("ck.h5"), small_checkpoint());
  CheckpointInfo info = inspect_checkpoint(path("ck.h5"));
  EXPECT_EQ(info.step, 1234);
  ASSERT_EQ(info.params.size(), 3u);
  EXPECT_EQ(info.params[1].name, "layers.0.ffn.fc1.weight");
  EXPECT_EQ(info.params[1].shape, (Shape{16, 8}));
  EXPECT_EQ(info.params[1].dtype, DType::f32);
  EXPECT_EQ(info.params[1].nbytes, 16 * 8 * 4);
  EXPECT_EQ(info.extra[0].dtype, DType::i64);
  const std::string text = describe_checkpoint(info, true);
  EXPECT_NE(text.find("1234"), std::string::npos);
  EXPECT_NE(text.find("optimizer/adamw.exp_avg/embed.weight"), std::string::npos);
  EXPECT_NE(text.find("\"layers\": 2"), std::string::npos);  // pretty-printed config
  // A stored file in the meta (a tokenizer's, base64) is one line with its size, not its text.
  info.meta["tokenizer.file.x"] = std::string(5000, 'A');
  info.meta["short"] = "kept";
  const std::string with_file = describe_checkpoint(info);
  EXPECT_NE(with_file.find("tokenizer.file.x: (5000 bytes)"), std::string::npos) << with_file;
  EXPECT_NE(with_file.find("short: kept"), std::string::npos);
  EXPECT_EQ(with_file.find("AAAAAAAA"), std::string::npos);
}

TEST_F(Checkpoints, SaveLeavesNoTemporaryFiles) {
  Checkpoint ck = small_checkpoint();
  save_checkpoint(path("ck.h5"), ck);
  ck.step = 2000;
  save_checkpoint(path("ck.h5"), ck);  // overwrite in place
  EXPECT_EQ(files(), std::vector<std::string>{"ck.h5"});
  EXPECT_EQ(load_checkpoint(path("ck.h5")).step, 2000);
}

TEST_F(Checkpoints, SaveIntoMissingDirectoryThrowsAndLeavesNothing) {
  const std::string target = path("no/such/dir/ck.h5");
  try {
    save_checkpoint(target, small_checkpoint());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(target), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path("no")));
  EXPECT_TRUE(files().empty());
}

TEST_F(Checkpoints, FailedSaveKeepsThePreviousFile) {
  save_checkpoint(path("ck.h5"), small_checkpoint());
  Checkpoint bad = small_checkpoint();
  bad.step = 99;
  bad.params.push_back({"never.set", Tensor()});  // fails mid-write, after the temp file exists
  try {
    save_checkpoint(path("ck.h5"), bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("never.set"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path("ck.h5")), std::string::npos) << msg;
  }
  EXPECT_EQ(files(), std::vector<std::string>{"ck.h5"});
  EXPECT_EQ(load_checkpoint(path("ck.h5")).step, 1234);

  Checkpoint dup = small_checkpoint();
  dup.params.push_back(dup.params[0]);
  EXPECT_THROW(save_checkpoint(path("ck.h5"), dup), Error);
  EXPECT_EQ(files(), std::vector<std::string>{"ck.h5"});
}

TEST_F(Checkpoints, MissingFile) {
  const std::string msg = load_error(path("absent.h5"));
  EXPECT_NE(msg.find(path("absent.h5")), std::string::npos) << msg;
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
}

TEST_F(Checkpoints, GarbageFile) {
  std::ofstream(path("junk.h5"), std::ios::binary) << "this is not an HDF5 file at all\x01\x02\x03";
  const std::string msg = load_error(path("junk.h5"));
  EXPECT_EQ(msg, "checkpoint " + path("junk.h5") + " is not a readable HDF5 file (corrupt or truncated?)");
}

TEST_F(Checkpoints, TruncatedFile) {
  Checkpoint ck = small_checkpoint();
  ck.params.push_back({"big", Tensor::ones({64, 64})});  // data well past the metadata
  save_checkpoint(path("ck.h5"), ck);
  const auto size = fs::file_size(path("ck.h5"));
  fs::copy_file(path("ck.h5"), path("cut.h5"));
  fs::resize_file(path("cut.h5"), size / 2);
  const std::string msg = load_error(path("cut.h5"));
  EXPECT_NE(msg.find(path("cut.h5")), std::string::npos) << msg;
  EXPECT_NE(msg.find("corrupt or truncated"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST_F(Checkpoints, WrongFormatAttribute) {
  save_checkpoint(path("ck.h5"), small_checkpoint());
  set_root_attr(path("ck.h5"), "format", [](hid_t f) { write_string_attr(f, "format", "other-tool"); });
  const std::string msg = load_error(path("ck.h5"));
  EXPECT_NE(msg.find(path("ck.h5")), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a wensu checkpoint"), std::string::npos) << msg;
  EXPECT_NE(msg.find("other-tool"), std::string::npos) << msg;

  // A plain HDF5 file with no format attribute at all.
  hid_t f = H5Fcreate(path("plain.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(f);
  EXPECT_NE(load_error(path("plain.h5")).find("not a wensu checkpoint"), std::string::npos);
}

TEST_F(Checkpoints, NewerFormatVersion) {
  save_checkpoint(path("ck.h5"), small_checkpoint());
  const int newer = kCheckpointFormatVersion + 6;
  set_root_attr(path("ck.h5"), "format_version", [&](hid_t f) { write_int_attr(f, "format_version", newer); });
  const std::string msg = load_error(path("ck.h5"));
  EXPECT_EQ(msg, "checkpoint " + path("ck.h5") + ": written by a newer wensu: format version " +
                     std::to_string(newer) + ", this build reads up to " +
                     std::to_string(kCheckpointFormatVersion));
}

TEST_F(Checkpoints, DatasetSizeDisagreesWithShape) {
  save_checkpoint(path("ck.h5"), small_checkpoint());
  // A dataset created but never written (a writer that died half way): HDF5 would happily
  // return fill values for it.
  hid_t f = H5Fopen(path("ck.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t g = H5Gopen2(f, "params", H5P_DEFAULT);
  const hsize_t dims[2] = {4, 4};
  hid_t s = H5Screate_simple(2, dims, nullptr);
  hid_t d = H5Dcreate2(g, "layers.1.w", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  write_string_attr(d, "dtype", "float32");
  H5Dclose(d);
  H5Sclose(s);
  H5Gclose(g);
  H5Fclose(f);
  const std::string msg = load_error(path("ck.h5"));
  EXPECT_NE(msg.find(path("ck.h5")), std::string::npos) << msg;
  EXPECT_NE(msg.find("params/layers.1.w"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 4]"), std::string::npos) << msg;
}

TEST(CheckpointLoadInto, CopiesByNameAndCastsFloats) {
  std::vector<NamedTensor> from = {
      {"b", Tensor::from_vector(std::vector<float>{1.5f, -2.0f}, {2}).to(DType::bf16)},
      {"a", Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3})},
      {"n", Tensor::from_vector(std::vector<int64_t>{9}, {1})}};
  std::vector<NamedTensor> into = {
      {"a", Tensor::zeros({2, 3})}, {"b", Tensor::zeros({2})}, {"n", Tensor::zeros({1}, DType::i64)}};
  load_tensors_into(from, into, "ck.h5", "parameter");
  EXPECT_EQ(into[0].tensor.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(into[1].tensor.to_vector<float>(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(into[2].tensor.to_vector<int64_t>(), (std::vector<int64_t>{9}));
}

namespace {
std::string load_into_error(const std::vector<NamedTensor>& from, const std::vector<NamedTensor>& into,
                            bool strict = true) {
  try {
    load_tensors_into(from, into, "run/ck.h5", "parameter", strict);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST(CheckpointLoadInto, MissingTensor) {
  std::vector<NamedTensor> from = {{"a", Tensor::zeros({2})}};
  std::vector<NamedTensor> into = {{"a", Tensor::zeros({2})}, {"layers.0.ffn.fc2.bias", Tensor::zeros({2})}};
  EXPECT_EQ(load_into_error(from, into), "checkpoint run/ck.h5: parameter 'layers.0.ffn.fc2.bias' is missing");
}

TEST(CheckpointLoadInto, WrongShapeLeavesTargetsUntouched) {
  std::vector<NamedTensor> from = {{"a", Tensor::ones({2})}, {"layers.0.ffn.fc1.weight", Tensor::ones({64, 32})}};
  std::vector<NamedTensor> into = {{"a", Tensor::zeros({2})}, {"layers.0.ffn.fc1.weight", Tensor::zeros({128, 32})}};
  EXPECT_EQ(load_into_error(from, into),
            "checkpoint run/ck.h5: parameter 'layers.0.ffn.fc1.weight' has shape [64, 32], expected [128, 32]");
  EXPECT_EQ(into[0].tensor.to_vector<float>(), (std::vector<float>{0, 0}));  // nothing copied
}

TEST(CheckpointLoadInto, UnexpectedTensorWhenStrict) {
  std::vector<NamedTensor> from = {{"a", Tensor::ones({2})}, {"head.extra", Tensor::ones({3})}};
  std::vector<NamedTensor> into = {{"a", Tensor::zeros({2})}};
  const std::string msg = load_into_error(from, into);
  EXPECT_NE(msg.find("run/ck.h5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected parameter 'head.extra'"), std::string::npos) << msg;
  EXPECT_EQ(load_into_error(from, into, /*strict=*/false), "(no error)");
  EXPECT_EQ(into[0].tensor.to_vector<float>(), (std::vector<float>{1, 1}));
}

TEST(CheckpointLoadInto, IntegerIntoFloatIsRefused) {
  std::vector<NamedTensor> from = {{"a", Tensor::zeros({2}, DType::i64)}};
  std::vector<NamedTensor> into = {{"a", Tensor::zeros({2})}};
  EXPECT_EQ(load_into_error(from, into), "checkpoint run/ck.h5: parameter 'a' is int64, expected float32");
}

TEST_F(Checkpoints, CliInfo) {
  save_checkpoint(path("ck.h5"), small_checkpoint());
  const std::string out = path("out.txt"), err = path("err.txt");

  ASSERT_EQ(run_wensu("ckpt info '" + path("ck.h5") + "' --tensors", out, err), 0) << read_text(err);
  const std::string text = read_text(out);
  EXPECT_NE(text.find("1234"), std::string::npos) << text;
  EXPECT_NE(text.find("params/layers.0.ffn.fc1.weight"), std::string::npos) << text;
  EXPECT_NE(text.find("default: seed 7, offset 96"), std::string::npos) << text;

  std::ofstream(path("bad.h5"), std::ios::binary) << std::string(300, '\x7f');
  EXPECT_NE(run_wensu("ckpt info '" + path("bad.h5") + "'", out, err), 0);
  const std::string e = read_text(err);
  EXPECT_NE(e.find("wensu ckpt: error: checkpoint " + path("bad.h5")), std::string::npos) << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;  // one line, no HDF5 error stack

  EXPECT_EQ(run_wensu("ckpt", out, err), 2);
  EXPECT_EQ(run_wensu("ckpt frobnicate", out, err), 2);
  EXPECT_EQ(run_wensu("ckpt info --help", out, err), 0);
  EXPECT_NE(read_text(out).find("--tensors"), std::string::npos);
}
