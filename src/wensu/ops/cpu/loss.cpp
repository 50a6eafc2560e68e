#include <cmath>
#include <vector>

#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/cpu/vec_math.h"
#include "wensu/ops/loss.h"

namespace wensu::ops::cpu {

template <class T>
double cross_entropy_forward(const T* logits, const int64_t* targets, double* lse, int64_t N, int64_t C,
                             int64_t ignore_index, double label_smoothing) {
  const double eps = label_smoothing;
  // Row losses land in a buffer and are summed serially, so the result does not depend on how
  // rows were split over threads.
  std::vector<double> row_loss(size_t(N), 0.0);
#pragma omp parallel for schedule(static) if (N * C >= kParallelGrain)
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = targets[i];
    if (t == ignore_index) {  // padding: no work, and backward never reads this lse
      lse[i] = 0.0;
      continue;
    }
    const T* x = logits + i * C;
    const T m = vec::max(x, C);
    // s = sum exp(x - m) and shift = sum (m - x); both sums are of non-negative terms, so
    // nothing cancels even when the logits are large.
    const T s = vec::sum_exp_sub(x, m, C);
    T shift = 0;
#pragma omp simd reduction(+ : shift)
    for (int64_t c = 0; c < C; ++c) shift += m - x[c];
    const double ls = std::log(double(s));
    lse[i] = double(m) + ls;
    // -log p_t = (m - x_t) + log s;  1/C sum_c -log p_c = log s + shift / C.
    const double nll = double(m - x[t]) + ls;
    row_loss[i] = eps == 0.0 ? nll : (1.0 - eps) * nll + eps * (ls + double(shift) / double(C));
  }
  double total = 0.0;
  for (int64_t i = 0; i < N; ++i) total += row_loss[i];
  return total;
}

template <class T>
void cross_entropy_backward(const T* logits, const int64_t* targets, const double* lse, T* dlogits, int64_t N,
                            int64_t C, int64_t ignore_index, double label_smoothing, double scale) {
  const T sc = T(scale);
  const T uniform = T(label_smoothing / double(C));
  const T on_target = T((1.0 - label_smoothing) * scale);
#pragma omp parallel for schedule(static) if (N * C >= kParallelGrain)
  for (int64_t i = 0; i < N; ++i) {
    const T* x = logits + i * C;
    T* d = dlogits + i * C;
    const int64_t t = targets[i];
    if (t == ignore_index) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) d[c] = T(0);
      continue;
    }
    // x - lse in double, then exp in T: the difference is small where softmax is not
    // negligible, so rounding it to T keeps full relative precision. The row of d holds the
    // exp's arguments, so the exp runs as one vector pass in place.
    const double l = lse[i];
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[c] = T(double(x[c]) - l);
    vec::exp(d, d, C);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[c] = (d[c] - uniform) * sc;
    d[t] -= on_target;
  }
}

template double cross_entropy_forward<float>(const float*, const int64_t*, double*, int64_t, int64_t, int64_t,
                                             double);
template double cross_entropy_forward<double>(const double*, const int64_t*, double*, int64_t, int64_t, int64_t,
                                              double);
template void cross_entropy_backward<float>(const float*, const int64_t*, const double*, float*, int64_t, int64_t,
                                            int64_t, double, double);
template void cross_entropy_backward<double>(const double*, const int64_t*, const double*, double*, int64_t,
                                             int64_t, int64_t, double, double);

}  // namespace wensu::ops::cpu
