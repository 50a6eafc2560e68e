// CUDA block-sparse attention against its CPU twin (src/wensu/ops/cpu/block_sparse_attention.cpp).
// Names start with Cuda (ctest label `cuda`); without a GPU every test skips itself.
//   float32: forward output and dq, dk, dv within relative error 1e-5 of the CPU twin.
//   bfloat16: the CUDA error against the float32 CPU result must be at most twice the error of a
//   naive bf16 computation (inputs rounded to bf16, CPU float32 twin, output rounded to bf16),
//   plus 1e-3 slack, so the bound follows the inputs instead of a hard-coded number.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "wensu/core/device.h"
#include "wensu/core/generator.h"
#include "wensu/core/tensor.h"
#include "wensu/ops/block_layout.h"
#include "wensu/ops/block_sparse_attention.h"

using namespace wensu;

namespace {

struct Shape4 {
  int64_t B, Lq, Lk, H, D, Dv;
};

struct Scenario {
  std::string name;
  Shape4 s;
  ops::BlockLayoutConfig cfg;
  bool padded;
};

std::vector<Scenario> scenarios() {
  std::vector<Scenario> out;
  {  // bigbird with random blocks; L not a multiple of the block
    ops::BlockLayoutConfig c;
    c.kind = "bigbird", c.block = 32, c.window = 32, c.global_blocks = 1, c.random_blocks = 2, c.seed = 7;
    out.push_back({"bigbird_random", {2, 200, 200, 2, 32, 32}, c, false});
  }
  {  // causal window, Lq < Lk (causal limit aligned at the end), D != Dv
    ops::BlockLayoutConfig c;
    c.kind = "window", c.block = 64, c.window = 64, c.causal = true;
    out.push_back({"causal_window", {1, 150, 230, 3, 48, 40}, c, false});
  }
  {  // key padding on bigbird (whole padded blocks and partial ones)
    ops::BlockLayoutConfig c;
    c.kind = "bigbird", c.block = 32, c.window = 64, c.global_blocks = 1, c.random_blocks = 1, c.seed = 3;
    out.push_back({"bigbird_padded", {2, 170, 170, 2, 16, 16}, c, true});
  }
  {  // the largest supported tiles: block 128, D = Dv = 128, tail block
    ops::BlockLayoutConfig c;
    c.kind = "dense", c.block = 128;
    out.push_back({"dense_block128_d128", {1, 300, 300, 1, 128, 128}, c, false});
  }
  return out;
}

struct Inputs {
  Tensor q, k, v, dout, pad;  // float32 on the CPU; pad int64 or undefined
};

Inputs make_inputs(const Shape4& s, bool padded, uint64_t seed) {
  Generator g(seed);
  Inputs in;
  in.q = Tensor::randn({s.B, s.Lq, s.H, s.D}, g);
  in.k = Tensor::randn({s.B, s.Lk, s.H, s.D}, g);
  in.v = Tensor::randn({s.B, s.Lk, s.H, s.Dv}, g);
  in.dout = Tensor::randn({s.B, s.Lq, s.H, s.Dv}, g);
  if (padded) {
    // Batch b pads its last 40 + 37 * b keys, plus one isolated key in the middle.
    std::vector<int64_t> p(size_t(s.B * s.Lk), 0);
    for (int64_t b = 0; b < s.B; ++b) {
      for (int64_t j = std::max<int64_t>(0, s.Lk - 40 - 37 * b); j < s.Lk; ++j) p[size_t(b * s.Lk + j)] = 1;
      p[size_t(b * s.Lk + s.Lk / 3)] = 1;
    }
    in.pad = Tensor::from_vector(p, {s.B, s.Lk});
  }
  return in;
}

struct Result {
  std::vector<float> out, dq, dk, dv;
};

// Runs the op (forward and backward through autograd) on `dev` with element type `dt`; inputs are
// cast on the CPU and moved, results come back as float32 vectors.
Result run(const Inputs& in, const ops::BlockLayout& layout, DType dt, Device dev) {
  auto prep = [&](const Tensor& t) {
    Tensor x = t.to(dt).detach();
    if (dev == Device::cuda) x = x.to(Device::cuda).detach();
    return x;
  };
  Tensor q = prep(in.q), k = prep(in.k), v = prep(in.v), g = prep(in.dout);
  q.set_requires_grad(true);
  k.set_requires_grad(true);
  v.set_requires_grad(true);
  Tensor pad = in.pad.defined() ? (dev == Device::cuda ? in.pad.to(Device::cuda) : in.pad) : Tensor();
  Tensor out = ops::block_sparse_attention(q, k, v, layout, pad);
  out.backward(g);
  auto back = [](const Tensor& t) { return t.detach().to(Device::cpu).to(DType::f32).to_vector<float>(); };
  return {back(out), back(q.grad()), back(k.grad()), back(v.grad())};
}

// max |a - ref| / max |ref|: the error relative to the tensor's scale.
double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
  EXPECT_EQ(a.size(), ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(a.size(), ref.size()); ++i) {
    num = std::max(num, std::abs(double(a[i]) - double(ref[i])));
    den = std::max(den, std::abs(double(ref[i])));
  }
  return num / std::max(den, 1e-30);
}

