// ops/contrastive.h: l2_normalize, similarity_matrix and contrastive_loss against plain loops in
// double, their gradients against central finite differences in double, float32 against
// float64, the local parts that data parallelism adds up, and the cap on the scale.
// (PyTorch's values are checked in tests/golden/test_clip_loss_fixture.cpp, the gather across
// ranks in tests/mpi/test_gather.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/generator.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/contrastive.h"
#include "wensu/ops/reduce.h"

using namespace wensu;

namespace {

using Tensors = std::vector<Tensor>;
using Fn = std::function<Tensor(const Tensors&)>;

// [B, D] float64 embeddings, not normalised: standard normal rows scaled by 0.2 .. 5.
Tensor embeddings(Generator& g, int64_t B, int64_t D) {
  auto x = Tensor::randn({B, D}, g, DType::f64).to_vector<double>();
  auto s = Tensor::rand({B}, g, DType::f64, 0.2, 5.0).to_vector<double>();
  for (int64_t i = 0; i < B; ++i)
    for (int64_t k = 0; k < D; ++k) x[size_t(i * D + k)] *= s[size_t(i)];
  return Tensor::from_vector(x, {B, D});
}

Tensor scalar(double v) { return Tensor::from_vector(std::vector<double>{v}, {}); }

double max_rel_error(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

// ---- plain references, loops in double ----

std::vector<double> ref_normalize(const std::vector<double>& x, int64_t rows, int64_t D, double eps) {
  std::vector<double> y(x.size());
  for (int64_t i = 0; i < rows; ++i) {
    double ss = 0;
    for (int64_t k = 0; k < D; ++k) ss += x[size_t(i * D + k)] * x[size_t(i * D + k)];
    const double n = std::max(std::sqrt(ss), eps);
    for (int64_t k = 0; k < D; ++k) y[size_t(i * D + k)] = x[size_t(i * D + k)] / n;
  }
  return y;
}

// The local part over rows [first, first + count) of the symmetric InfoNCE (contrastive.h).
double ref_contrastive(const Tensor& img, const Tensor& txt, double log_scale, int64_t first, int64_t count,
                       double max_scale = 100.0) {
  const int64_t B = img.size(0), D = img.size(1);
  auto I = ref_normalize(img.to_vector<double>(), B, D, 1e-12);
  auto T = ref_normalize(txt.to_vector<double>(), B, D, 1e-12);
  const double s = std::min(std::exp(log_scale), max_scale);
  std::vector<double> S(size_t(B * B));
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < B; ++j) {
      double d = 0;
      for (int64_t k = 0; k < D; ++k) d += I[size_t(i * D + k)] * T[size_t(j * D + k)];
      S[size_t(i * B + j)] = s * d;
    }
  // -log softmax of entry (r, r) along row r (by_row) or along column r.
  auto ce = [&](int64_t r, bool by_row) {
    auto at = [&](int64_t k) { return by_row ? S[size_t(r * B + k)] : S[size_t(k * B + r)]; };
    double m = at(0);
    for (int64_t k = 1; k < B; ++k) m = std::max(m, at(k));
    double z = 0;
    for (int64_t k = 0; k < B; ++k) z += std::exp(at(k) - m);
    return m + std::log(z) - at(r);
  };
  double total = 0;
  for (int64_t r = first; r < first + count; ++r) total += ce(r, true) + ce(r, false);
  return total / (2.0 * double(B));
}

// ---- finite differences ----

// Float64 leaves that require grad.
Tensors leaves(const Tensors& xs) {
  Tensors out;
  for (const Tensor& x : xs) out.push_back(x.to(DType::f64).contiguous().detach().set_requires_grad(true));
  return out;
}

// The analytic gradient of the scalar f(xs) w.r.t. every input against central differences
// (step 1e-6); the error is relative to the largest numerical derivative of that input.
void expect_gradients_match_fd(const Fn& f, const Tensors& inputs, const std::string& what, double tol = 1e-7) {
  Tensors xs = leaves(inputs);
  f(xs).backward();
  const double eps = 1e-6;
  for (size_t i = 0; i < xs.size(); ++i) {
    ASSERT_TRUE(xs[i].grad().defined()) << what << ": input " << i << " got no gradient";
    auto analytic = xs[i].grad().to_vector<double>();
    double* p = xs[i].data<double>();
    double err = 0, scale = 1e-3;
    for (int64_t k = 0; k < xs[i].numel(); ++k) {
      NoGradGuard ng;
      const double orig = p[k];
      p[k] = orig + eps;
      const double fp = f(xs).item();
      p[k] = orig - eps;
      const double fm = f(xs).item();
      p[k] = orig;
      const double numeric = (fp - fm) / (2 * eps);
      err = std::max(err, std::abs(numeric - analytic[size_t(k)]));
      scale = std::max(scale, std::abs(numeric));
    }
    EXPECT_LE(err / scale, tol) << what << ": input " << i << " gradient off by " << err << " (scale " << scale << ")";
  }
}

// sum(y * w) for a fixed random w: every output element of a non-scalar op matters.
Fn weighted(const std::function<Tensor(const Tensor&)>& op, const Tensor& w) {
  return [op, w](const Tensors& x) { return ops::sum(ops::mul(op(x[0]), w)); };
}

}  // namespace

