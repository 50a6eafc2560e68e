// Mixture-of-experts ops on CUDA (contract: src/wensu/ops/moe.h): argument checks, the plain
// kernel parameters of kernels/moe/moe.cuh, and the expert products on cuBLAS.
//
// grouped_matmul runs one cuBLAS GEMM per non-empty group, straight on the group's row block of
// x and of the output (no copies), like the CPU twin. cuBLAS is column-major: a row-major
// [rows, cols] matrix with leading dimension ld is, to cuBLAS, its transpose [cols, rows] with the
// same ld, so each product below is written for the transposed output (out^T = W x^T, ...).
// float32 products run in full float32 (cuBLAS's default math mode, no TF32); bfloat16 ones
// accumulate in float32 (CUBLAS_COMPUTE_32F).
//
// Every op synchronises before returning, as block_sparse_attention does, so a kernel fault is
// reported by the op that caused it and scratch buffers may go back to the allocator's cache.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "kernels/moe/moe.cuh"
#include "wensu/ops/moe.h"

namespace wensu::ops::cuda {
namespace {

using kernels::MoeDType;

// Pairs per routing tile (see kernels/moe/routing.cu): 16 warp steps, enough tiles to fill the
// GPU from ~10^5 pairs on. Tiles grow when tiles x experts would pass kMaxRoutingScratch.
constexpr int64_t kRoutingTile = 512;
constexpr int64_t kMaxRoutingScratch = int64_t(1) << 22;  // int64 entries (32 MiB)

void check_cuda(cudaError_t e, const char* op, const char* what) {
  WENSU_CHECK(e == cudaSuccess, op, " (CUDA): ", what, " failed: ", cudaGetErrorString(e));
}

void check_cublas(cublasStatus_t s, const char* op, const char* what) {
  WENSU_CHECK(s == CUBLAS_STATUS_SUCCESS, op, " (CUDA): ", what, " failed: ", cublasGetStatusString(s));
}

// One cuBLAS handle for the process, on the legacy default stream like every kernel here. It is
// never destroyed: cublasDestroy from a static destructor may run after the CUDA runtime is gone.
cublasHandle_t cublas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    check_cublas(cublasCreate(&h), "grouped_matmul", "cublasCreate");
    return h;
  }();
  return handle;
}

MoeDType kernel_dtype(DType t, const char* op) {
  WENSU_CHECK(t == DType::f32 || t == DType::bf16, op, ": the CUDA kernels support float32 and bfloat16, got ",
              dtype_name(t));
  return t == DType::f32 ? MoeDType::f32 : MoeDType::bf16;
}

// A tensor the kernels may index as a contiguous [shape] array of dtype dt on the GPU.
void check_dense(const Tensor& t, DType dt, const Shape& shape, const char* what, const char* op) {
  WENSU_CHECK(t.defined(), op, ": ", what, " is undefined");
  WENSU_CHECK(t.device() == Device::cuda, op, ": ", what, " must be on CUDA, got ", t.describe());
  WENSU_CHECK(t.dtype() == dt, op, ": ", what, " must be ", dtype_name(dt), ", got ", t.describe());
  WENSU_CHECK(t.shape() == shape, op, ": ", what, " must be ", shape_str(shape), ", got ", t.describe());
  WENSU_CHECK(t.is_contiguous(), op, ": ", what, " must be contiguous on CUDA (call .contiguous() on the CPU first), got ",
              t.describe());
}

void check_routing(const MoeRouting& r, const char* op) {
  WENSU_CHECK(int64_t(r.offsets.size()) == r.experts + 1, op, ": routing has ", r.offsets.size(), " offsets for ",
              r.experts, " experts (build it with moe_routing)");
  check_dense(r.position, DType::i64, {r.tokens, r.top_k}, "routing position", op);
  check_dense(r.source, DType::i64, {r.rows()}, "routing source", op);
}

kernels::MoeMoveParams move_params(const MoeRouting& r, int64_t dim) {
  kernels::MoeMoveParams p{};
  p.tokens = r.tokens, p.top_k = r.top_k, p.rows = r.rows(), p.dim = dim;
  p.position = static_cast<const int64_t*>(r.position.raw_data());
  p.source = static_cast<const int64_t*>(r.source.raw_data());
  return p;
}

template <typename T>
T* at(const Tensor& t, int64_t elements) {
  return reinterpret_cast<T*>(static_cast<char*>(t.raw_data()) + elements * int64_t(dtype_size(t.dtype())));
}

// ---------------------------------------------------------------- cuBLAS

