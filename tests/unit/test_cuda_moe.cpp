// CUDA mixture-of-experts kernels (src/wensu/ops/cuda/moe.cu, kernels/moe/) against their CPU
// twins (src/wensu/ops/cpu/moe.cpp), on fresh random inputs with capacity drops and experts that
// receive no rows. Names start with Cuda (ctest label `cuda`); without a GPU every test skips.
//   routing: the tables are integers and must be identical.
//   float32: permute forward is a copy and must be exact; everything else within relative error
//   1e-5 (max |a - b| / max |b|) of the CPU twin.
//   bfloat16 (the kernels called directly; the public ops take float32/float64): the error
//   against the float32 CPU result must be at most twice that of a naive bf16 computation (inputs
//   rounded to bf16, CPU float32 twin, output rounded to bf16), plus 1e-3 slack.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "wensu/core/device.h"
#include "wensu/core/generator.h"
#include "wensu/core/tensor.h"
#include "wensu/ops/moe.h"

using namespace wensu;

#ifdef WENSU_CUDA
namespace {

struct Case {
  std::string name;
  int64_t T, K, E;
  int64_t used;      // expert indices are drawn from [0, used): experts used..E-1 stay empty
  int64_t capacity;  // 0 = dropless
};

std::vector<Case> cases() {
  return {
      {"dropless", 37, 2, 8, 8, 0},
      {"capacity_drops_and_empty_experts", 300, 2, 12, 7, 40},
      {"many_tiles", 3000, 3, 16, 16, 500},  // 9000 pairs: several routing tiles
      {"more_experts_than_scan_threads", 700, 4, 300, 290, 0},
      {"top1_capacity1", 100, 1, 4, 3, 1},
  };
}

Tensor random_experts(Generator& g, const Case& c) {
  auto u = Tensor::rand({c.T, c.K}, g, DType::f64).to_vector<double>();
  std::vector<int64_t> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) v[i] = std::min(c.used - 1, int64_t(u[i] * double(c.used)));
  return Tensor::from_vector(v, {c.T, c.K});
}

// The same routing on both devices (public op: it dispatches to the CPU twin and to CUDA).
struct Routed {
  ops::MoeRouting cpu, gpu;
};

Routed route(const Case& c, uint64_t seed) {
  Generator g(seed);
  Tensor ei = random_experts(g, c);
  return {ops::moe_routing(ei, c.E, c.capacity), ops::moe_routing(ei.to(Device::cuda), c.E, c.capacity)};
}

Tensor to_gpu(const Tensor& t, DType dt) { return t.to(dt).to(Device::cuda).detach(); }
Tensor bf16_rounded(const Tensor& t) { return t.to(DType::bf16).to(DType::f32).detach(); }
std::vector<float> host(const Tensor& t) { return t.detach().to(Device::cpu).to(DType::f32).to_vector<float>(); }

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

// got: the CUDA result; ref: the CPU twin on the exact inputs; naive: the CPU twin on the
// bf16-rounded inputs (bf16 only).
void expect_close(const std::vector<float>& got, const std::vector<float>& ref, const std::vector<float>& naive,
                  DType dt, const std::string& what) {
  if (dt == DType::f32) {
    EXPECT_LE(rel_err(got, ref), 1e-5) << what;
  } else {
    EXPECT_LE(rel_err(got, ref), 2 * rel_err(round_bf16(naive), ref) + 1e-3) << what;
  }
}

void append(std::vector<float>& dst, const Tensor& t) {
  for (float v : host(t)) dst.push_back(v);
}

std::string label(const Case& c, DType dt, int64_t D) {
  return c.name + " " + dtype_name(dt) + " D=" + std::to_string(D);
}

}  // namespace

TEST(CudaMoeRouting, TablesMatchCpuTwin) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  uint64_t seed = 10;
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    Routed r = route(c, seed++);
    EXPECT_EQ(r.gpu.counts, r.cpu.counts);
    EXPECT_EQ(r.gpu.offsets, r.cpu.offsets);
    EXPECT_EQ(r.gpu.dropped, r.cpu.dropped);
    EXPECT_EQ(r.gpu.position.device(), Device::cuda);
    EXPECT_EQ(r.gpu.position.to_vector<int64_t>(), r.cpu.position.to_vector<int64_t>());
    EXPECT_EQ(r.gpu.source.to_vector<int64_t>(), r.cpu.source.to_vector<int64_t>());
    // The cases must exercise what they are named for.
    if (c.capacity > 0) {
      EXPECT_GT(r.cpu.dropped, 0);
    }
    if (c.used < c.E) {
      EXPECT_EQ(r.cpu.counts.back(), 0);
    }
  }
}