// ---------------------------------------------------------------- l2_normalize

TEST(L2Normalize, MatchesReferenceAboveAndBelowEps) {
  Generator g(1);
  Tensor x = embeddings(g, 7, 5);
  auto v = x.to_vector<double>();
  for (int k = 0; k < 5; ++k) {
    v[size_t(2 * 5 + k)] = 0.0;    // a zero row
    v[size_t(4 * 5 + k)] *= 1e-3;  // a row shorter than eps = 0.05 below
  }
  x = Tensor::from_vector(v, {7, 5});
  for (double eps : {1e-12, 0.05}) {
    Tensor want = Tensor::from_vector(ref_normalize(v, 7, 5, eps), {7, 5});
    EXPECT_LE(max_rel_error(ops::l2_normalize(x, eps), want), 1e-15) << "eps " << eps;
    EXPECT_LE(max_rel_error(ops::l2_normalize(x.to(DType::f32), eps), want), 1e-6) << "float32, eps " << eps;
  }
  // Leading dims are kept: [2, 3, 4] normalises each of the 6 rows.
  Tensor y = embeddings(g, 6, 4);
  Tensor want = Tensor::from_vector(ref_normalize(y.to_vector<double>(), 6, 4, 1e-12), {2, 3, 4});
  EXPECT_LE(max_rel_error(ops::l2_normalize(y.reshape({2, 3, 4})), want), 1e-15);
}

TEST(L2Normalize, GradientMatchesFiniteDifferences) {
  Generator g(2);
  Tensor x = embeddings(g, 5, 6);
  Tensor w = Tensor::randn({5, 6}, g, DType::f64);
  expect_gradients_match_fd(weighted([](const Tensor& t) { return ops::l2_normalize(t); }, w), {x}, "eps 1e-12");
  // Rows below eps (here the zero row and a short one) are x / eps: linear, gradient 1 / eps.
  auto v = x.to_vector<double>();
  for (int k = 0; k < 6; ++k) {
    v[size_t(1 * 6 + k)] = 0.0;
    v[size_t(3 * 6 + k)] *= 1e-2;
  }
  Tensor xs = Tensor::from_vector(v, {5, 6});
  expect_gradients_match_fd(weighted([](const Tensor& t) { return ops::l2_normalize(t, 0.5); }, w), {xs},
                            "eps 0.5 with short rows");
  Tensor leaf = xs.detach().set_requires_grad(true);
  ops::sum(ops::l2_normalize(leaf, 0.5)).backward();
  auto gr = leaf.grad().to_vector<double>();
  for (int k = 0; k < 6; ++k) EXPECT_DOUBLE_EQ(gr[size_t(1 * 6 + k)], 1.0 / 0.5) << "zero row, element " << k;
}

TEST(L2Normalize, RejectsAnEpsBelowTheDtypesRange) {
  Tensor x = Tensor::ones({2, 3});
  EXPECT_THROW(ops::l2_normalize(x, 0.0), Error);
  EXPECT_THROW(ops::l2_normalize(x, 1e-25), Error);            // eps^2 flushes in float32
  EXPECT_NO_THROW(ops::l2_normalize(x.to(DType::f64), 1e-25));  // but not in float64
}

TEST(SimilarityMatrix, MatchesReference) {
  Generator g(3);
  Tensor a = embeddings(g, 4, 6), b = embeddings(g, 5, 6);
  auto A = ref_normalize(a.to_vector<double>(), 4, 6, 1e-12), Bn = ref_normalize(b.to_vector<double>(), 5, 6, 1e-12);
  std::vector<double> want(20);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 5; ++j)
      for (int k = 0; k < 6; ++k) want[size_t(i * 5 + j)] += A[size_t(i * 6 + k)] * Bn[size_t(j * 6 + k)];
  EXPECT_LE(max_rel_error(ops::similarity_matrix(a, b), Tensor::from_vector(want, {4, 5})), 1e-14);
  EXPECT_THROW(ops::similarity_matrix(a, embeddings(g, 5, 7)), Error);
}

