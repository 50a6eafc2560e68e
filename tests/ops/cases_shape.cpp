// Shape ops: views and copies must move exactly the right elements (reference: index loops).
#include "ops/harness.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/shape.h"

namespace wensu::test {
namespace {

// Reference transpose of a contiguous [a, b, c] tensor over dims 0 and 2 (by index arithmetic).
Tensor ref_transpose02(const Tensor& x) {
  const int64_t A = x.size(0), B = x.size(1), C = x.size(2);
  Tensor out = Tensor::empty({C, B, A}, DType::f64);
  const double* p = x.data<double>();
  double* o = out.data<double>();
  for (int64_t i = 0; i < A; ++i)
    for (int64_t j = 0; j < B; ++j)
      for (int64_t k = 0; k < C; ++k) o[(k * B + j) * A + i] = p[(i * B + j) * C + k];
  return out;
}

Tensor ref_t02(const Tensors& x) { return ref_transpose02(x[0]); }

}  // namespace

std::vector<OpCase> shape_cases() {
  std::vector<OpCase> cs;
  cs.push_back({"reshape", "split_merge", [](Generator& g) { return Tensors{randn(g, {2, 3, 4})}; },
                [](const Tensors& x) { return x[0].reshape({6, -1}).reshape({4, 6}); },
                [](const Tensors& x) { return x[0].contiguous().detach().view({4, 6}); }});
  cs.push_back({"reshape", "of_transpose_copies",
                [](Generator& g) { return Tensors{randn(g, {3, 4})}; },
                [](const Tensors& x) { return x[0].transpose(0, 1).reshape({12}); },
                [](const Tensors& x) {
                  std::vector<double> v, p = x[0].to_vector<double>();
                  for (int j = 0; j < 4; ++j)
                    for (int i = 0; i < 3; ++i) v.push_back(p[i * 4 + j]);
                  return Tensor::from_vector(v, {12});
                }});
  cs.push_back({"transpose", "dims_0_2", [](Generator& g) { return Tensors{randn(g, {2, 3, 4})}; },
                [](const Tensors& x) { return x[0].transpose(0, 2).contiguous(); }, ref_t02});
  cs.push_back({"permute", "201", [](Generator& g) { return Tensors{randn(g, {2, 3, 4})}; },
                [](const Tensors& x) { return x[0].permute({2, 1, 0}) * 1.0; }, ref_t02});
  cs.push_back({"narrow", "middle", [](Generator& g) { return Tensors{randn(g, {4, 5})}; },
                [](const Tensors& x) { return x[0].narrow(1, 1, 3) * 1.0; },
                [](const Tensors& x) {
                  std::vector<double> v, p = x[0].to_vector<double>();
                  for (int i = 0; i < 4; ++i)
                    for (int j = 1; j < 4; ++j) v.push_back(p[i * 5 + j]);
                  return Tensor::from_vector(v, {4, 3});
                }});
  cs.push_back({"expand", "row_and_lead", [](Generator& g) { return Tensors{randn(g, {1, 3})}; },
                [](const Tensors& x) { return x[0].expand({2, 4, 3}) * 1.0; },
                [](const Tensors& x) {
                  std::vector<double> v, p = x[0].to_vector<double>();
                  for (int i = 0; i < 8; ++i)
                    for (int j = 0; j < 3; ++j) v.push_back(p[j]);
                  return Tensor::from_vector(v, {2, 4, 3});
                }});
  cs.push_back({"contiguous", "of_transpose", [](Generator& g) { return Tensors{randn(g, {2, 3, 4})}; },
                [](const Tensors& x) { return x[0].transpose(0, 2).contiguous(); }, ref_t02});
  cs.push_back({"cast", "bf16_round_trip", [](Generator& g) { return Tensors{randn(g, {3, 5})}; },
                [](const Tensors& x) { return x[0].to(DType::bf16).to(x[0].dtype()); },
                [](const Tensors& x) { return x[0]; }, /*tol=*/1e-2, /*gradcheck=*/false});
  cs.push_back({"cast", "f32_f64", [](Generator& g) { return Tensors{randn(g, {3, 5})}; },
                [](const Tensors& x) {
                  DType other = x[0].dtype() == DType::f32 ? DType::f64 : DType::f32;
                  return x[0].to(other).to(x[0].dtype());
                },
                // The float32 leg rounds x, so the step must dwarf the rounding: cast is linear.
                [](const Tensors& x) { return x[0]; }, 1e-5, true, /*grad_tol=*/1e-4, /*fd_eps=*/1e-2});
  cs.push_back({"concat", "dim1", [](Generator& g) { return Tensors{randn(g, {2, 2}), randn(g, {2, 3})}; },
                [](const Tensors& x) { return ops::concat({x[0], x[1]}, 1); },
                [](const Tensors& x) {
                  std::vector<double> v, a = x[0].to_vector<double>(), b = x[1].to_vector<double>();
                  for (int i = 0; i < 2; ++i) {
                    for (int j = 0; j < 2; ++j) v.push_back(a[i * 2 + j]);
                    for (int j = 0; j < 3; ++j) v.push_back(b[i * 3 + j]);
                  }
                  return Tensor::from_vector(v, {2, 5});
                }});
  cs.push_back({"split", "dim0_weighted", [](Generator& g) { return Tensors{randn(g, {5, 2})}; },
                [](const Tensors& x) {
                  auto parts = ops::split(x[0], {2, 3}, 0);
                  return ops::concat({parts[1] * 2.0, parts[0]}, 0);
                },
                [](const Tensors& x) {
                  std::vector<double> v, a = x[0].to_vector<double>();
                  for (int i = 4; i < 10; ++i) v.push_back(2 * a[i]);
                  for (int i = 0; i < 4; ++i) v.push_back(a[i]);
                  return Tensor::from_vector(v, {5, 2});
                }});
  return cs;
}

}  // namespace wensu::test