TEST(CudaMoeRouting, BadExpertIndexNamesTokenChoiceAndValue) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  Generator g(3);
  const Case c{"bad", 40, 2, 5, 5, 0};
  auto v = random_experts(g, c).to_vector<int64_t>();
  v[size_t(9 * 2 + 0)] = -3;  // token 9, choice 0: the first bad pair in choice-major order
  v[size_t(5 * 2 + 1)] = 5;   // token 5, choice 1
  Tensor ei = Tensor::from_vector(v, {c.T, c.K}).to(Device::cuda);
  try {
    ops::moe_routing(ei, c.E);
    FAIL() << "an out-of-range expert index did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expert_index[9, 0] = -3"), std::string::npos) << e.what();
  }
}

TEST(CudaMoePermute, MatchesCpuTwin) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  uint64_t seed = 20;
  for (DType dt : {DType::f32, DType::bf16}) {
    for (const Case& c : cases()) {
      Routed r = route(c, seed++);
      const int64_t N = r.cpu.rows();
      for (int64_t D : {48, 13}) {  // 16-byte rows and odd rows (narrower copies)
        SCOPED_TRACE(label(c, dt, D));
        Generator g(seed++);
        Tensor x = Tensor::randn({c.T, D}, g), go = Tensor::randn({N, D}, g);
        auto cpu_fwd = [&](const Tensor& in) {
          Tensor o = Tensor::empty({N, D});
          ops::cpu::moe_permute_forward(in, r.cpu, o);
          return host(o);
        };
        auto cpu_bwd = [&](const Tensor& in) {
          Tensor o = Tensor::empty({c.T, D});
          ops::cpu::moe_permute_backward(in, r.cpu, o);
          return host(o);
        };
        Tensor out = Tensor::empty({N, D}, dt, Device::cuda), gx = Tensor::empty({c.T, D}, dt, Device::cuda);
        ops::cuda::moe_permute_forward(to_gpu(x, dt), r.gpu, out);
        ops::cuda::moe_permute_backward(to_gpu(go, dt), r.gpu, gx);
        // Forward is a copy: exact against the twin on the inputs in the same dtype.
        EXPECT_EQ(host(out), cpu_fwd(dt == DType::f32 ? x : bf16_rounded(x))) << "forward";
        expect_close(host(gx), cpu_bwd(go), cpu_bwd(bf16_rounded(go)), dt, "grad_x");
      }
    }
  }
}

TEST(CudaMoeCombine, MatchesCpuTwin) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  uint64_t seed = 40;
  for (DType dt : {DType::f32, DType::bf16}) {
    for (const Case& c : cases()) {
      Routed r = route(c, seed++);
      const int64_t N = r.cpu.rows();
      for (int64_t D : {48, 13}) {
        SCOPED_TRACE(label(c, dt, D));
        Generator g(seed++);
        Tensor y = Tensor::randn({N, D}, g), w = Tensor::rand({c.T, c.K}, g), go = Tensor::randn({c.T, D}, g);
        struct Out {
          std::vector<float> out, gy, gw;
        };
        auto cpu = [&](const Tensor& yi, const Tensor& wi, const Tensor& gi) {
          Tensor o = Tensor::empty({c.T, D}), gy = Tensor::empty({N, D}), gw = Tensor::empty({c.T, c.K});
          ops::cpu::moe_combine_forward(yi, wi, r.cpu, o);
          ops::cpu::moe_combine_backward(gi, yi, wi, r.cpu, gy, gw);
          return Out{host(o), host(gy), host(gw)};
        };
        Out ref = cpu(y, w, go), naive = cpu(bf16_rounded(y), bf16_rounded(w), bf16_rounded(go));
        Tensor yd = to_gpu(y, dt), wd = to_gpu(w, dt), gd = to_gpu(go, dt);
        Tensor o = Tensor::empty({c.T, D}, dt, Device::cuda), gy = Tensor::empty({N, D}, dt, Device::cuda),
               gw = Tensor::empty({c.T, c.K}, dt, Device::cuda);
        ops::cuda::moe_combine_forward(yd, wd, r.gpu, o);
        ops::cuda::moe_combine_backward(gd, yd, wd, r.gpu, gy, gw);
        expect_close(host(o), ref.out, naive.out, dt, "out");
        expect_close(host(gy), ref.gy, naive.gy, dt, "grad_y");
        expect_close(host(gw), ref.gw, naive.gw, dt, "grad_weights");
      }
    }
  }
}

