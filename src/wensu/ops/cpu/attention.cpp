// Dense attention on the CPU. Work is split over (batch, head) pairs, one per thread at a
// time, with single-threaded GEMMs inside (oneDNN and Eigen do that automatically inside a
// parallel region), so every GEMM runs on a warm core with its own scratch rows.
//
// Forward, per (b, h):  S = scale * Q K^T (masked), P = softmax(S), O = P V.
// Backward (P saved):   dV = P^T dO,  dP = dO V^T,
//                       dS = P * (dP - rowsum(dP * P)),   (softmax Jacobian, row by row)
//                       dQ = scale * dS K,  dK = scale * dS^T Q.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "wensu/ops/attention.h"
#include "wensu/ops/cpu/blas.h"
#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/cpu/vec_math.h"

namespace wensu::ops::cpu {
namespace {

// Index of the last key query i may see, +1 (causal alignment at the end).
inline int64_t visible_keys(const AttentionParams& p, int64_t i) {
  if (!p.causal) return p.Lk;
  return std::clamp<int64_t>(i + (p.Lk - p.Lq) + 1, 0, p.Lk);
}

// Softmax of each score row over its visible keys [0, end) minus padded ones; invisible and
// padded keys get weight 0, and a row with nothing visible is all zeros.
template <typename T>
void masked_softmax_rows(const AttentionParams& p, int64_t b, T* S) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t* pad = p.key_padding ? p.key_padding + b * p.Lk : nullptr;
  for (int64_t i = 0; i < p.Lq; ++i) {
    T* row = S + i * p.Lk;
    const int64_t end = visible_keys(p, i);
    T mx = kNegInf;
    if (pad) {
      for (int64_t j = 0; j < end; ++j)
        if (!pad[j]) mx = std::max(mx, row[j]);
    } else {
      mx = vec::max(row, end);
    }
    if (mx == kNegInf) {  // nothing visible: zero weights
      for (int64_t j = 0; j < p.Lk; ++j) row[j] = 0;
      continue;
    }
    // A padded score becomes -inf, whose exp(-inf - mx) is exactly 0 (mx is finite or +inf,
    // and +inf makes the whole row NaN either way), so the row is one branch-free vector pass.
    if (pad)
      for (int64_t j = 0; j < end; ++j)
        if (pad[j]) row[j] = kNegInf;
    const T inv = T(1) / vec::exp_sub_sum(row, mx, row, end);
#pragma omp simd
    for (int64_t j = 0; j < end; ++j) row[j] *= inv;
    for (int64_t j = end; j < p.Lk; ++j) row[j] = 0;
  }
}

// Enough multiply-adds to be worth waking a second thread.
inline bool worth_parallel(const AttentionParams& p) {
  return p.B * p.H > 1 && p.B * p.H * p.Lq * p.Lk * (p.D + p.Dv) >= (int64_t(1) << 18);
}

template <typename T>
void forward_typed(const AttentionParams& p, const T* q, const T* k, const T* v, T* probs, T* out) {
  const int64_t BH = p.B * p.H;
#pragma omp parallel for schedule(dynamic) if (worth_parallel(p))
  for (int64_t bh = 0; bh < BH; ++bh) {
    const int64_t b = bh / p.H, h = bh % p.H;
    const T* Q = q + b * p.q_s[0] + h * p.q_s[2];
    const T* K = k + b * p.k_s[0] + h * p.k_s[2];
    const T* V = v + b * p.v_s[0] + h * p.v_s[2];
    T* O = out + b * p.o_s[0] + h * p.o_s[2];
    T* S = probs + bh * p.Lq * p.Lk;
    gemm(false, true, p.Lq, p.Lk, p.D, T(p.scale), Q, p.q_s[1], K, p.k_s[1], T(0), S, p.Lk);
    masked_softmax_rows(p, b, S);
    gemm(false, false, p.Lq, p.Dv, p.Lk, T(1), S, p.Lk, V, p.v_s[1], T(0), O, p.o_s[1]);
  }
}

template <typename T>
void backward_typed(const AttentionParams& p, const T* q, const T* k, const T* v, const T* probs,
                    const T* dout, T* dq, T* dk, T* dv) {
  const int64_t BH = p.B * p.H;
  // dq/dk/dv are contiguous [B, L, H, D].
  const int64_t dq_s0 = p.Lq * p.H * p.D, dq_s1 = p.H * p.D;
  const int64_t dk_s0 = p.Lk * p.H * p.D, dk_s1 = p.H * p.D;
  const int64_t dv_s0 = p.Lk * p.H * p.Dv, dv_s1 = p.H * p.Dv;
#pragma omp parallel if (worth_parallel(p))
  {
    std::vector<T> dS(size_t(p.Lq * p.Lk));
#pragma omp for schedule(dynamic)
    for (int64_t bh = 0; bh < BH; ++bh) {
      const int64_t b = bh / p.H, h = bh % p.H;
      const T* Q = q + b * p.q_s[0] + h * p.q_s[2];
      const T* K = k + b * p.k_s[0] + h * p.k_s[2];
      const T* V = v + b * p.v_s[0] + h * p.v_s[2];
      const T* dO = dout + b * p.o_s[0] + h * p.o_s[2];
      const T* P = probs + bh * p.Lq * p.Lk;
      T* dQ = dq + b * dq_s0 + h * p.D;
      T* dK = dk + b * dk_s0 + h * p.D;
      T* dV = dv + b * dv_s0 + h * p.Dv;
      gemm(true, false, p.Lk, p.Dv, p.Lq, T(1), P, p.Lk, dO, p.o_s[1], T(0), dV, dv_s1);
      gemm(false, true, p.Lq, p.Lk, p.Dv, T(1), dO, p.o_s[1], V, p.v_s[1], T(0), dS.data(), p.Lk);
      for (int64_t i = 0; i < p.Lq; ++i) {
        T* ds = dS.data() + i * p.Lk;
        const T* pr = P + i * p.Lk;
        T dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < p.Lk; ++j) dot += ds[j] * pr[j];
#pragma omp simd
        for (int64_t j = 0; j < p.Lk; ++j) ds[j] = pr[j] * (ds[j] - dot);
      }
      gemm(false, false, p.Lq, p.D, p.Lk, T(p.scale), dS.data(), p.Lk, K, p.k_s[1], T(0), dQ, dq_s1);
      gemm(true, false, p.Lk, p.D, p.Lq, T(p.scale), dS.data(), p.Lk, Q, p.q_s[1], T(0), dK, dk_s1);
    }
  }
}

}  // namespace

void attention_forward(const AttentionParams& p, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& probs, const Tensor& out) {
  dispatch_float(q.dtype(), "attention", [&](auto z) {
    using T = decltype(z);
    forward_typed<T>(p, static_cast<const T*>(q.raw_data()), static_cast<const T*>(k.raw_data()),
                     static_cast<const T*>(v.raw_data()), static_cast<T*>(probs.raw_data()),
                     static_cast<T*>(out.raw_data()));
  });
}

void attention_backward(const AttentionParams& p, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& probs, const Tensor& dout, const Tensor& dq, const Tensor& dk,
                        const Tensor& dv) {
  dispatch_float(q.dtype(), "attention_backward", [&](auto z) {
    using T = decltype(z);
    backward_typed<T>(p, static_cast<const T*>(q.raw_data()), static_cast<const T*>(k.raw_data()),
                      static_cast<const T*>(v.raw_data()), static_cast<const T*>(probs.raw_data()),
                      static_cast<const T*>(dout.raw_data()), static_cast<T*>(dq.raw_data()),
                      static_cast<T*>(dk.raw_data()), static_cast<T*>(dv.raw_data()));
  });
}

}  // namespace wensu::ops::cpu