int blas_int(int64_t v, const char* what, const char* op) {
  WENSU_CHECK(v >= 0 && v <= INT_MAX, op, ": ", what, " = ", v, " exceeds cuBLAS's 32-bit sizes");
  return int(v);
}

// Column-major C[m, n] = op(A)[m, k] op(B)[k, n] + beta C (alpha = 1), in float32 or bf16 with
// float32 accumulation.
void gemm(MoeDType dt, bool ta, bool tb, int m, int n, int k, const void* a, int lda, const void* b, int ldb,
          float beta, void* c, int ldc, const char* op) {
  const float alpha = 1.f;
  const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (dt == MoeDType::f32) {
    check_cublas(cublasSgemm(cublas(), oa, ob, m, n, k, &alpha, static_cast<const float*>(a), lda,
                             static_cast<const float*>(b), ldb, &beta, static_cast<float*>(c), ldc),
                 op, "cublasSgemm");
  } else {
    check_cublas(cublasGemmEx(cublas(), oa, ob, m, n, k, &alpha, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, ldb, &beta, c,
                              CUDA_R_16BF, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 op, "cublasGemmEx (bfloat16)");
  }
}

// A weight w[g] [Dout, Din] as cuBLAS sees it. row_major: element (o, i) at o * ld + i, which
// cuBLAS reads as W^T; otherwise at o + i * ld, which cuBLAS reads as W. The CPU twin accepts the
// same two layouts (ops/cpu/blas.h); anything else has no copy kernel on CUDA yet.
struct WeightLayout {
  bool row_major = true;
  int ld = 0;
};

WeightLayout weight_layout(const Tensor& w, int64_t g, const char* op) {
  const int64_t rows = w.size(0), cols = w.size(1), sr = w.strides()[0], sc = w.strides()[1];
  if (sc == 1 || cols == 1) {
    const int64_t ld = rows == 1 ? cols : sr;
    if (ld >= cols) return {true, blas_int(ld, "a weight's leading dimension", op)};
  }
  if (sr == 1 || rows == 1) {
    const int64_t ld = cols == 1 ? rows : sc;
    if (ld >= rows) return {false, blas_int(ld, "a weight's leading dimension", op)};
  }
  WENSU_CHECK(false, op, ": w[", g, "] ", w.describe(), " with strides [", sr, ", ", sc,
              "] has no unit stride; make it contiguous before moving it to CUDA");
  return {};
}

struct GroupedArgs {
  MoeDType dt;
  int64_t N, Din, Dout;
  std::vector<WeightLayout> w;
};

// Checks shared by forward and backward: x [N, Din], w[g] [Dout, Din], offsets, bias[g] [Dout].
GroupedArgs check_grouped(const Tensor& x, const std::vector<Tensor>& w, const std::vector<int64_t>& offsets,
                          const std::vector<Tensor>& bias, int64_t Dout, const char* op) {
  GroupedArgs a;
  a.dt = kernel_dtype(x.dtype(), op);
  WENSU_CHECK(x.dim() == 2, op, ": x must be [N, Din], got ", x.describe());
  a.N = x.size(0), a.Din = x.size(1), a.Dout = Dout;
  check_dense(x, x.dtype(), x.shape(), "x", op);
  WENSU_CHECK(a.Din >= 1 && a.Dout >= 1, op, ": Din and Dout must be positive, got ", a.Din, " and ", a.Dout);
  const int64_t G = int64_t(w.size());
  WENSU_CHECK(G >= 1 && int64_t(offsets.size()) == G + 1, op, ": ", G, " weights need G + 1 offsets, got ",
              offsets.size());
  WENSU_CHECK(offsets.front() == 0 && offsets.back() == a.N, op, ": offsets must run from 0 to N = ", a.N,
              ", got ", offsets.front(), " ... ", offsets.back());
  for (int64_t g = 0; g < G; ++g) {
    WENSU_CHECK(offsets[size_t(g)] <= offsets[size_t(g + 1)], op, ": offsets decrease at group ", g);
    const Tensor& wg = w[size_t(g)];
    WENSU_CHECK(wg.defined() && wg.device() == Device::cuda && wg.dtype() == x.dtype() &&
                    wg.shape() == Shape({a.Dout, a.Din}),
                op, ": w[", g, "] must be ", dtype_name(x.dtype()), " [", a.Dout, ", ", a.Din, "] on CUDA, got ",
                wg.defined() ? wg.describe() : "undefined");
    a.w.push_back(weight_layout(wg, g, op));
  }
  WENSU_CHECK(bias.empty() || int64_t(bias.size()) == G, op, ": bias must be empty or one per group, got ",
              bias.size(), " for ", G, " groups");
  for (size_t g = 0; g < bias.size(); ++g)
    WENSU_CHECK(bias[g].defined() && bias[g].device() == Device::cuda && bias[g].dtype() == x.dtype() &&
                    bias[g].shape() == Shape({a.Dout}),
                op, ": bias[", g, "] must be ", dtype_name(x.dtype()), " [", a.Dout, "] on CUDA, got ",
                bias[g].defined() ? bias[g].describe() : "undefined");
  blas_int(a.N, "N (rows)", op);
  blas_int(a.Din, "Din", op);
  blas_int(a.Dout, "Dout", op);
  return a;
}

}  // namespace