namespace {

// grouped_matmul on both devices over the groups of a routing (experts without rows included).
// Every third weight is a transposed view (column-major), the other layout cuBLAS takes.
void check_grouped_matmul(const Case& c, DType dt, bool with_bias, uint64_t seed) {
  Routed r = route(c, seed);
  const std::vector<int64_t>& offsets = r.cpu.offsets;
  const int64_t N = r.cpu.rows(), G = c.E, Din = 40, Dout = 24;
  Generator g(seed + 1000);
  Tensor x = Tensor::randn({N, Din}, g), go = Tensor::randn({N, Dout}, g);
  std::vector<Tensor> w, b;  // float32 on the CPU
  for (int64_t i = 0; i < G; ++i) {
    w.push_back(i % 3 == 2 ? Tensor::randn({Din, Dout}, g).transpose(0, 1) : Tensor::randn({Dout, Din}, g));
    if (with_bias) b.push_back(Tensor::randn({Dout}, g));
  }
  struct Out {
    std::vector<float> out, gx, gw, gb;  // gw, gb: all groups concatenated
  };
  auto run_cpu = [&](bool round) {
    auto in = [&](const Tensor& t) { return round ? bf16_rounded(t) : t; };
    std::vector<Tensor> wi, bi, gw, gb;
    for (const Tensor& t : w) wi.push_back(in(t));  // the CPU twin takes both layouts; rounding copies
    for (const Tensor& t : b) bi.push_back(in(t));
    for (int64_t i = 0; i < G; ++i) {
      gw.push_back(Tensor::empty({Dout, Din}));
      if (with_bias) gb.push_back(Tensor::empty({Dout}));
    }
    Tensor out = Tensor::empty({N, Dout}), gx = Tensor::empty({N, Din});
    ops::cpu::grouped_matmul_forward(in(x), wi, offsets, bi, out);
    ops::cpu::grouped_matmul_backward(in(go), in(x), wi, offsets, gx, gw, gb);
    Out o{host(out), host(gx), {}, {}};
    for (const Tensor& t : gw) append(o.gw, t);
    for (const Tensor& t : gb) append(o.gb, t);
    return o;
  };
  Out ref = run_cpu(false), naive = run_cpu(true);

  std::vector<Tensor> wd, bd, gw, gb;
  for (int64_t i = 0; i < G; ++i) {
    // The transposed views go to the GPU as their contiguous base, transposed there.
    const Tensor& t = w[size_t(i)];
    wd.push_back(i % 3 == 2 ? to_gpu(t.transpose(0, 1).contiguous(), dt).transpose(0, 1) : to_gpu(t, dt));
    if (with_bias) bd.push_back(to_gpu(b[size_t(i)], dt));
    gw.push_back(Tensor::empty({Dout, Din}, dt, Device::cuda));
    if (with_bias) gb.push_back(Tensor::empty({Dout}, dt, Device::cuda));
  }
  Tensor xd = to_gpu(x, dt), gd = to_gpu(go, dt);
  Tensor out = Tensor::empty({N, Dout}, dt, Device::cuda), gx = Tensor::empty({N, Din}, dt, Device::cuda);
  ops::cuda::grouped_matmul_forward(xd, wd, offsets, bd, out);
  ops::cuda::grouped_matmul_backward(gd, xd, wd, offsets, gx, gw, gb);
  Out got{host(out), host(gx), {}, {}};
  for (const Tensor& t : gw) append(got.gw, t);
  for (const Tensor& t : gb) append(got.gb, t);
  expect_close(got.out, ref.out, naive.out, dt, "out");
  expect_close(got.gx, ref.gx, naive.gx, dt, "grad_x");
  expect_close(got.gw, ref.gw, naive.gw, dt, "grad_w");
  if (with_bias) expect_close(got.gb, ref.gb, naive.gb, dt, "grad_bias");
}

}  // namespace

TEST(CudaGroupedMatmul, MatchesCpuTwin) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  uint64_t seed = 60;
  for (DType dt : {DType::f32, DType::bf16}) {
    for (const Case& c : cases()) {
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE(c.name + " " + dtype_name(dt) + (with_bias ? " bias" : " no bias"));
        check_grouped_matmul(c, dt, with_bias, seed++);
      }
    }
  }
}

