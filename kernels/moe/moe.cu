// MoE data movement (permute, combine) and the grouped matmul's small helpers; see moe.cuh.
// Routing lives in routing.cu. Work split, none of it with atomics:
//   permute forward    one block per sorted row: a byte copy of the token's row
//   permute backward   one block per token: sums its kept rows in choice order
//   combine forward    one block per token: weighted sum of its kept rows in choice order
//   combine backward   one warp per (token, choice): writes that pair's grad_y row (each kept
//                      row belongs to exactly one pair) and reduces the grad_weights dot product
//                      with a fixed butterfly
//   column sums        fixed row chunks, partial sums added in chunk order
#include <cuda_bf16.h>

#include "kernels/moe/moe.cuh"

namespace wensu {
namespace kernels {
namespace {

constexpr int kRowThreads = 256;  // threads per block for row-wise kernels
constexpr int kWarpsPerBlock = 8;
constexpr int64_t kColumnChunk = 128;  // rows per partial column sum
constexpr int64_t kMaxGrid = int64_t(1) << 30;

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// Blocks for a grid-stride loop over n items (at least one, so a launch is always valid).
unsigned grid_for(int64_t n) { return unsigned(n < 1 ? 1 : (n < kMaxGrid ? n : kMaxGrid)); }

// Threads for a row of `n` items: a multiple of 32 up to kRowThreads, so short rows do not
// leave most of a block idle.
unsigned row_threads(int64_t n) {
  const int64_t t = (n + 31) / 32 * 32;
  return unsigned(t < 32 ? 32 : (t > kRowThreads ? kRowThreads : t));
}

template <typename W>
__global__ void gather_rows_kernel(const W* x, W* out, const int64_t* source, int64_t rows, int64_t words) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const W* src = x + source[r] * words;
    W* dst = out + r * words;
    for (int64_t i = threadIdx.x; i < words; i += blockDim.x) dst[i] = src[i];
  }
}

template <typename W>
cudaError_t gather_rows(const MoeMoveParams& p, const void* x, void* out, int64_t row_bytes, cudaStream_t stream) {
  const int64_t words = row_bytes / int64_t(sizeof(W));
  gather_rows_kernel<W><<<grid_for(p.rows), row_threads(words), 0, stream>>>(
      static_cast<const W*>(x), static_cast<W*>(out), p.source, p.rows, words);
  return cudaGetLastError();
}

template <typename T>
__global__ void permute_backward_kernel(MoeMoveParams p, const T* go, T* gx) {
  for (int64_t t = blockIdx.x; t < p.tokens; t += gridDim.x) {
    const int64_t* pos = p.position + t * p.top_k;
    for (int64_t d = threadIdx.x; d < p.dim; d += blockDim.x) {
      float acc = 0.f;
      for (int64_t k = 0; k < p.top_k; ++k)
        if (pos[k] >= 0) acc += to_f(go[pos[k] * p.dim + d]);
      gx[t * p.dim + d] = from_f<T>(acc);
    }
  }
}

template <typename T>
__global__ void combine_forward_kernel(MoeMoveParams p, const T* y, const T* w, T* out) {
  for (int64_t t = blockIdx.x; t < p.tokens; t += gridDim.x) {
    const int64_t* pos = p.position + t * p.top_k;
    const T* wt = w + t * p.top_k;
    for (int64_t d = threadIdx.x; d < p.dim; d += blockDim.x) {
      float acc = 0.f;
      for (int64_t k = 0; k < p.top_k; ++k)
        if (pos[k] >= 0) acc += to_f(wt[k]) * to_f(y[pos[k] * p.dim + d]);
      out[t * p.dim + d] = from_f<T>(acc);
    }
  }
}

template <typename T>
__global__ void combine_backward_kernel(MoeMoveParams p, const T* go, const T* y, const T* w, T* gy, T* gw) {
  const int lane = threadIdx.x & 31;
  const int64_t pairs = p.tokens * p.top_k;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  // The pair index is the same for all lanes of a warp, so the whole warp reaches the shuffles.
  for (int64_t pair = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; pair < pairs; pair += warps) {
    const int64_t t = pair / p.top_k, r = p.position[pair];
    float dot = 0.f;
    if (r >= 0) {
      const float wt = to_f(w[pair]);
      const T* g = go + t * p.dim;
      const T* yr = y + r * p.dim;
      T* gyr = gy + r * p.dim;
      for (int64_t d = lane; d < p.dim; d += 32) {
        const float gd = to_f(g[d]);
        gyr[d] = from_f<T>(wt * gd);
        dot += gd * to_f(yr[d]);
      }
    }
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if (lane == 0) gw[pair] = from_f<T>(dot);
  }
}

template <typename T>
__global__ void broadcast_rows_kernel(int64_t rows, int64_t cols, const T* bias, int64_t bs, T* out) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x)
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[r * cols + c] = bias[c * bs];
}