// ---------------------------------------------------------------- routing

void moe_routing(const Tensor& expert_index, MoeRouting& r) {
  const char* op = "moe_routing";
  const int64_t T = r.tokens, K = r.top_k, E = r.experts, pairs = T * K;
  WENSU_CHECK(E >= 1 && K >= 1 && r.capacity >= 0, op, ": needs experts >= 1, top_k >= 1 and capacity >= 0, got ",
              E, ", ", K, ", ", r.capacity);
  check_dense(expert_index, DType::i64, {T, K}, "expert_index", op);

  kernels::MoeRoutingParams p{};
  p.expert_index = static_cast<const int64_t*>(expert_index.raw_data());
  p.tokens = T, p.top_k = K, p.experts = E, p.capacity = r.capacity;
  p.tile = kRoutingTile;
  if ((pairs + p.tile - 1) / p.tile * E > kMaxRoutingScratch) {
    const int64_t tiles = std::max<int64_t>(1, kMaxRoutingScratch / E);
    p.tile = ((pairs + tiles - 1) / tiles + 31) / 32 * 32;
  }
  p.n_tiles = (pairs + p.tile - 1) / p.tile;
  const int64_t summary_size = kernels::moe_summary_size(E);
  Tensor scratch = Tensor::empty({p.n_tiles * E + summary_size}, DType::i64, Device::cuda);
  p.tile_rank = static_cast<int64_t*>(scratch.raw_data());
  p.summary = p.tile_rank + p.n_tiles * E;
  r.position = Tensor::empty({T, K}, DType::i64, Device::cuda);
  p.position = static_cast<int64_t*>(r.position.raw_data());
  check_cuda(kernels::moe_routing_count(p, nullptr), op, "launching the count kernels");

  // The one device-to-host copy of a routing (it waits for the count kernels).
  std::vector<int64_t> summary(static_cast<size_t>(summary_size));
  check_cuda(cudaMemcpy(summary.data(), p.summary, sizeof(int64_t) * summary.size(), cudaMemcpyDeviceToHost), op,
             "the count kernels");
  if (summary[0] != 0) {
    const int64_t j = pairs - summary[0], k = j / T, t = j % T;  // the first bad pair in choice-major order
    int64_t e = 0;
    check_cuda(cudaMemcpy(&e, p.expert_index + t * K + k, sizeof e, cudaMemcpyDeviceToHost), op, "reading a bad index");
    WENSU_CHECK(false, "moe_routing: expert_index[", t, ", ", k, "] = ", e, " (token ", t, ", choice ", k,
                ") is not an expert: expected a value in [0, ", E, ") or -1 (not routed)");
  }
  r.counts.assign(summary.begin() + 1 + E, summary.begin() + 1 + 2 * E);
  r.offsets.assign(summary.begin() + 1 + 2 * E, summary.end());
  const int64_t N = r.offsets.back();
  int64_t routed = 0;  // pairs with an expert (index -1 pairs are not routed, not dropped)
  for (int64_t e = 0; e < E; ++e) routed += summary[size_t(1 + e)];
  r.dropped = routed - N;
  r.source = Tensor::empty({N}, DType::i64, Device::cuda);
  p.source = static_cast<int64_t*>(r.source.raw_data());
  check_cuda(kernels::moe_routing_place(p, nullptr), op, "launching the placement kernel");
  check_cuda(cudaDeviceSynchronize(), op, "the placement kernel");
}

// ---------------------------------------------------------------- permute / combine

void moe_permute_forward(const Tensor& x, const MoeRouting& r, const Tensor& out) {
  const char* op = "moe_permute";
  kernel_dtype(x.dtype(), op);
  WENSU_CHECK(x.dim() == 2, op, ": x must be [T, D], got ", x.describe());
  const int64_t D = x.size(1);
  check_routing(r, op);
  check_dense(x, x.dtype(), {r.tokens, D}, "x", op);
  check_dense(out, x.dtype(), {r.rows(), D}, "out", op);
  check_cuda(kernels::moe_permute_forward(move_params(r, D), dtype_size(x.dtype()), x.raw_data(), out.raw_data(),
                                          nullptr),
             op, "launching the forward kernel");
  check_cuda(cudaDeviceSynchronize(), op, "the forward kernel");
}

