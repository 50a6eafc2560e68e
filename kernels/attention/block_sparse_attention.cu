// Block-sparse attention kernels; see block_sparse_attention.cuh and, for the algorithm and its
// derivation, src/wensu/ops/cpu/block_sparse_attention.cpp (this file mirrors it pass by pass).
//
// Work split (no atomics, deterministic, like the CPU twin):
//   forward   one thread block per (b, h, query row block I); loops over the key blocks of row I
//   delta     one thread per (b, h, i): Delta_i = rowsum(dO_i * O_i)
//   dQ        one thread block per (b, h, query row block), over its CSR key blocks
//   dK, dV    one thread block per (b, h, key column block), over its CSC query blocks
// Inside a block the "other" dimension is walked in chunks of kChunk = 32 tokens so that shared
// memory stays under the 227 KiB an H100/H200 block may have at block 128 and D = Dv = 128:
// the owned rows (accumulators) live in shared memory in float32, the chunk tiles next to them.
// Correctness first: products are plain per-thread dot products over shared memory, no tensor cores.
#include <cuda_bf16.h>

#include <cmath>

#include "kernels/attention/block_sparse_attention.cuh"

namespace wensu {
namespace kernels {
namespace {

constexpr int kChunk = 32;     // tokens of the non-owned dimension per shared-memory tile
constexpr int kThreads = 256;  // threads per block
constexpr int kMaxBlock = 128;
constexpr int kMaxHead = 128;

__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// Whether query i may attend key j, both in range (causal limit and key padding; the block
// structure is the caller's loop).
__device__ __forceinline__ bool visible(const BsaParams& p, const int64_t* pad, int64_t i, int64_t j) {
  if (p.causal && j > i + (p.Lk - p.Lq)) return false;
  return !(pad && pad[j]);
}

// ---------------------------------------------------------------------------------------------
// Forward. Shared memory (floats): Qs [bs x D], acc [bs x Dv], Kc [kChunk x D], Vc [kChunk x Dv],
// S [bs x kChunk], and per row: m (running max), l (running sum), alpha (rescale factor).
template <typename T>
__global__ void __launch_bounds__(kThreads) forward_kernel(BsaParams p) {
  extern __shared__ float smem[];
  const int bs = p.block;
  const int64_t D = p.D, Dv = p.Dv;
  const int64_t nrb = p.n_row_blocks;
  const int64_t task = blockIdx.x, rb = task % nrb, bh = task / nrb, b = bh / p.H, h = bh % p.H;
  const int64_t i0 = rb * bs;
  const int m = int(imin(bs, p.Lq - i0));
  float* Qs = smem;
  float* acc = Qs + bs * D;
  float* Kc = acc + bs * Dv;
  float* Vc = Kc + kChunk * D;
  float* S = Vc + kChunk * Dv;
  float* mx = S + bs * kChunk;
  float* sum = mx + bs;
  float* alpha = sum + bs;

  const T* q = static_cast<const T*>(p.q) + b * p.q_s[0] + h * p.q_s[2];
  const T* k = static_cast<const T*>(p.k) + b * p.k_s[0] + h * p.k_s[2];
  const T* v = static_cast<const T*>(p.v) + b * p.v_s[0] + h * p.v_s[2];
  const int64_t* pad = p.key_padding ? p.key_padding + b * p.Lk : nullptr;

  for (int64_t x = threadIdx.x; x < int64_t(m) * D; x += blockDim.x)
    Qs[x] = to_f(q[(i0 + x / D) * p.q_s[1] + x % D]);
  for (int64_t x = threadIdx.x; x < int64_t(m) * Dv; x += blockDim.x) acc[x] = 0.f;
  for (int r = threadIdx.x; r < m; r += blockDim.x) {
    mx[r] = -INFINITY;
    sum[r] = 0.f;
  }
  __syncthreads();

  // The last row of the block sees the most keys (causal limit): key columns past it are skipped.
  const int64_t last_key = p.causal ? i0 + m - 1 + (p.Lk - p.Lq) : p.Lk - 1;
  for (int64_t e = p.row_ptr[rb]; e < p.row_ptr[rb + 1]; ++e) {
    const int64_t jb = p.col_idx[e] * bs;
    const int64_t jend = imin(imin(jb + bs, p.Lk), last_key + 1);
    for (int64_t j0 = jb; j0 < jend; j0 += kChunk) {
      const int n = int(imin(kChunk, jend - j0));
      for (int64_t x = threadIdx.x; x < int64_t(n) * D; x += blockDim.x)
        Kc[x] = to_f(k[(j0 + x / D) * p.k_s[1] + x % D]);
      for (int64_t x = threadIdx.x; x < int64_t(n) * Dv; x += blockDim.x)
        Vc[x] = to_f(v[(j0 + x / Dv) * p.v_s[1] + x % Dv]);
      __syncthreads();
      // S = scale * Q K^T, -inf where masked.
      for (int x = threadIdx.x; x < m * n; x += blockDim.x) {
        const int r = x / n, c = x % n;
        float s = -INFINITY;
        if (visible(p, pad, i0 + r, j0 + c)) {
          s = 0.f;
          for (int64_t d = 0; d < D; ++d) s += Qs[r * D + d] * Kc[c * D + d];
          s *= p.scale;
        }
        S[r * kChunk + c] = s;
      }
      __syncthreads();
      // Online softmax, one thread per row: new max, rescale factor, P = exp(S - m'), new sum.
      for (int r = threadIdx.x; r < m; r += blockDim.x) {
        float* s = S + r * kChunk;
        const float m_old = mx[r];
        float m_new = m_old;
        for (int c = 0; c < n; ++c) m_new = fmaxf(m_new, s[c]);
        if (m_new == -INFINITY) {  // nothing visible to this row so far
          for (int c = 0; c < n; ++c) s[c] = 0.f;
          alpha[r] = 1.f;
          continue;
        }
        // exp(-inf) = 0 drops the (empty) accumulator on the row's first visible key.
        const float a = m_old == m_new ? 1.f : expf(m_old - m_new);
        float l = 0.f;
        for (int c = 0; c < n; ++c) {
          const float pc = expf(s[c] - m_new);  // masked: exp(-inf) = 0
          s[c] = pc;
          l += pc;
        }
        sum[r] = sum[r] * a + l;
        mx[r] = m_new;
        alpha[r] = a;
      }
      __syncthreads();
      // acc = acc * alpha + P V.
      for (int64_t x = threadIdx.x; x < int64_t(m) * Dv; x += blockDim.x) {
        const int r = int(x / Dv);
        const int64_t d = x % Dv;
        float o = acc[x] * alpha[r];
        for (int c = 0; c < n; ++c) o += S[r * kChunk + c] * Vc[c * Dv + d];
        acc[x] = o;
      }
      __syncthreads();
    }
  }

  T* out = static_cast<T*>(p.out) + b * p.o_s[0] + h * p.o_s[2];
  for (int64_t x = threadIdx.x; x < int64_t(m) * Dv; x += blockDim.x) {
    const int r = int(x / Dv);
    const float l = sum[r];
    out[(i0 + r) * p.o_s[1] + x % Dv] = from_f<T>(l == 0.f ? 0.f : acc[x] / l);
  }
  for (int r = threadIdx.x; r < m; r += blockDim.x)
    p.lse[bh * p.Lq + i0 + r] = sum[r] == 0.f ? INFINITY : mx[r] + logf(sum[r]);
}

// ---------------------------------------------------------------------------------------------
// Backward. P = exp(S - LSE) (0 where masked or when the row sees nothing, LSE = +inf),
// dP = dO V^T, dS = P * (dP - Delta), dQ = scale * dS K, dK = scale * dS^T Q, dV = P^T dO.

template <typename T>
__global__ void delta_kernel(BsaParams p) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;  // (b, h, i)
  if (t >= p.B * p.H * p.Lq) return;
  const int64_t i = t % p.Lq, bh = t / p.Lq, b = bh / p.H, h = bh % p.H;
  const T* o = static_cast<const T*>(p.out) + b * p.o_s[0] + i * p.o_s[1] + h * p.o_s[2];
  const T* g = static_cast<const T*>(p.dout) + b * p.do_s[0] + i * p.do_s[1] + h * p.do_s[2];
  float s = 0.f;
  for (int64_t d = 0; d < p.Dv; ++d) s += to_f(o[d]) * to_f(g[d]);
  p.delta[t] = s;
}

// dS for query i, key j (both in range) from the dot products already taken.
__device__ __forceinline__ float prob(const BsaParams& p, const int64_t* pad, int64_t i, int64_t j, float qk,
                                      float lse) {
  if (!visible(p, pad, i, j) || lse == INFINITY) return 0.f;
  return expf(qk * p.scale - lse);
}

// dQ: shared memory (floats): dQ acc [bs x D], Kc [kChunk x D], Vc [kChunk x Dv], dS [bs x kChunk].
// Q and dO rows are read from global memory (L1/L2 cached) to keep shared memory small.
template <typename T>
__global__ void __launch_bounds__(kThreads) dq_kernel(BsaParams p) {
  extern __shared__ float smem[];
  const int bs = p.block;
  const int64_t D = p.D, Dv = p.Dv;
  const int64_t nrb = p.n_row_blocks;
  const int64_t task = blockIdx.x, rb = task % nrb, bh = task / nrb, b = bh / p.H, h = bh % p.H;
  const int64_t i0 = rb * bs;
  const int m = int(imin(bs, p.Lq - i0));
  float* acc = smem;
  float* Kc = acc + bs * D;
  float* Vc = Kc + kChunk * D;
  float* dS = Vc + kChunk * Dv;

  const T* q = static_cast<const T*>(p.q) + b * p.q_s[0] + h * p.q_s[2];
  const T* k = static_cast<const T*>(p.k) + b * p.k_s[0] + h * p.k_s[2];
  const T* v = static_cast<const T*>(p.v) + b * p.v_s[0] + h * p.v_s[2];
  const T* dout = static_cast<const T*>(p.dout) + b * p.do_s[0] + h * p.do_s[2];
  const float* lse = p.lse + bh * p.Lq;
  const float* delta = p.delta + bh * p.Lq;
  const int64_t* pad = p.key_padding ? p.key_padding + b * p.Lk : nullptr;

  for (int64_t x = threadIdx.x; x < int64_t(m) * D; x += blockDim.x) acc[x] = 0.f;
  __syncthreads();

  const int64_t last_key = p.causal ? i0 + m - 1 + (p.Lk - p.Lq) : p.Lk - 1;
  for (int64_t e = p.row_ptr[rb]; e < p.row_ptr[rb + 1]; ++e) {
    const int64_t jb = p.col_idx[e] * bs;
    const int64_t jend = imin(imin(jb + bs, p.Lk), last_key + 1);
    for (int64_t j0 = jb; j0 < jend; j0 += kChunk) {
      const int n = int(imin(kChunk, jend - j0));
      for (int64_t x = threadIdx.x; x < int64_t(n) * D; x += blockDim.x)
        Kc[x] = to_f(k[(j0 + x / D) * p.k_s[1] + x % D]);
      for (int64_t x = threadIdx.x; x < int64_t(n) * Dv; x += blockDim.x)
        Vc[x] = to_f(v[(j0 + x / Dv) * p.v_s[1] + x % Dv]);
      __syncthreads();
      for (int x = threadIdx.x; x < m * n; x += blockDim.x) {
        const int r = x / n, c = x % n;
        const int64_t i = i0 + r;
        float ds = 0.f;
        if (visible(p, pad, i, j0 + c) && lse[i] != INFINITY) {
          const T* qi = q + i * p.q_s[1];
          const T* gi = dout + i * p.do_s[1];
          float qk = 0.f, dp = 0.f;
          for (int64_t d = 0; d < D; ++d) qk += to_f(qi[d]) * Kc[c * D + d];
          for (int64_t d = 0; d < Dv; ++d) dp += to_f(gi[d]) * Vc[c * Dv + d];
          const float pr = prob(p, pad, i, j0 + c, qk, lse[i]);
          ds = pr * (dp - delta[i]);
        }
        dS[r * kChunk + c] = ds;
      }
      __syncthreads();
      for (int64_t x = threadIdx.x; x < int64_t(m) * D; x += blockDim.x) {
        const int r = int(x / D);
        const int64_t d = x % D;
        float a = 0.f;
        for (int c = 0; c < n; ++c) a += dS[r * kChunk + c] * Kc[c * D + d];
        acc[x] += p.scale * a;
      }
      __syncthreads();
    }
  }

  // dq is contiguous [B, Lq, H, D].
  T* dq = static_cast<T*>(p.dq) + (b * p.Lq * p.H + h) * D;
  for (int64_t x = threadIdx.x; x < int64_t(m) * D; x += blockDim.x)
    dq[(i0 + x / D) * p.H * D + x % D] = from_f<T>(acc[x]);
}

// dK, dV: shared memory (floats): dK acc [bs x D], dV acc [bs x Dv], Qc [kChunk x D],
// dOc [kChunk x Dv], P and dS [kChunk x bs], lse/delta [kChunk]. K and V rows from global memory.
template <typename T>
__global__ void __launch_bounds__(kThreads) dkv_kernel(BsaParams p) {
  extern __shared__ float smem[];
  const int bs = p.block;
  const int64_t D = p.D, Dv = p.Dv;
  const int64_t ncb = p.n_col_blocks;
  const int64_t task = blockIdx.x, cb = task % ncb, bh = task / ncb, b = bh / p.H, h = bh % p.H;
  const int64_t j0 = cb * bs;
  const int n = int(imin(bs, p.Lk - j0));
  float* dKa = smem;
  float* dVa = dKa + bs * D;
  float* Qc = dVa + bs * Dv;
  float* Gc = Qc + kChunk * D;
  float* P = Gc + kChunk * Dv;
  float* dS = P + kChunk * bs;
  float* Lc = dS + kChunk * bs;
  float* Dc = Lc + kChunk;

  const T* q = static_cast<const T*>(p.q) + b * p.q_s[0] + h * p.q_s[2];
  const T* k = static_cast<const T*>(p.k) + b * p.k_s[0] + h * p.k_s[2];
  const T* v = static_cast<const T*>(p.v) + b * p.v_s[0] + h * p.v_s[2];
  const T* dout = static_cast<const T*>(p.dout) + b * p.do_s[0] + h * p.do_s[2];
  const float* lse = p.lse + bh * p.Lq;
  const float* delta = p.delta + bh * p.Lq;
  const int64_t* pad = p.key_padding ? p.key_padding + b * p.Lk : nullptr;

  for (int64_t x = threadIdx.x; x < int64_t(n) * D; x += blockDim.x) dKa[x] = 0.f;
  for (int64_t x = threadIdx.x; x < int64_t(n) * Dv; x += blockDim.x) dVa[x] = 0.f;
  __syncthreads();

  // Rows before this one see no key of the block under the causal limit.
  const int64_t first_row = p.causal ? imax(0, j0 - (p.Lk - p.Lq)) : 0;
  for (int64_t e = p.col_ptr[cb]; e < p.col_ptr[cb + 1]; ++e) {
    const int64_t ib = imax(p.row_idx[e] * bs, first_row);
    const int64_t iend = imin(p.row_idx[e] * bs + bs, p.Lq);
    for (int64_t r0 = ib; r0 < iend; r0 += kChunk) {
      const int mc = int(imin(kChunk, iend - r0));
      for (int64_t x = threadIdx.x; x < int64_t(mc) * D; x += blockDim.x)
        Qc[x] = to_f(q[(r0 + x / D) * p.q_s[1] + x % D]);
      for (int64_t x = threadIdx.x; x < int64_t(mc) * Dv; x += blockDim.x)
        Gc[x] = to_f(dout[(r0 + x / Dv) * p.do_s[1] + x % Dv]);
      for (int r = threadIdx.x; r < mc; r += blockDim.x) {
        Lc[r] = lse[r0 + r];
        Dc[r] = delta[r0 + r];
      }
      __syncthreads();
      for (int x = threadIdx.x; x < mc * n; x += blockDim.x) {
        const int r = x / n, c = x % n;
        const int64_t i = r0 + r, j = j0 + c;
        float pr = 0.f, ds = 0.f;
        if (visible(p, pad, i, j) && Lc[r] != INFINITY) {
          const T* kj = k + j * p.k_s[1];
          const T* vj = v + j * p.v_s[1];
          float qk = 0.f, dp = 0.f;
          for (int64_t d = 0; d < D; ++d) qk += Qc[r * D + d] * to_f(kj[d]);
          for (int64_t d = 0; d < Dv; ++d) dp += Gc[r * Dv + d] * to_f(vj[d]);
          pr = prob(p, pad, i, j, qk, Lc[r]);
          ds = pr * (dp - Dc[r]);
        }
        P[r * bs + c] = pr;
        dS[r * bs + c] = ds;
      }
      __syncthreads();
      for (int64_t x = threadIdx.x; x < int64_t(n) * Dv; x += blockDim.x) {
        const int c = int(x / Dv);
        const int64_t d = x % Dv;
        float a = 0.f;
        for (int r = 0; r < mc; ++r) a += P[r * bs + c] * Gc[r * Dv + d];
        dVa[x] += a;
      }
      for (int64_t x = threadIdx.x; x < int64_t(n) * D; x += blockDim.x) {
        const int c = int(x / D);
        const int64_t d = x % D;
        float a = 0.f;
        for (int r = 0; r < mc; ++r) a += dS[r * bs + c] * Qc[r * D + d];
        dKa[x] += p.scale * a;
      }
      __syncthreads();
    }
  }

  // dk, dv are contiguous [B, Lk, H, D*].
  T* dk = static_cast<T*>(p.dk) + (b * p.Lk * p.H + h) * D;
  T* dv = static_cast<T*>(p.dv) + (b * p.Lk * p.H + h) * Dv;
  for (int64_t x = threadIdx.x; x < int64_t(n) * D; x += blockDim.x)
    dk[(j0 + x / D) * p.H * D + x % D] = from_f<T>(dKa[x]);
  for (int64_t x = threadIdx.x; x < int64_t(n) * Dv; x += blockDim.x)
    dv[(j0 + x / Dv) * p.H * Dv + x % Dv] = from_f<T>(dVa[x]);
}

size_t forward_smem(const BsaParams& p) {
  return sizeof(float) * size_t(p.block * (p.D + p.Dv) + kChunk * (p.D + p.Dv) + p.block * kChunk + 3 * p.block);
}
size_t dq_smem(const BsaParams& p) {
  return sizeof(float) * size_t(p.block * p.D + kChunk * (p.D + p.Dv) + p.block * kChunk);
}
size_t dkv_smem(const BsaParams& p) {
  return sizeof(float) * size_t(p.block * (p.D + p.Dv) + kChunk * (p.D + p.Dv) + 2 * kChunk * p.block + 2 * kChunk);
}

// Launches a kernel with `smem` bytes of dynamic shared memory (opting in above 48 KiB).
template <typename Kernel>
cudaError_t launch(Kernel kernel, int64_t blocks, size_t smem, cudaStream_t stream, const BsaParams& p) {
  if (blocks <= 0) return cudaSuccess;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (e != cudaSuccess) return e;
  kernel<<<dim3(unsigned(blocks)), dim3(kThreads), smem, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t forward_typed(const BsaParams& p, cudaStream_t stream) {
  return launch(forward_kernel<T>, p.B * p.H * p.n_row_blocks, forward_smem(p), stream, p);
}

template <typename T>
cudaError_t backward_typed(const BsaParams& p, cudaStream_t stream) {
  const int64_t rows = p.B * p.H * p.Lq;
  if (rows > 0) {
    delta_kernel<T><<<dim3(unsigned((rows + kThreads - 1) / kThreads)), dim3(kThreads), 0, stream>>>(p);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  cudaError_t e = launch(dq_kernel<T>, p.B * p.H * p.n_row_blocks, dq_smem(p), stream, p);
  if (e != cudaSuccess) return e;
  return launch(dkv_kernel<T>, p.B * p.H * p.n_col_blocks, dkv_smem(p), stream, p);
}

}  // namespace

const char* bsa_check_shape(int block, int64_t D, int64_t Dv) {
  if (block != 32 && block != 64 && block != kMaxBlock) return "the CUDA kernels support block sizes 32, 64 and 128";
  if (D < 1 || D > kMaxHead || Dv < 1 || Dv > kMaxHead)
    return "the CUDA kernels support head dims D and Dv from 1 to 128";
  return nullptr;
}

cudaError_t bsa_forward(const BsaParams& p, BsaDType dt, cudaStream_t stream) {
  return dt == BsaDType::f32 ? forward_typed<float>(p, stream) : forward_typed<__nv_bfloat16>(p, stream);
}

cudaError_t bsa_backward(const BsaParams& p, BsaDType dt, cudaStream_t stream) {
  return dt == BsaDType::f32 ? backward_typed<float>(p, stream) : backward_typed<__nv_bfloat16>(p, stream);
}

}  // namespace kernels
}  // namespace wensu