// ---------------------------------------------------------------- contrastive_loss

TEST(ContrastiveLoss, MatchesLoopReference) {
  Generator g(4);
  struct Shape2 {
    int64_t B, D;
  };
  for (Shape2 sd : {Shape2{1, 3}, Shape2{6, 5}, Shape2{13, 8}}) {
    Tensor img = embeddings(g, sd.B, sd.D), txt = embeddings(g, sd.B, sd.D);
    for (double ls : {std::log(1 / 0.07), -0.5}) {
      const std::string at = "B " + std::to_string(sd.B) + ", log_scale " + std::to_string(ls);
      const double want = ref_contrastive(img, txt, ls, 0, sd.B);
      EXPECT_NEAR(ops::contrastive_loss(img, txt, scalar(ls)).item(), want, 1e-13 * std::abs(want)) << at;
      Tensor got32 = ops::contrastive_loss(img.to(DType::f32), txt.to(DType::f32), scalar(ls).to(DType::f32));
      EXPECT_EQ(got32.dtype(), DType::f32);
      EXPECT_NEAR(got32.item(), want, 1e-5 * std::abs(want)) << "float32, " << at;
      // Local parts: the first rows, a middle block, the last row.
      const int64_t B = sd.B;
      for (auto [first, count] : {std::pair<int64_t, int64_t>{0, (B + 1) / 2}, {B / 3, B - B / 3 - 1}, {B - 1, 1}}) {
        const double part = ref_contrastive(img, txt, ls, first, count);
        EXPECT_NEAR(ops::contrastive_loss(img, txt, scalar(ls), first, count).item(), part,
                    1e-13 * std::abs(want))
            << at << ", rows [" << first << ", " << first + count << ")";
      }
    }
  }
}

TEST(ContrastiveLoss, GradientMatchesFiniteDifferences) {
  Generator g(5);
  const int64_t B = 6, D = 4;
  Tensors in = {embeddings(g, B, D), embeddings(g, B, D), scalar(std::log(1 / 0.07))};
  expect_gradients_match_fd([](const Tensors& x) { return ops::contrastive_loss(x[0], x[1], x[2]); }, in,
                            "full loss");
  expect_gradients_match_fd([](const Tensors& x) { return ops::contrastive_loss(x[0], x[1], x[2], 2, 3); }, in,
                            "rows [2, 5)");
  in[2] = Tensor::from_vector(std::vector<double>{0.3}, {1});  // a [1] log_scale, a soft scale
  expect_gradients_match_fd([](const Tensors& x) { return ops::contrastive_loss(x[0], x[1], x[2], 5, 1); }, in,
                            "rows [5, 6), log_scale [1]");
}

// Data parallelism adds up the ranks' parts: over any partition of the rows, values and
// gradients of the parts must sum to those of the full loss (an empty part included).
TEST(ContrastiveLoss, LocalPartsSumToFullLoss) {
  Generator g(6);
  const int64_t B = 11, D = 7;
  Tensors in = {embeddings(g, B, D), embeddings(g, B, D), scalar(2.0)};
  Tensors full = leaves(in);
  Tensor loss = ops::contrastive_loss(full[0], full[1], full[2]);
  loss.backward();

  Tensors parts = leaves(in);
  double total = 0;
  const std::vector<int64_t> sizes = {3, 0, 5, 1, 2};  // sums to B
  int64_t first = 0;
  for (int64_t n : sizes) {
    Tensor part = ops::contrastive_loss(parts[0], parts[1], parts[2], first, n);
    total += part.item();
    part.backward();  // gradients accumulate in the leaves over the parts
    first += n;
  }
  EXPECT_NEAR(total, loss.item(), 1e-13 * loss.item());
  for (size_t i = 0; i < 3; ++i)
    EXPECT_LE(max_rel_error(parts[i].grad(), full[i].grad()), 1e-12) << "gradient of input " << i;
}

