// The table-driven op harness. Each op family contributes a list of OpCase from its own
// cases_*.cpp file; test_ops.cpp runs every case in two modes:
//   equivalence: the op in float32 against a plain reference in float64 (loops written for
//                clarity, not speed), forward outputs and float32 gradients against float64;
//   gradient:    float64 autograd gradients against central finite differences.
// A differentiable op in ops::op_table() without a gradient case fails the suite.
#pragma once
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "wensu/core/generator.h"
#include "wensu/core/tensor.h"

namespace wensu::test {

using Tensors = std::vector<Tensor>;

struct OpCase {
  std::string op;     // name in ops::op_table()
  std::string label;  // what this case varies, e.g. "broadcast_row"
  // Inputs in float64 (floating inputs get converted to the mode's dtype; int64 stay as is).
  std::function<Tensors(Generator&)> inputs;
  // The op under test; inputs arrive in float32 or float64.
  std::function<Tensor(const Tensors&)> fn;
  // Plain reference on float64 contiguous CPU inputs; empty = compare f32 against the op in f64.
  std::function<Tensor(const Tensors&)> reference;
  double tol = 1e-5;      // max relative error of float32 against the float64 reference
  bool gradcheck = true;  // run the finite-difference mode
  double grad_tol = 1e-6; // relative tolerance of analytic vs numerical gradient
  double fd_eps = 1e-6;   // finite-difference step
  std::vector<int> no_grad_inputs = {};  // floating inputs not to differentiate (e.g. masks)
};

// gtest prints a failing case by its name instead of its bytes.
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.op << "/" << c.label; }

// Families (one per cases_*.cpp). Adding a family means adding it to all_cases().
std::vector<OpCase> shape_cases();
std::vector<OpCase> binary_cases();
std::vector<OpCase> reduce_cases();
std::vector<OpCase> matmul_cases();
std::vector<OpCase> unary_cases();
std::vector<OpCase> softmax_cases();
std::vector<OpCase> loss_cases();
std::vector<OpCase> norm_cases();
std::vector<OpCase> indexing_cases();
std::vector<OpCase> dropout_cases();
std::vector<OpCase> rope_cases();
std::vector<OpCase> attention_cases();
std::vector<OpCase> block_sparse_attention_cases();
std::vector<OpCase> moe_cases();
std::vector<OpCase> all_cases();

// Helpers for writing cases and references.
Tensor randn(Generator& g, const Shape& s);                       // float64 N(0, 1)
Tensor uniform(Generator& g, const Shape& s, double lo, double hi);  // float64
Tensor randint(Generator& g, const Shape& s, int64_t lo, int64_t hi);  // int64 in [lo, hi)
double max_rel_error(const Tensor& got, const Tensor& want);       // max|a-b| / max(max|b|, 1e-12)

}  // namespace wensu::test