// partial[chunk, c] = sum of in[r, c] over the chunk's rows, in row order.
template <typename T>
__global__ void column_partial_kernel(int64_t rows, int64_t cols, const T* in, float* partial) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const int64_t chunks = (rows + kColumnChunk - 1) / kColumnChunk;
  for (int64_t ch = blockIdx.y; ch < chunks; ch += gridDim.y) {
    const int64_t r1 = (ch + 1) * kColumnChunk < rows ? (ch + 1) * kColumnChunk : rows;
    float acc = 0.f;
    for (int64_t r = ch * kColumnChunk; r < r1; ++r) acc += to_f(in[r * cols + c]);
    partial[ch * cols + c] = acc;
  }
}

template <typename T>
__global__ void column_finish_kernel(int64_t chunks, int64_t cols, const float* partial, T* out) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float acc = 0.f;
  for (int64_t ch = 0; ch < chunks; ++ch) acc += partial[ch * cols + c];
  out[c] = from_f<T>(acc);
}

template <typename T>
cudaError_t permute_backward_typed(const MoeMoveParams& p, const void* go, void* gx, cudaStream_t s) {
  permute_backward_kernel<T><<<grid_for(p.tokens), row_threads(p.dim), 0, s>>>(p, static_cast<const T*>(go),
                                                                               static_cast<T*>(gx));
  return cudaGetLastError();
}

template <typename T>
cudaError_t combine_forward_typed(const MoeMoveParams& p, const void* y, const void* w, void* out, cudaStream_t s) {
  combine_forward_kernel<T><<<grid_for(p.tokens), row_threads(p.dim), 0, s>>>(
      p, static_cast<const T*>(y), static_cast<const T*>(w), static_cast<T*>(out));
  return cudaGetLastError();
}

template <typename T>
cudaError_t combine_backward_typed(const MoeMoveParams& p, const void* go, const void* y, const void* w, void* gy,
                                   void* gw, cudaStream_t s) {
  const int64_t blocks = (p.tokens * p.top_k + kWarpsPerBlock - 1) / kWarpsPerBlock;
  combine_backward_kernel<T><<<grid_for(blocks), kWarpsPerBlock * 32, 0, s>>>(
      p, static_cast<const T*>(go), static_cast<const T*>(y), static_cast<const T*>(w), static_cast<T*>(gy),
      static_cast<T*>(gw));
  return cudaGetLastError();
}

template <typename T>
cudaError_t broadcast_rows_typed(int64_t rows, int64_t cols, const void* bias, int64_t bs, void* out,
                                 cudaStream_t s) {
  broadcast_rows_kernel<T><<<grid_for(rows), row_threads(cols), 0, s>>>(rows, cols, static_cast<const T*>(bias), bs,
                                                                       static_cast<T*>(out));
  return cudaGetLastError();
}