TEST(ContrastiveLoss, EmptyPartIsZeroButConnected) {
  Generator g(7);
  Tensors x = leaves({embeddings(g, 4, 3), embeddings(g, 4, 3), scalar(1.0)});
  Tensor part = ops::contrastive_loss(x[0], x[1], x[2], 4, 0);
  EXPECT_EQ(part.item(), 0.0);
  ASSERT_TRUE(part.requires_grad()) << "a rank without pairs must still back-propagate";
  part.backward();
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(x[i].grad().defined());
    for (double v : x[i].grad().to_vector<double>()) EXPECT_EQ(v, 0.0) << "input " << i;
  }
}

// CLIP caps exp(log_scale) at 100: above the cap the loss is the capped one and log_scale gets
// exactly no gradient; max_scale = infinity removes the cap.
TEST(ContrastiveLoss, ScaleIsCappedWithZeroGradient) {
  Generator g(8);
  const int64_t B = 5, D = 6;
  Tensor img = embeddings(g, B, D), txt = embeddings(g, B, D);
  const double big = std::log(150.0);
  Tensors x = leaves({img, txt, scalar(big)});
  Tensor loss = ops::contrastive_loss(x[0], x[1], x[2]);
  const double capped = ref_contrastive(img, txt, std::log(100.0), 0, B);
  EXPECT_NEAR(loss.item(), capped, 1e-12 * capped);
  EXPECT_NEAR(loss.item(), ref_contrastive(img, txt, big, 0, B), 1e-12 * capped);  // the same: capped
  loss.backward();
  ASSERT_TRUE(x[2].grad().defined());
  EXPECT_EQ(x[2].grad().item(), 0.0);
  // The embeddings' gradients are those at s = 100 exactly.
  Tensors at_cap = leaves({img, txt, scalar(std::log(100.0))});
  ops::contrastive_loss(at_cap[0], at_cap[1], at_cap[2], 0, -1, std::numeric_limits<double>::infinity()).backward();
  for (size_t i = 0; i < 2; ++i) EXPECT_LE(max_rel_error(x[i].grad(), at_cap[i].grad()), 1e-12) << "input " << i;

  const double inf = std::numeric_limits<double>::infinity();
  const double uncapped = ref_contrastive(img, txt, big, 0, B, inf);
  EXPECT_NEAR(ops::contrastive_loss(img, txt, scalar(big), 0, -1, inf).item(), uncapped, 1e-12 * uncapped);
  // A lower cap applies to local parts too, and the finite differences see the flat scale.
  expect_gradients_match_fd(
      [](const Tensors& t) { return ops::contrastive_loss(t[0], t[1], t[2], 1, 3, 20.0); },
      {img, txt, scalar(std::log(30.0))}, "capped at 20, rows [1, 4)");
}

TEST(ContrastiveLoss, Float32GradientsMatchFloat64) {
  Generator g(9);
  const int64_t B = 16, D = 12;
  Tensors in = {embeddings(g, B, D), embeddings(g, B, D), scalar(std::log(1 / 0.07))};
  for (auto [first, count] : {std::pair<int64_t, int64_t>{0, -1}, {5, 6}}) {
    Tensors x64 = leaves(in), x32;
    for (const Tensor& t : in) x32.push_back(t.to(DType::f32).detach().set_requires_grad(true));
    ops::contrastive_loss(x64[0], x64[1], x64[2], first, count).backward();
    ops::contrastive_loss(x32[0], x32[1], x32[2], first, count).backward();
    for (size_t i = 0; i < 3; ++i)
      EXPECT_LE(max_rel_error(x32[i].grad(), x64[i].grad()), 1e-5) << "input " << i << ", first " << first;
  }
}

TEST(ContrastiveLoss, ArgumentChecksSayWhatToFix) {
  Tensor a = Tensor::ones({4, 3}, DType::f64), ls = scalar(1.0);
  auto message = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message([&] { ops::contrastive_loss(a, Tensor::ones({5, 3}, DType::f64), ls); }).find("same shape"),
            std::string::npos);
  EXPECT_NE(message([&] { ops::contrastive_loss(a, a, Tensor::ones({2}, DType::f64)); }).find("log_scale"),
            std::string::npos);
  EXPECT_NE(message([&] { ops::contrastive_loss(a, a, ls, 3, 2); }).find("rows [3, 5)"), std::string::npos);
  EXPECT_NE(message([&] { ops::contrastive_loss(a.reshape({12}), a.reshape({12}), ls); }).find("[B, D]"),
            std::string::npos);
  EXPECT_NE(message([&] { ops::contrastive_loss(a, a, ls, 0, -1, 0.0); }).find("max_scale"), std::string::npos);
}
