// Mixture-of-experts data movement and expert products (FastMoE's fast path, He et al. 2021):
// route once, permute tokens into expert-contiguous order in one pass, run all experts as one
// grouped matrix multiply, and combine the expert outputs back with the gate weights in one
// pass. No per-token loops in model code and no per-expert masks over all tokens.
//
//   expert_index [T, K] --moe_routing--> MoeRouting (counts, offsets, position, source)
//   x [T, D] --moe_permute--> xs [N, D] --grouped_matmul(w1)--> act --grouped_matmul(w2)--> ys [N, D]
//   ys [N, D], gate weights [T, K] --moe_combine--> out [T, D]
//
// N = rows kept = T * K minus the pairs dropped by capacity.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "wensu/core/tensor.h"

namespace wensu::ops {

// Where each (token, choice) pair goes in the expert-sorted buffer. Built without gradients.
struct MoeRouting {
  int64_t tokens = 0, top_k = 0, experts = 0;
  int64_t capacity = 0;           // rows kept per expert at most; 0 = dropless
  std::vector<int64_t> counts;    // [E] rows kept per expert (host)
  std::vector<int64_t> offsets;   // [E + 1] prefix sum: expert e owns rows [offsets[e], offsets[e+1])
  Tensor position;                // int64 [T, K], device of expert_index: row of pair (t, k), -1 if dropped
  Tensor source;                  // int64 [N], same device: the token t each sorted row came from
  int64_t dropped = 0;            // pairs dropped by capacity
  int64_t rows() const { return offsets.empty() ? 0 : offsets.back(); }
};

// expert_index int64 [T, K], values in [0, num_experts), or -1 for a pair the gate chose not to
// route (GShard's random second expert; position -1, counted neither as kept nor as dropped);
// anything else is an error naming the token, the choice and the value. Inside an expert, rows are ordered by choice, then token:
// the first choices of all tokens in token order, then the second choices, ... (GShard: first
// choices claim capacity first). capacity > 0 keeps the first `capacity` rows of each expert
// and drops the rest (position -1).
MoeRouting moe_routing(const Tensor& expert_index, int64_t num_experts, int64_t capacity = 0);

// x [T, D] -> [N, D]: row r is x[source[r]]. Differentiable in x (backward: each token sums
// the gradients of its rows, in choice order, so results do not depend on threads).
Tensor moe_permute(const Tensor& x, const MoeRouting& r);

// y [N, D], weights [T, K] -> [T, D]: out[t] = sum_k weights[t, k] * y[position[t, k]], where a
// dropped pair adds nothing. Differentiable in y and weights.
Tensor moe_combine(const Tensor& y, const Tensor& weights, const MoeRouting& r);

// x [N, Din] with rows grouped by `offsets` ([G + 1], offsets[0] = 0, offsets[G] = N), w: G
// tensors [Dout, Din] (nn.Linear's layout), bias: empty or G tensors [Dout]
// -> [N, Dout]: rows [offsets[g], offsets[g+1]) times w[g]^T, plus bias[g]. Groups may be
// empty. Differentiable in x, every w[g] and every bias[g].
Tensor grouped_matmul(const Tensor& x, const std::vector<Tensor>& w, const std::vector<int64_t>& offsets,
                      const std::vector<Tensor>& bias = {});

// Top k along the last dim: x [..., n] -> values [..., k] (differentiable) and int64 indices
// [..., k], largest first; equal values keep the lower index first; NaN counts as largest.
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k);

// Device kernels, the same names in cpu:: and cuda::. Output tensors are allocated by the
// caller (contiguous, of the right shape) and fully written unless said otherwise.
namespace cpu {
// Fills counts, offsets, position, source and dropped of r (tokens, top_k, experts, capacity set);
// throws the error described above for an expert index outside [0, experts) other than -1.
void moe_routing(const Tensor& expert_index, MoeRouting& r);
void moe_permute_forward(const Tensor& x, const MoeRouting& r, const Tensor& out);  // out [N, D]
void moe_permute_backward(const Tensor& grad_out, const MoeRouting& r, const Tensor& grad_x);  // grad_x [T, D]
void moe_combine_forward(const Tensor& y, const Tensor& weights, const MoeRouting& r, const Tensor& out);
void moe_combine_backward(const Tensor& grad_out, const Tensor& y, const Tensor& weights, const MoeRouting& r,
                          const Tensor& grad_y, const Tensor& grad_weights);
// out [N, Dout] = per group x w[g]^T (+ bias[g]).
void grouped_matmul_forward(const Tensor& x, const std::vector<Tensor>& w, const std::vector<int64_t>& offsets,
                            const std::vector<Tensor>& bias, const Tensor& out);
// grad_x [N, Din] = per group grad_out w[g]; grad_w[g] [Dout, Din] = grad_out_g^T x_g;
// grad_bias[g] [Dout] = column sums of grad_out_g (grad_bias empty when there is no bias).
void grouped_matmul_backward(const Tensor& grad_out, const Tensor& x, const std::vector<Tensor>& w,
                             const std::vector<int64_t>& offsets, const Tensor& grad_x,
                             const std::vector<Tensor>& grad_w, const std::vector<Tensor>& grad_bias);
// x contiguous, viewed as [rows, n] -> values [rows, k], indices int64 [rows, k] (the order of
// topk above). CPU only for now: a CUDA tensor gets no_cuda_impl("topk").
void topk(const Tensor& x, int64_t k, const Tensor& values, const Tensor& indices);
}  // namespace cpu

#ifdef WENSU_CUDA
// CUDA twins (src/wensu/ops/cuda/moe.cu, kernels in kernels/moe/): same contracts for tensors on
// the GPU; MoeRouting's counts and offsets stay on the host (one small copy per routing), its
// position and source tensors on the device. grouped_matmul runs on cuBLAS.
namespace cuda {
void moe_routing(const Tensor& expert_index, MoeRouting& r);
void moe_permute_forward(const Tensor& x, const MoeRouting& r, const Tensor& out);
void moe_permute_backward(const Tensor& grad_out, const MoeRouting& r, const Tensor& grad_x);
void moe_combine_forward(const Tensor& y, const Tensor& weights, const MoeRouting& r, const Tensor& out);
void moe_combine_backward(const Tensor& grad_out, const Tensor& y, const Tensor& weights, const MoeRouting& r,
                          const Tensor& grad_y, const Tensor& grad_weights);
void grouped_matmul_forward(const Tensor& x, const std::vector<Tensor>& w, const std::vector<int64_t>& offsets,
                            const std::vector<Tensor>& bias, const Tensor& out);
void grouped_matmul_backward(const Tensor& grad_out, const Tensor& x, const std::vector<Tensor>& w,
                             const std::vector<int64_t>& offsets, const Tensor& grad_x,
                             const std::vector<Tensor>& grad_w, const std::vector<Tensor>& grad_bias);
}  // namespace cuda
#endif

}  // namespace wensu::ops
