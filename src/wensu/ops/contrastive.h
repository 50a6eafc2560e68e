// The contrastive objective of two-tower image-text models (CLIP, BriVL): row normalisation,
// the cosine-similarity matrix and the symmetric InfoNCE loss with a learned temperature.
// Everything here is composed from differentiable library ops (matmul, sum, max, sqrt, div,
// exp, cross_entropy, narrow, ...), so autograd and every device those ops run on come with
// them; there is no kernel of its own.
//
// Data parallelism: every rank gathers all ranks' embeddings (dist::all_gather_rows, whose
// backward sums the gradient over ranks), then asks contrastive_loss for the local part of its
// own rows. The local parts of all ranks sum to the full loss, and after backward the gradients
// of the embeddings, summed over ranks, are those of the full loss (tests/mpi/test_gather.cpp).
// dist::all_reduce_gradients(average = true) divides the summed gradients by the world size, so
// a trainer that averages must back-propagate world_size * local part on each rank.
#pragma once
#include <cstdint>

#include "wensu/core/tensor.h"

namespace wensu::ops {

// x [..., D] -> [..., D]:  x / max(||x||_2, eps) over the last dim, row by row; PyTorch's
// F.normalize(x, dim=-1, eps=eps). Computed as x / sqrt(max(sum x^2, eps^2)) so that a zero
// row has a finite gradient (1 / eps, as in PyTorch) instead of the 0 * inf of sqrt at 0.
// eps^2 must be a normal number of x's dtype (eps >= 1.1e-19 for float32).
Tensor l2_normalize(const Tensor& x, double eps = 1e-12);

// a [Na, D], b [Nb, D] -> [Na, Nb]: the cosine similarities l2_normalize(a) l2_normalize(b)^T
// (for retrieval: row i ranks the b's for a_i). Differentiable like the rest, though
// evaluation usually runs it under NoGradGuard.
Tensor similarity_matrix(const Tensor& a, const Tensor& b);

// Symmetric InfoNCE of CLIP / BriVL over B matched pairs: row i of image_emb goes with row i of
// text_emb, every other row is a negative. image_emb, text_emb [B, D] are the projected
// embeddings before normalisation; log_scale [] or [1] is the learned log inverse temperature.
//   I = l2_normalize(image_emb), T = l2_normalize(text_emb)
//   s = min(exp(log_scale), max_scale)   (CLIP's cap of 100; log_scale gets no gradient while
//                                          capped; pass infinity for no cap)
//   S = s I T^T  [B, B]
//   loss = (CE(S, arange B) + CE(S^T, arange B)) / 2      (CE: mean cross-entropy over rows)
// which is open_clip's ClipLoss. With rows R = [first, first + count) it returns the local part
//   (sum_{i in R} ce(S_{i,:}, i) + sum_{j in R} ce(S_{:,j}, j)) / (2B),
// the share of the loss owned by a rank holding pairs R of a gathered batch; the parts over a
// partition of [0, B) sum to the loss. count = -1 means every row from first on, so the defaults
// give the full loss. A local part computes only its count rows and count columns of S
// (2 count B D multiply-adds). count = 0 gives 0, still connected to the inputs (so a rank
// without pairs joins the collective backward of the gather with zero gradients).
// Differentiable in image_emb, text_emb and log_scale. -> [] (the dtype of the inputs)
Tensor contrastive_loss(const Tensor& image_emb, const Tensor& text_emb, const Tensor& log_scale,
                        int64_t first = 0, int64_t count = -1, double max_scale = 100.0);

}  // namespace wensu::ops