template <typename T>
cudaError_t column_sum_typed(int64_t rows, int64_t cols, const void* in, float* partial, void* out, cudaStream_t s) {
  const int64_t chunks = (rows + kColumnChunk - 1) / kColumnChunk;
  const unsigned col_blocks = unsigned((cols + kRowThreads - 1) / kRowThreads);
  if (chunks > 0) {
    const unsigned chunk_blocks = unsigned(chunks < 65535 ? chunks : 65535);  // gridDim.y limit; the kernel strides
    column_partial_kernel<T><<<dim3(col_blocks, chunk_blocks), kRowThreads, 0, s>>>(
        rows, cols, static_cast<const T*>(in), partial);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  column_finish_kernel<T><<<col_blocks, kRowThreads, 0, s>>>(chunks, cols, partial, static_cast<T*>(out));
  return cudaGetLastError();
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

}  // namespace

cudaError_t moe_permute_forward(const MoeMoveParams& p, size_t elem_size, const void* x, void* out,
                                cudaStream_t stream) {
  if (p.rows == 0 || p.dim == 0) return cudaSuccess;
  // Widest word that divides the row and the alignment of both buffers: 16-byte copies for the
  // usual hidden sizes, narrower for odd ones.
  const int64_t row_bytes = p.dim * int64_t(elem_size);
  for (size_t w : {size_t(16), size_t(8), size_t(4), size_t(2)}) {
    if (row_bytes % int64_t(w) != 0 || !aligned(x, w) || !aligned(out, w)) continue;
    if (w == 16) return gather_rows<uint4>(p, x, out, row_bytes, stream);
    if (w == 8) return gather_rows<uint2>(p, x, out, row_bytes, stream);
    if (w == 4) return gather_rows<uint32_t>(p, x, out, row_bytes, stream);
    return gather_rows<uint16_t>(p, x, out, row_bytes, stream);
  }
  return gather_rows<unsigned char>(p, x, out, row_bytes, stream);
}

cudaError_t moe_permute_backward(const MoeMoveParams& p, MoeDType dt, const void* grad_out, void* grad_x,
                                 cudaStream_t stream) {
  if (p.tokens == 0 || p.dim == 0) return cudaSuccess;
  return dt == MoeDType::f32 ? permute_backward_typed<float>(p, grad_out, grad_x, stream)
                             : permute_backward_typed<__nv_bfloat16>(p, grad_out, grad_x, stream);
}

cudaError_t moe_combine_forward(const MoeMoveParams& p, MoeDType dt, const void* y, const void* weights, void* out,
                                cudaStream_t stream) {
  if (p.tokens == 0 || p.dim == 0) return cudaSuccess;
  return dt == MoeDType::f32 ? combine_forward_typed<float>(p, y, weights, out, stream)
                             : combine_forward_typed<__nv_bfloat16>(p, y, weights, out, stream);
}

cudaError_t moe_combine_backward(const MoeMoveParams& p, MoeDType dt, const void* grad_out, const void* y,
                                 const void* weights, void* grad_y, void* grad_weights, cudaStream_t stream) {
  // dim == 0 still runs: grad_weights is then all zeros and must be written.
  if (p.tokens * p.top_k == 0) return cudaSuccess;
  return dt == MoeDType::f32
             ? combine_backward_typed<float>(p, grad_out, y, weights, grad_y, grad_weights, stream)
             : combine_backward_typed<__nv_bfloat16>(p, grad_out, y, weights, grad_y, grad_weights, stream);
}

cudaError_t moe_broadcast_rows(MoeDType dt, int64_t rows, int64_t cols, const void* bias, int64_t bias_stride,
                               void* out, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  return dt == MoeDType::f32 ? broadcast_rows_typed<float>(rows, cols, bias, bias_stride, out, stream)
                             : broadcast_rows_typed<__nv_bfloat16>(rows, cols, bias, bias_stride, out, stream);
}

int64_t moe_column_chunk() { return kColumnChunk; }

cudaError_t moe_column_sum(MoeDType dt, int64_t rows, int64_t cols, const void* in, float* partial, void* out,
                           cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  return dt == MoeDType::f32 ? column_sum_typed<float>(rows, cols, in, partial, out, stream)
                             : column_sum_typed<__nv_bfloat16>(rows, cols, in, partial, out, stream);
}

}  // namespace kernels
}  // namespace wensu