void moe_permute_backward(const Tensor& grad_out, const MoeRouting& r, const Tensor& grad_x) {
  const char* op = "moe_permute_backward";
  const MoeDType dt = kernel_dtype(grad_x.dtype(), op);
  WENSU_CHECK(grad_x.dim() == 2, op, ": grad_x must be [T, D], got ", grad_x.describe());
  const int64_t D = grad_x.size(1);
  check_routing(r, op);
  check_dense(grad_out, grad_x.dtype(), {r.rows(), D}, "grad_out", op);
  check_dense(grad_x, grad_x.dtype(), {r.tokens, D}, "grad_x", op);
  check_cuda(kernels::moe_permute_backward(move_params(r, D), dt, grad_out.raw_data(), grad_x.raw_data(), nullptr),
             op, "launching the backward kernel");
  check_cuda(cudaDeviceSynchronize(), op, "the backward kernel");
}

void moe_combine_forward(const Tensor& y, const Tensor& weights, const MoeRouting& r, const Tensor& out) {
  const char* op = "moe_combine";
  const MoeDType dt = kernel_dtype(y.dtype(), op);
  WENSU_CHECK(y.dim() == 2, op, ": y must be [N, D], got ", y.describe());
  const int64_t D = y.size(1);
  check_routing(r, op);
  check_dense(y, y.dtype(), {r.rows(), D}, "y", op);
  check_dense(weights, y.dtype(), {r.tokens, r.top_k}, "weights", op);
  check_dense(out, y.dtype(), {r.tokens, D}, "out", op);
  check_cuda(kernels::moe_combine_forward(move_params(r, D), dt, y.raw_data(), weights.raw_data(), out.raw_data(),
                                          nullptr),
             op, "launching the forward kernel");
  check_cuda(cudaDeviceSynchronize(), op, "the forward kernel");
}

void moe_combine_backward(const Tensor& grad_out, const Tensor& y, const Tensor& weights, const MoeRouting& r,
                          const Tensor& grad_y, const Tensor& grad_weights) {
  const char* op = "moe_combine_backward";
  const MoeDType dt = kernel_dtype(y.dtype(), op);
  WENSU_CHECK(y.dim() == 2, op, ": y must be [N, D], got ", y.describe());
  const int64_t D = y.size(1);
  check_routing(r, op);
  check_dense(grad_out, y.dtype(), {r.tokens, D}, "grad_out", op);
  check_dense(y, y.dtype(), {r.rows(), D}, "y", op);
  check_dense(weights, y.dtype(), {r.tokens, r.top_k}, "weights", op);
  check_dense(grad_y, y.dtype(), {r.rows(), D}, "grad_y", op);
  check_dense(grad_weights, y.dtype(), {r.tokens, r.top_k}, "grad_weights", op);
  check_cuda(kernels::moe_combine_backward(move_params(r, D), dt, grad_out.raw_data(), y.raw_data(),
                                           weights.raw_data(), grad_y.raw_data(), grad_weights.raw_data(), nullptr),
             op, "launching the backward kernel");
  check_cuda(cudaDeviceSynchronize(), op, "the backward kernel");
}

// ---------------------------------------------------------------- grouped matmul

void grouped_matmul_forward(const Tensor& x, const std::vector<Tensor>& w, const std::vector<int64_t>& offsets,
                            const std::vector<Tensor>& bias, const Tensor& out) {
  const char* op = "grouped_matmul";
  WENSU_CHECK(out.defined() && out.dim() == 2, op, ": out must be [N, Dout]");
  const GroupedArgs a = check_grouped(x, w, offsets, bias, out.size(1), op);
  check_dense(out, x.dtype(), {a.N, a.Dout}, "out", op);
  for (size_t g = 0; g < w.size(); ++g) {
    const int64_t r0 = offsets[g], n = offsets[g + 1] - r0;
    if (n == 0) continue;  // an empty group has no output rows
    void* og = at<void>(out, r0 * a.Dout);  // [n, Dout]
    float beta = 0.f;
    if (!bias.empty()) {  // seed the rows with the bias and let the GEMM accumulate onto it
      check_cuda(kernels::moe_broadcast_rows(a.dt, n, a.Dout, bias[g].raw_data(), bias[g].strides()[0], og, nullptr),
                 op, "launching the bias kernel");
      beta = 1.f;
    }
    // out_g^T [Dout, n] = W [Dout, Din] x_g^T [Din, n]; x_g row-major is x_g^T to cuBLAS.
    const WeightLayout& l = a.w[g];
    gemm(a.dt, l.row_major, false, int(a.Dout), int(n), int(a.Din), w[g].raw_data(), l.ld, at<void>(x, r0 * a.Din),
         int(a.Din), beta, og, int(a.Dout), op);
  }
  check_cuda(cudaDeviceSynchronize(), op, "the forward products");
}

