// Golden test: one pre-LN transformer layer against PyTorch (tests/data/transformer_layer.h5,
// written in float64 by scripts/make_fixtures.py). Wensu runs in float32; outputs and every
// gradient must agree to float32 rounding: max |wensu - torch| / max |torch| <= 1e-5.
#include <gtest/gtest.h>

#include <H5Cpp.h>

#include <cmath>

#include "test_support.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/nn/transformer.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/reduce.h"

using namespace wensu;

namespace {

Tensor read_dataset(const H5::Group& g, const std::string& name, DType want) {
  H5::DataSet ds = g.openDataSet(name);
  H5::DataSpace sp = ds.getSpace();
  std::vector<hsize_t> dims(size_t(sp.getSimpleExtentNdims()));
  sp.getSimpleExtentDims(dims.data());
  Shape shape(dims.begin(), dims.end());
  if (want == DType::i64) {
    Tensor t = Tensor::empty(shape, DType::i64);
    ds.read(t.data<int64_t>(), H5::PredType::NATIVE_INT64);
    return t;
  }
  Tensor t = Tensor::empty(shape, DType::f64);
  ds.read(t.data<double>(), H5::PredType::NATIVE_DOUBLE);
  return t;
}

template <typename T>
T read_attr(const H5::Group& g, const char* name) {
  T v{};
  H5::Attribute a = g.openAttribute(name);
  a.read(std::is_same_v<T, double> ? H5::PredType::NATIVE_DOUBLE : H5::PredType::NATIVE_INT64, &v);
  return v;
}

// Relative error as max|a-b| / max|b|. A reference that is zero up to float64 rounding (the
// k_proj bias gradient without rotary: softmax cancels a per-row constant) is compared in
// absolute terms against the scale of the layer's other values instead.
double g_worst = 0;  // largest relative error seen in the current case, printed at its end

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  if (den < 1e-10) {
    EXPECT_LE(num, 1e-5) << what << ": reference is zero, wensu has " << num;
    return;
  }
  EXPECT_LE(num / den, 1e-5) << what << ": relative error " << num / den;
  g_worst = std::max(g_worst, num / den);
}

class TransformerFixture : public testing::TestWithParam<std::string> {};

TEST_P(TransformerFixture, MatchesPyTorchToFloat32Rounding) {
  H5::Exception::dontPrint();
  g_worst = 0;
  H5::H5File file(wensu::test::test_data_dir() + "/transformer_layer.h5", H5F_ACC_RDONLY);
  H5::Group g = file.openGroup(GetParam());
  nn::TransformerConfig cfg;
  cfg.d_model = read_attr<int64_t>(g, "d_model");
  cfg.n_heads = read_attr<int64_t>(g, "n_heads");
  cfg.ffn.d_ff = read_attr<int64_t>(g, "d_ff");
  cfg.attention.rotary = read_attr<int64_t>(g, "rotary") != 0;
  cfg.attention.causal = read_attr<int64_t>(g, "causal") != 0;
  cfg.norm_eps = read_attr<double>(g, "ln_eps");
  Generator gen(0);
  nn::TransformerLayer layer(cfg, gen);
  H5::Group params = g.openGroup("params"), grads = g.openGroup("grads");
  ASSERT_EQ(hsize_t(layer.named_parameters().size()), params.getNumObjs()) << "parameter count differs from the fixture";
  for (auto& [name, p] : layer.named_parameters()) {
    NoGradGuard ng;
    p.copy_(read_dataset(params, name, DType::f64));
  }
  Tensor x = read_dataset(g, "x", DType::f64).to(DType::f32).detach().set_requires_grad(true);
  Tensor mask = read_dataset(g, "key_padding_mask", DType::i64);
  Tensor gy = read_dataset(g, "grad_y", DType::f64).to(DType::f32);
  Tensor y = layer.forward(x, mask);
  expect_close(y, read_dataset(g, "y", DType::f64), "y");
  ops::sum(y * gy).backward();
  expect_close(x.grad(), read_dataset(g, "grad_x", DType::f64), "grad_x");
  for (auto& [name, p] : layer.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    expect_close(p.grad(), read_dataset(grads, name, DType::f64), "grad " + name);
  }
  std::printf("  %s: largest relative error over y and all gradients: %.2e\n", GetParam().c_str(), g_worst);
}

INSTANTIATE_TEST_SUITE_P(Golden, TransformerFixture, testing::Values("plain", "rotary_causal"));

}  // namespace
