// The safetensors reader against a file written by the reference library
// (tests/data/safetensors_dtypes.safetensors, scripts/make_esm2_fixture.py), a write/read round
// trip over every dtype, and one clear error per kind of broken file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "test_support.h"
#include "wensu/io/safetensors.h"

using namespace wensu;
namespace fs = std::filesystem;

namespace {

// The values the fixture script stores in every dtype.
const std::vector<double> kValues = {0.0, 1.0, -2.5, 3.140625, 1e-3, -65504.0, 0.333251953125};

const Tensor& find(const io::SafetensorsFile& f, const std::string& name) {
  for (const auto& t : f.tensors)
    if (t.name == name) return t.tensor;
  throw Error("no tensor " + name);
}

std::vector<double> as_doubles(const Tensor& t) {
  if (t.dtype() == DType::bf16 || t.dtype() == DType::f16) return t.to(DType::f32).to_vector<double>();
  return t.to_vector<double>();
}

class SafetensorsFiles : public test::TempDirTest {
 protected:
  // A file with the given header text and `data_bytes` zero bytes of data.
  std::string raw(const std::string& name, const std::string& header, size_t data_bytes, int64_t len_delta = 0) {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    uint64_t len = header.size() + uint64_t(len_delta);
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << header << std::string(data_bytes, '\0');
    return p;
  }
  static std::string error_of(const std::string& file) {
    try {
      io::load_safetensors(file);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

}  // namespace

TEST(Safetensors, ReadsTheReferenceLibrarysFile) {
  io::SafetensorsFile f = io::load_safetensors(wensu::test::test_data_dir() + "/safetensors_dtypes.safetensors");
  EXPECT_EQ(f.metadata.at("note"), "wensu fixture");
  EXPECT_EQ(f.tensors.size(), 6u);
  EXPECT_EQ(find(f, "x_f32").dtype(), DType::f32);
  EXPECT_EQ(find(f, "x_bf16").dtype(), DType::bf16);
  EXPECT_EQ(find(f, "x_f16").dtype(), DType::f16);
  const auto f32 = as_doubles(find(f, "x_f32")), f64 = as_doubles(find(f, "x_f64"));
  const auto h = as_doubles(find(f, "x_f16")), bh = as_doubles(find(f, "x_bf16"));
  for (size_t i = 0; i < kValues.size(); ++i) {
    const double x = kValues[i];
    EXPECT_EQ(f64[i], x);
    EXPECT_EQ(f32[i], double(float(x)));
    // Rounded to nearest: within half a unit in the last place (11 and 8 significant bits).
    EXPECT_LE(std::abs(h[i] - x), std::ldexp(std::abs(x), -11)) << x;
    EXPECT_LE(std::abs(bh[i] - x), std::ldexp(std::abs(x), -8)) << x;
  }
  EXPECT_EQ(h[5], -65504.0);  // exact in float16 (its largest finite value)
  EXPECT_EQ(bh[3], 3.140625);  // exact in bfloat16
  EXPECT_EQ(find(f, "x_i64").to_vector<int64_t>(),
            (std::vector<int64_t>{0, 1, -2, 3, int64_t(1) << 40, -(int64_t(1) << 40), 7}));
  const Tensor& m = find(f, "m");
  EXPECT_EQ(m.shape(), (Shape{2, 3}));
  EXPECT_EQ(m.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

TEST_F(SafetensorsFiles, RoundTripEveryDtype) {
  Generator gen(5);
  Tensor a = Tensor::randn({3, 4}, gen);
  std::vector<io::NamedTensor> in = {
      {"f32_transposed", a.transpose(0, 1)},  // a strided view: written contiguous
      {"f64", Tensor::randn({5}, gen, DType::f64)},
      {"bf16", a.to(DType::bf16)},
      {"f16", a.to(DType::f16)},
      {"i64", Tensor::from_vector(std::vector<int64_t>{-3, 0, 9}, {3})},
      {"scalar", Tensor::full({}, 2.5)},
      {"empty", Tensor::zeros({0, 4})},
  };
  io::save_safetensors(path("rt.safetensors"), in, {{"k", "v"}});
  {
    uint64_t header_len = 0;
    std::ifstream(path("rt.safetensors"), std::ios::binary).read(reinterpret_cast<char*>(&header_len), 8);
    EXPECT_EQ(header_len % 8, 0u);  // padded, so the data starts 8-byte aligned
  }
  io::SafetensorsFile out = io::load_safetensors(path("rt.safetensors"));
  EXPECT_EQ(out.metadata.at("k"), "v");
  ASSERT_EQ(out.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    SCOPED_TRACE(in[i].name);
    EXPECT_EQ(out.tensors[i].name, in[i].name);  // data order = write order
    const Tensor& got = out.tensors[i].tensor;
    EXPECT_EQ(got.dtype(), in[i].tensor.dtype());
    EXPECT_EQ(got.shape(), in[i].tensor.shape());
    if (got.dtype() == DType::i64)
      EXPECT_EQ(got.to_vector<int64_t>(), in[i].tensor.to_vector<int64_t>());
    else
      EXPECT_EQ(as_doubles(got), as_doubles(in[i].tensor));
  }
  EXPECT_THROW(io::save_safetensors(path("dup.safetensors"), {{"x", a}, {"x", a}}), Error);
}

TEST_F(SafetensorsFiles, BrokenFilesGiveOneClearError) {
  auto expect_error = [&](const std::string& file, const std::string& what) {
    const std::string e = error_of(file);
    EXPECT_NE(e.find("safetensors " + file), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  };
  const std::string ok = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_EQ(error_of(raw("ok.safetensors", ok, 8)), "");

  expect_error(path("missing.safetensors"), "cannot open");
  {
    std::ofstream(path("short.safetensors")) << "abc";
    expect_error(path("short.safetensors"), "too short");
  }
  expect_error(raw("len.safetensors", ok, 8, 1000), "runs past the end of the file");
  expect_error(raw("json.safetensors", "{\"t\": [1,", 8), "not valid JSON");
  expect_error(raw("data.safetensors", ok, 4), "tensor 't' data [0, 8) runs past the end");
  expect_error(raw("dtype.safetensors", R"({"t":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2),
               "tensor 't': dtype 'F8_E4M3'");
  expect_error(raw("bytes.safetensors", R"({"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})", 8),
               "wrong dtype or shape");
  expect_error(raw("keys.safetensors", R"({"t":{"dtype":"F32","shape":[2]}})", 8), "no 'data_offsets'");
  expect_error(raw("overlap.safetensors",
                   R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                   8),
               "overlaps");
}
