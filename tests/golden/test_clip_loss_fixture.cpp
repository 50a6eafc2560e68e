// Golden test: ops::contrastive_loss against open_clip's ClipLoss as PyTorch computes it
// (tests/data/mm/clip_loss.h5, written in float64 by scripts/mm/make_clip_loss_fixture.py).
// The loss and its gradients w.r.t. both embeddings and log_scale must agree to 1e-10
// relative in float64 and to 1e-5 in float32.
#include <gtest/gtest.h>

#include <H5Cpp.h>

#include <cmath>
#include <string>

#include "test_support.h"
#include "wensu/ops/contrastive.h"

using namespace wensu;

namespace {

Tensor read_f64(const H5::Group& g, const std::string& name) {
  H5::DataSet ds = g.openDataSet(name);
  H5::DataSpace sp = ds.getSpace();
  std::vector<hsize_t> dims(size_t(sp.getSimpleExtentNdims()));
  sp.getSimpleExtentDims(dims.data());
  Tensor t = Tensor::empty(Shape(dims.begin(), dims.end()), DType::f64);
  ds.read(t.data<double>(), H5::PredType::NATIVE_DOUBLE);
  return t;
}

// max |got - want| / max |want|
double rel_error(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.numel(), want.numel());
  auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

class ClipLossFixture : public testing::TestWithParam<std::string> {};

TEST_P(ClipLossFixture, MatchesPyTorch) {
  H5::Exception::dontPrint();
  H5::H5File file(wensu::test::test_data_dir() + "/mm/clip_loss.h5", H5F_ACC_RDONLY);
  H5::Group g = file.openGroup(GetParam());
  const Tensor inputs[3] = {read_f64(g, "image_emb"), read_f64(g, "text_emb"), read_f64(g, "log_scale")};
  const Tensor loss = read_f64(g, "loss");
  const Tensor grads[3] = {read_f64(g, "grad_image_emb"), read_f64(g, "grad_text_emb"), read_f64(g, "grad_log_scale")};
  const char* names[3] = {"image_emb", "text_emb", "log_scale"};

  for (auto [dt, tol] : {std::pair<DType, double>{DType::f64, 1e-10}, {DType::f32, 1e-5}}) {
    Tensor x[3];
    for (int i = 0; i < 3; ++i) x[i] = inputs[i].to(dt).detach().set_requires_grad(true);
    Tensor got = ops::contrastive_loss(x[0], x[1], x[2]);
    EXPECT_EQ(got.dtype(), dt);
    EXPECT_LE(rel_error(got, loss), tol) << dtype_name(dt) << " loss " << got.item() << " vs " << loss.item();
    got.backward();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(x[i].grad().defined()) << names[i];
      const double err = rel_error(x[i].grad(), grads[i]);
      EXPECT_LE(err, tol) << dtype_name(dt) << " gradient of " << names[i] << " off by " << err;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ClipLossFixture, testing::Values("clip_init", "small_scale"));

}  // namespace