void grouped_matmul_backward(const Tensor& grad_out, const Tensor& x, const std::vector<Tensor>& w,
                             const std::vector<int64_t>& offsets, const Tensor& grad_x,
                             const std::vector<Tensor>& grad_w, const std::vector<Tensor>& grad_bias) {
  const char* op = "grouped_matmul_backward";
  WENSU_CHECK(grad_out.defined() && grad_out.dim() == 2, op, ": grad_out must be [N, Dout]");
  const GroupedArgs a = check_grouped(x, w, offsets, {}, grad_out.size(1), op);
  const DType dt = x.dtype();
  const size_t G = w.size();
  check_dense(grad_out, dt, {a.N, a.Dout}, "grad_out", op);
  check_dense(grad_x, dt, {a.N, a.Din}, "grad_x", op);
  WENSU_CHECK(grad_w.size() == G, op, ": needs one grad_w per group (", G, "), got ", grad_w.size());
  WENSU_CHECK(grad_bias.empty() || grad_bias.size() == G, op, ": grad_bias must be empty or one per group (", G,
              "), got ", grad_bias.size());
  int64_t max_chunks = 1;  // scratch of the bias column sums, shared by the groups (stream-ordered)
  for (size_t g = 0; g < G; ++g) {
    check_dense(grad_w[g], dt, {a.Dout, a.Din}, "grad_w[g]", op);
    if (!grad_bias.empty()) check_dense(grad_bias[g], dt, {a.Dout}, "grad_bias[g]", op);
    const int64_t n = offsets[g + 1] - offsets[g];
    max_chunks = std::max(max_chunks, (n + kernels::moe_column_chunk() - 1) / kernels::moe_column_chunk());
  }
  Tensor partial;
  if (!grad_bias.empty()) partial = Tensor::empty({max_chunks * a.Dout}, DType::f32, Device::cuda);

  for (size_t g = 0; g < G; ++g) {
    const int64_t r0 = offsets[g], n = offsets[g + 1] - r0;
    if (n == 0) {  // an expert that received no rows gets zero gradients (all-zero bits, f32 and bf16)
      check_cuda(cudaMemsetAsync(grad_w[g].raw_data(), 0, grad_w[g].nbytes(), nullptr), op, "zeroing grad_w");
      if (!grad_bias.empty())
        check_cuda(cudaMemsetAsync(grad_bias[g].raw_data(), 0, grad_bias[g].nbytes(), nullptr), op,
                   "zeroing grad_bias");
      continue;
    }
    const void* gg = at<void>(grad_out, r0 * a.Dout);  // [n, Dout]
    const void* xg = at<void>(x, r0 * a.Din);          // [n, Din]
    const WeightLayout& l = a.w[g];
    // grad_x_g [n, Din] = g_g W, i.e. grad_x_g^T [Din, n] = W^T [Din, Dout] g_g^T [Dout, n].
    gemm(a.dt, !l.row_major, false, int(a.Din), int(n), int(a.Dout), w[g].raw_data(), l.ld, gg, int(a.Dout), 0.f,
         at<void>(grad_x, r0 * a.Din), int(a.Din), op);
    // grad_w[g] [Dout, Din] = g_g^T x_g, i.e. grad_w^T [Din, Dout] = x_g^T [Din, n] g_g [n, Dout].
    gemm(a.dt, false, true, int(a.Din), int(a.Dout), int(n), xg, int(a.Din), gg, int(a.Dout), 0.f,
         grad_w[g].raw_data(), int(a.Din), op);
    if (!grad_bias.empty())
      check_cuda(kernels::moe_column_sum(a.dt, n, a.Dout, gg, static_cast<float*>(partial.raw_data()),
                                         grad_bias[g].raw_data(), nullptr),
                 op, "launching the bias-gradient kernels");
  }
  check_cuda(cudaDeviceSynchronize(), op, "the backward products");
}

}  // namespace wensu::ops::cuda