// The kernels use no atomics whose order could change a result: two runs give the same bits.
TEST(CudaMoe, RepeatedRunsGiveSameBits) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  const Case c = cases()[2];  // many routing tiles, and one group of many rows for the bias sums
  const int64_t D = 64;
  Generator g(81);
  const int64_t N = route(c, 80).cpu.rows();
  Tensor y = to_gpu(Tensor::randn({N, D}, g), DType::f32), go = to_gpu(Tensor::randn({N, D}, g), DType::f32);
  Tensor w = to_gpu(Tensor::rand({c.T, c.K}, g), DType::f32), gt = to_gpu(Tensor::randn({c.T, D}, g), DType::f32);
  std::vector<Tensor> expert{to_gpu(Tensor::randn({D, D}, g), DType::f32)};
  auto once = [&] {
    ops::MoeRouting r = route(c, 80).gpu;
    Tensor gy = Tensor::empty({N, D}, DType::f32, Device::cuda);
    Tensor gw = Tensor::empty({c.T, c.K}, DType::f32, Device::cuda);
    ops::cuda::moe_combine_backward(gt, y, w, r, gy, gw);
    Tensor gx = Tensor::empty({N, D}, DType::f32, Device::cuda);
    std::vector<Tensor> gwe{Tensor::empty({D, D}, DType::f32, Device::cuda)};
    std::vector<Tensor> gb{Tensor::empty({D}, DType::f32, Device::cuda)};
    ops::cuda::grouped_matmul_backward(go, y, expert, {0, N}, gx, gwe, gb);
    std::vector<float> values;
    for (const Tensor& t : {gy, gw, gx, gwe[0], gb[0]}) append(values, t);
    return std::make_pair(r.position.to_vector<int64_t>(), values);
  };
  const auto a = once(), b = once();
  EXPECT_EQ(a.first, b.first);
  ASSERT_EQ(a.second.size(), b.second.size());
  EXPECT_EQ(std::memcmp(a.second.data(), b.second.data(), sizeof(float) * a.second.size()), 0);
}

// The public ops dispatch to these kernels: forward and backward through autograd on CUDA
// (permute -> expert products -> combine) match the same graph on the CPU.
TEST(CudaMoe, PublicOpsForwardBackwardMatchCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  const Case c = cases()[1];  // drops and empty experts
  Generator g(90);
  Tensor ei = random_experts(g, c);
  const int64_t D = 32, H = 20;
  Tensor x = Tensor::randn({c.T, D}, g), gate = Tensor::rand({c.T, c.K}, g), go = Tensor::randn({c.T, D}, g);
  std::vector<Tensor> w1, w2;
  for (int64_t e = 0; e < c.E; ++e) {
    w1.push_back(Tensor::randn({H, D}, g, DType::f32, 0.0, 0.2));
    w2.push_back(Tensor::randn({D, H}, g, DType::f32, 0.0, 0.2));
  }
  struct Grads {
    std::vector<float> out, gx, ggate, gw1, gw2;
  };
  auto run = [&](Device dev) {
    auto leaf = [&](const Tensor& t) {
      Tensor l = t.to(dev).detach();
      l.set_requires_grad(true);
      return l;
    };
    Tensor xl = leaf(x), gl = leaf(gate);
    std::vector<Tensor> a, b;
    for (int64_t e = 0; e < c.E; ++e) {
      a.push_back(leaf(w1[size_t(e)]));
      b.push_back(leaf(w2[size_t(e)]));
    }
    ops::MoeRouting r = ops::moe_routing(ei.to(dev), c.E, c.capacity);
    Tensor xs = ops::moe_permute(xl, r);               // [N, D]
    Tensor h = ops::grouped_matmul(xs, a, r.offsets);  // [N, H]
    Tensor ys = ops::grouped_matmul(h, b, r.offsets);  // [N, D]
    Tensor out = ops::moe_combine(ys, gl, r);          // [T, D]
    out.backward(go.to(dev));
    Grads res{host(out), host(xl.grad()), host(gl.grad()), {}, {}};
    for (int64_t e = 0; e < c.E; ++e) {
      append(res.gw1, a[size_t(e)].grad());
      append(res.gw2, b[size_t(e)].grad());
    }
    return res;
  };
  Grads cpu = run(Device::cpu), gpu = run(Device::cuda);
  EXPECT_LE(rel_err(gpu.out, cpu.out), 1e-5);
  EXPECT_LE(rel_err(gpu.gx, cpu.gx), 1e-5);
  EXPECT_LE(rel_err(gpu.ggate, cpu.ggate), 1e-5);
  EXPECT_LE(rel_err(gpu.gw1, cpu.gw1), 1e-5);
  EXPECT_LE(rel_err(gpu.gw2, cpu.gw2), 1e-5);
}
#endif  // WENSU_CUDA
