// Inverted dropout: in training, each element is kept with probability 1 - p and scaled by
// 1 / (1 - p), so the expected value is unchanged and evaluation needs no rescaling.
#pragma once
#include <cstdint>

#include "wensu/core/generator.h"
#include "wensu/core/tensor.h"

namespace wensu::ops {

// x [...] -> [...] (contiguous). p in [0, 1). Returns x itself when !training or p == 0.
// Randomness is counter-based: the call reserves ceil(n / 4) Philox counters from `gen`, and
// element i (row-major in x's shape) keeps its value iff
//   uniform_from_bits(philox4x32(gen.seed(), base + i / 4)[i % 4]) < 1 - p,
// so the mask depends on (seed, offset) only, never on the thread count.
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training = true);

namespace cpu {
// out = keep(i) ? x * 1 / (1 - p) : 0 with the mask above; x and out contiguous, same shape.
void dropout(const Tensor& x, uint64_t seed, uint64_t base, double p, const Tensor& out);
}  // namespace cpu

}  // namespace wensu::ops