std::vector<float> round_bf16(std::vector<float> x) {
  for (float& f : x) f = bf16_to_float(float_to_bf16(f));
  return x;
}

}  // namespace

TEST(CudaBlockSparseAttention, Float32MatchesCpuTwin) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  uint64_t seed = 100;
  for (const Scenario& sc : scenarios()) {
    SCOPED_TRACE(sc.name);
    auto layout = ops::make_block_layout(sc.cfg, sc.s.Lq, sc.s.Lk);
    Inputs in = make_inputs(sc.s, sc.padded, seed++);
    Result cpu = run(in, *layout, DType::f32, Device::cpu);
    Result gpu = run(in, *layout, DType::f32, Device::cuda);
    EXPECT_LE(rel_err(gpu.out, cpu.out), 1e-5) << "out";
    EXPECT_LE(rel_err(gpu.dq, cpu.dq), 1e-5) << "dq";
    EXPECT_LE(rel_err(gpu.dk, cpu.dk), 1e-5) << "dk";
    EXPECT_LE(rel_err(gpu.dv, cpu.dv), 1e-5) << "dv";
  }
}

TEST(CudaBlockSparseAttention, Bfloat16WithinTwiceNaiveBf16Error) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  uint64_t seed = 200;
  for (const Scenario& sc : scenarios()) {
    SCOPED_TRACE(sc.name);
    auto layout = ops::make_block_layout(sc.cfg, sc.s.Lq, sc.s.Lk);
    Inputs in = make_inputs(sc.s, sc.padded, seed++);
    Result ref = run(in, *layout, DType::f32, Device::cpu);
    // Naive bf16 baseline: bf16-rounded inputs through the float32 CPU twin, outputs rounded to bf16.
    Inputs rounded = in;
    for (Tensor* t : {&rounded.q, &rounded.k, &rounded.v, &rounded.dout}) *t = t->to(DType::bf16).to(DType::f32).detach();
    Result naive = run(rounded, *layout, DType::f32, Device::cpu);
    Result gpu = run(in, *layout, DType::bf16, Device::cuda);
    auto check = [&](const std::vector<float>& got, const std::vector<float>& base, const std::vector<float>& r,
                     const char* what) {
      const double bound = 2 * rel_err(round_bf16(base), r) + 1e-3;
      EXPECT_LE(rel_err(got, r), bound) << what;
    };
    check(gpu.out, naive.out, ref.out, "out");
    check(gpu.dq, naive.dq, ref.dq, "dq");
    check(gpu.dk, naive.dk, ref.dk, "dk");
    check(gpu.dv, naive.dv, ref.dv, "dv");
  }
}

TEST(CudaBlockSparseAttention, UnsupportedShapesAreClearErrors) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  Generator g(1);
  ops::BlockLayoutConfig c;
  c.kind = "dense", c.block = 32;
  auto layout = ops::make_block_layout(c, 40, 40);
  // Head dim 160 > 128.
  Tensor q = Tensor::randn({1, 40, 1, 160}, g).to(Device::cuda);
  try {
    ops::block_sparse_attention(q, q, q, *layout);
    FAIL() << "head dim 160 did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head dims"), std::string::npos) << e.what();
  }
}
