// Differentiable all-gather of rows, for losses in which every rank's rows meet every other
// rank's: the contrastive loss of a two-tower model (ops/contrastive.h) compares each image of
// the global batch with every text, so each rank needs all ranks' embeddings.
//
// Data-parallel use, per step on every rank (pairs R = this rank's rows of the gathered batch):
//   Tensor img = dist::all_gather_rows(img_local, c), txt = dist::all_gather_rows(txt_local, c);
//   Tensor part = ops::contrastive_loss(img, txt, log_scale, first_row_of_R, |R|);
//   (part * c.size()).backward();
//   dist::all_reduce_gradients(params, c, /*average=*/true);
// The parts sum over ranks to the full loss, and the gather's backward sums each row's gradient
// over ranks, so the gradients summed over ranks are those of the full loss. all_reduce_gradients
// with average = true divides that sum by the world size; scaling each rank's part by
// c.size() before backward undoes it (or reduce with average = false). The loss to report is
// the sum of the parts over ranks (an all_reduce_sum of the unscaled part).
#pragma once
#include "wensu/dist/comm.h"

namespace wensu::dist {

// x [n, ...] on each rank -> [sum of n over ranks, ...], rank 0's rows first, the same tensor
// on every rank. n may differ by rank (0 included); dtype and trailing shape must agree, and a
// rank that differs makes every rank throw before any data moves. CPU tensors, any dtype.
// Recorded by autograd: every rank's loss may use every row, so the gradient of this rank's
// rows is the sum over ranks of the incoming gradient's slice for them (a reduce-scatter).
// Collective in forward and in backward: every rank must call it, and every rank must
// back-propagate through its output when x requires grad (x must require grad on all ranks or
// on none; checked). With one rank it returns x itself: no copy, no node.
Tensor all_gather_rows(const Tensor& x, const Communicator& c);

}  // namespace wensu::dist
