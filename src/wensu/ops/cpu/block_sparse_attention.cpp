// Block-sparse attention on the CPU, FlashAttention-2 style (Dao 2023), tiled by the layout.
//
// Forward, per (b, h, query row block I), over the key blocks J of row I in the layout:
//   S = scale * Q_I K_J^T                      (masked: causal inside blocks, padding, tails)
//   m' = max(m, rowmax S),  P = exp(S - m'),  l' = l * exp(m - m') + rowsum P
//   O_I = O_I * exp(m - m') + P V_J            (online softmax: no row of S is ever whole)
// then O_I /= l and LSE_I = m + log l, the only thing saved besides O.
//
// Backward, with P = exp(S - LSE) recomputed tile by tile and Delta_i = rowsum(dO_i * O_i)
// (= sum_j P_ij dP_ij, which is what the softmax Jacobian needs):
//   dP = dO V^T,  dS = P * (dP - Delta),  dQ = scale * dS K,  dK = scale * dS^T Q,  dV = P^T dO.
// Every task owns the rows it writes (no atomics; a schedule's result does not depend on the
// thread count), in one of two schedules (BackwardSchedule):
// - per head: a task is one (b, h) and walks the CSR list once, recomputing each tile once and
//   running five GEMMs on it (S, dP, dQ += dS K, dK += dS^T Q, dV += P^T dO);
// - split: a dQ pass by query row block over the CSR list, then a dK/dV pass by key column block
//   over the CSC list; each recomputes S and dP, so seven GEMMs per tile, but the row blocks of
//   one head run in parallel, which is what a batch of fewer heads than threads needs.
//
// Tiles: consecutive nonzero blocks (most of a window or a dense layout) are merged into one
// "run" of up to kRunTokens tokens, so each GEMM is [block x run] rather than [block x block]:
// oneDNN's sgemm pays a fixed cost per call that dominates a 64 x 64 x 64 product. Scratch per
// thread is two [block x kRunTokens] tiles plus a [block x Dv] accumulator, whatever L is.
// Parallel over (b, h, block) tasks with a dynamic schedule (rows of global blocks are long), or
// over whole heads when they balance the threads; the GEMMs run single-threaded inside the
// parallel region. The GEMM operands come from block_sparse_operands.h: on AVX-512 CPUs
// (float32, head dims multiples of 16) contiguous copies and packed panels of each head's keys
// and values for the tile GEMMs of attention_tiles.h, else the tensors' rows and sgemm.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "wensu/core/parallel.h"
#include "wensu/ops/block_sparse_attention.h"
#include "wensu/ops/cpu/blas.h"
#include "wensu/ops/cpu/block_sparse_operands.h"
#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/cpu/vec_math.h"

namespace wensu::ops::cpu {

namespace {
std::atomic<int> g_backward_schedule{int(BackwardSchedule::kAuto)};
}  // namespace

void set_backward_schedule(BackwardSchedule s) { g_backward_schedule = int(s); }
BackwardSchedule backward_schedule() { return BackwardSchedule(g_backward_schedule.load()); }

namespace {

using Params = BlockSparseAttentionParams;
using block_sparse::accumulate;
using block_sparse::BlockRows;
using block_sparse::HeadRows;
using block_sparse::Rows;

// Tokens per merged run of blocks: a [64 x 512] float tile is 128 KiB, within L2 next to the
// K/V rows it multiplies, and wide enough that the GEMM call overhead is amortised.
constexpr int64_t kRunTokens = 2048;

inline int64_t run_blocks(const Params& p) { return std::max<int64_t>(1, kRunTokens / p.block); }

// End of the run starting at entry e of a block index list [e, end): consecutive block
// indices, at most max_blocks of them.
inline int64_t run_end(const int64_t* idx, int64_t e, int64_t end, int64_t max_blocks) {
  int64_t f = e + 1;
  while (f < end && f - e < max_blocks && idx[f] == idx[f - 1] + 1) ++f;
  return f;
}

// How many of the keys [j0, j0 + n) query i may see before the causal limit
// j <= i + (Lk - Lq) (aligned at the end, as in ops::attention).
inline int64_t visible_cols(const Params& p, int64_t i, int64_t j0, int64_t n) {
  if (!p.causal) return n;
  return std::clamp<int64_t>(i + (p.Lk - p.Lq) + 1 - j0, 0, n);
}

// Calls f(j0, n) for each merged run of the key blocks of query row block rb (rows
// [i0, i0 + m)): keys [j0, j0 + n), cut at the causal limit of the block's last row (which sees
// the most keys); runs with nothing visible are skipped. Forward and the dQ pass share it.
template <typename F>
inline void for_each_key_run(const Params& p, int64_t rb, int64_t i0, int64_t m, F f) {
  const int64_t bs = p.block, end = p.row_ptr[rb + 1];
  for (int64_t e = p.row_ptr[rb], g; e < end; e = g) {
    g = run_end(p.col_idx, e, end, run_blocks(p));
    const int64_t j0 = p.col_idx[e] * bs;
    const int64_t n = visible_cols(p, i0 + m - 1, j0, std::min((p.col_idx[g - 1] + 1) * bs, p.Lk) - j0);
    if (n > 0) f(j0, n);
  }
}

inline bool worth_parallel(const Params& p, int64_t tasks) {
  const int64_t nnz = p.row_ptr[p.n_row_blocks];
  return tasks > 1 && p.B * p.H * nnz * p.block * p.block * (p.D + p.Dv) >= (int64_t(1) << 18);
}

template <typename T>
constexpr T kInf = std::numeric_limits<T>::infinity();

template <typename T>
inline void zero(T* x, int64_t n) {
  std::fill(x, x + n, T(0));
}

// Padded keys get score -inf, so exp() makes them exactly 0 with no branch in the vector pass.
template <typename T>
inline void mask_padding(T* s, const int64_t* pad, int64_t c) {
  if (!pad) return;
  for (int64_t j = 0; j < c; ++j)
    if (pad[j]) s[j] = -kInf<T>;
}

// One row of a recomputed tile: the scores s (n of them, the first c visible) become
// P = exp(s - lse), 0 where masked; the row dp of dO V^T becomes dS = P * (dP - delta).
template <typename T>
inline void probs_and_dscores(T* s, T* dp, int64_t n, int64_t c, const int64_t* pad, T lse, T delta) {
  if (c == 0 || lse == kInf<T>) {  // the row sees nothing here (or anywhere)
    zero(s, n);
    zero(dp, n);
    return;
  }
  mask_padding(s, pad, c);
  vec::exp_sub_sum(s, lse, s, c);
  zero(s + c, n - c);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dp[j] = s[j] * (dp[j] - delta);
}

// The tile of query rows [i0, i0 + m) (Q, dO rows; LSE L and Delta Dl at row i0) against keys
// [j0, j0 + n): S becomes P = exp(scale Q K^T - LSE) and dP becomes dS = P * (dO V^T - Delta),
// both [m x n] with leading dimension ld.
template <typename T>
inline void recompute_tile(const Params& p, const HeadRows<T>& keys, const HeadRows<T>& values, Rows<T> Q, Rows<T> dO,
                           int64_t m, int64_t n, int64_t ld, int64_t i0, int64_t j0, const int64_t* pad, const T* L,
                           const T* Dl, T* S, T* dP) {
  keys.scores(m, n, T(p.scale), Q, j0, S, ld);
  values.scores(m, n, T(1), dO, j0, dP, ld);
  for (int64_t r = 0; r < m; ++r)
    probs_and_dscores(S + r * ld, dP + r * ld, n, visible_cols(p, i0 + r, j0, n), pad, L[r], Dl[r]);
}

// The B * H heads alone keep every thread busy: a multiple of the thread count, or plenty.
inline bool heads_balance_threads(const Params& p) {
  const int64_t threads = num_threads(), heads = p.B * p.H;
  return heads % threads == 0 || heads >= 4 * threads;
}

// BackwardSchedule::kAuto: per head when the heads alone balance the threads.
inline bool per_head_schedule(const Params& p) {
  switch (p.backward_schedule) {
    case BackwardSchedule::kPerHead: return true;
    case BackwardSchedule::kSplit: return false;
    case BackwardSchedule::kAuto: break;
  }
  return heads_balance_threads(p);
}

template <typename T>
void forward_typed(const Params& p, const T* q, const T* k, const T* v, T* out, T* lse) {
  const int64_t bs = p.block, W = run_blocks(p) * bs, nrb = p.n_row_blocks;
  const bool tiles = block_sparse::use_tiles<T>(p);
  // A task is a whole head when the heads balance the threads (its keys are packed once), else one
  // query row block.
  const int64_t per_task = heads_balance_threads(p) ? nrb : 1, tasks = p.B * p.H * nrb / per_task;
#pragma omp parallel if (worth_parallel(p, tasks))
  {
    std::vector<T> S(static_cast<size_t>(bs * W)), acc(static_cast<size_t>(bs * p.Dv));
    std::vector<T> mx(static_cast<size_t>(bs)), sum(static_cast<size_t>(bs));
    HeadRows<T> keys, values;
    BlockRows<T> q_rows;
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t u = t * per_task; u < (t + 1) * per_task; ++u) {
        const int64_t rb = u % nrb, bh = u / nrb, b = bh / p.H, h = bh % p.H;
        const int64_t i0 = rb * bs, m = std::min(bs, p.Lq - i0);
        keys.load(tiles, bh, k + b * p.k_s[0] + h * p.k_s[2], p.k_s[1], p.Lk, p.D, false, true);
        values.load(tiles, bh, v + b * p.v_s[0] + h * p.v_s[2], p.v_s[1], p.Lk, p.Dv, true, false);
        const Rows<T> Q = q_rows.load(tiles, q + b * p.q_s[0] + h * p.q_s[2] + i0 * p.q_s[1], p.q_s[1], m, p.D);
        const int64_t* pad = p.key_padding ? p.key_padding + b * p.Lk : nullptr;
        zero(acc.data(), m * p.Dv);
        std::fill(mx.begin(), mx.end(), -kInf<T>);
        zero(sum.data(), m);
        for_each_key_run(p, rb, i0, m, [&](int64_t j0, int64_t n) {
          keys.scores(m, n, T(p.scale), Q, j0, S.data(), W);
          for (int64_t r = 0; r < m; ++r) {
            T* s = S.data() + r * W;
            const int64_t c = visible_cols(p, i0 + r, j0, n);
            mask_padding(s, pad ? pad + j0 : nullptr, c);
            const T m_old = mx[size_t(r)], m_new = std::max(m_old, vec::max(s, c));
            if (m_new == -kInf<T>) {  // nothing visible to this row so far
              zero(s, n);
              continue;
            }
            // exp(-inf) = 0 drops the (empty) old accumulator on the row's first visible key.
            const T alpha = m_old == m_new ? T(1) : std::exp(m_old - m_new);
            sum[size_t(r)] = sum[size_t(r)] * alpha + vec::exp_sub_sum(s, m_new, s, c);
            zero(s + c, n - c);
            mx[size_t(r)] = m_new;
            if (alpha != T(1)) {
              T* a = acc.data() + r * p.Dv;
#pragma omp simd
              for (int64_t d = 0; d < p.Dv; ++d) a[d] *= alpha;
            }
          }
          accumulate(tiles, false, m, p.Dv, n, T(1), S.data(), W, values.from(j0), acc.data(), p.Dv);
        });
        T* O = out + b * p.o_s[0] + h * p.o_s[2] + i0 * p.o_s[1];
        T* lse_row = lse + bh * p.Lq + i0;
        for (int64_t r = 0; r < m; ++r) {
          T* o = O + r * p.o_s[1];
          const T l = sum[size_t(r)];
          if (l == T(0)) {  // no visible key: zeros, and an LSE that makes every weight 0
            zero(o, p.Dv);
            lse_row[r] = kInf<T>;
            continue;
          }
          const T inv = T(1) / l;
          const T* a = acc.data() + r * p.Dv;
#pragma omp simd
          for (int64_t d = 0; d < p.Dv; ++d) o[d] = a[d] * inv;
          lse_row[r] = mx[size_t(r)] + std::log(l);
        }
      }
    }
  }
}

template <typename T>
void backward_typed(const Params& p, const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout,
                    T* dq, T* dk, T* dv) {
  const int64_t bs = p.block, W = run_blocks(p) * bs;
  // dq, dk, dv are contiguous [B, L, H, D].
  const int64_t dq_s0 = p.Lq * p.H * p.D, dq_s1 = p.H * p.D;
  const int64_t dk_s0 = p.Lk * p.H * p.D, dk_s1 = p.H * p.D;
  const int64_t dv_s0 = p.Lk * p.H * p.Dv, dv_s1 = p.H * p.Dv;

  // Delta [B, H, Lq] = rowsum(dO * O).
  std::vector<T> delta(size_t(p.B * p.H * p.Lq));
#pragma omp parallel for if (p.B * p.Lq * p.H * p.Dv >= kParallelGrain)
  for (int64_t bi = 0; bi < p.B * p.Lq; ++bi) {
    const int64_t b = bi / p.Lq, i = bi % p.Lq;
    for (int64_t h = 0; h < p.H; ++h) {
      const T* o = out + b * p.o_s[0] + i * p.o_s[1] + h * p.o_s[2];
      const T* g = dout + b * p.do_s[0] + i * p.do_s[1] + h * p.do_s[2];
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t d = 0; d < p.Dv; ++d) s += o[d] * g[d];
      delta[size_t((b * p.H + h) * p.Lq + i)] = s;
    }
  }

  const int64_t nrb = p.n_row_blocks, ncb = p.n_col_blocks, heads = p.B * p.H;
  const bool tiles = block_sparse::use_tiles<T>(p);

  // dQ of query row block rb of head bh, and with dkv also its dK, dV contributions: the five
  // GEMMs of a tile, on this thread's operands.
  struct Scratch {
    std::vector<T> S, dP, dQ;
    HeadRows<T> keys, values;
    BlockRows<T> q_rows, do_rows;
  };
  auto row_block = [&](Scratch& w, int64_t bh, int64_t rb, bool dkv) {
    const int64_t b = bh / p.H, h = bh % p.H;
    const int64_t i0 = rb * bs, m = std::min(bs, p.Lq - i0);
    w.keys.load(tiles, bh, k + b * p.k_s[0] + h * p.k_s[2], p.k_s[1], p.Lk, p.D, true, true);
    w.values.load(tiles, bh, v + b * p.v_s[0] + h * p.v_s[2], p.v_s[1], p.Lk, p.Dv, false, true);
    const Rows<T> Q = w.q_rows.load(tiles, q + b * p.q_s[0] + h * p.q_s[2] + i0 * p.q_s[1], p.q_s[1], m, p.D);
    const Rows<T> dO = w.do_rows.load(tiles, dout + b * p.do_s[0] + h * p.do_s[2] + i0 * p.do_s[1], p.do_s[1], m, p.Dv);
    const T* L = lse + bh * p.Lq + i0;
    const T* Dl = delta.data() + bh * p.Lq + i0;
    const int64_t* pad = p.key_padding ? p.key_padding + b * p.Lk : nullptr;
    T* dK = dk + b * dk_s0 + h * p.D;
    T* dV = dv + b * dv_s0 + h * p.Dv;
    // dQ accumulates in a contiguous [m x D] block, written out once.
    zero(w.dQ.data(), m * p.D);
    for_each_key_run(p, rb, i0, m, [&](int64_t j0, int64_t n) {
      recompute_tile(p, w.keys, w.values, Q, dO, m, n, W, i0, j0, pad ? pad + j0 : nullptr, L, Dl, w.S.data(),
                     w.dP.data());
      accumulate(tiles, false, m, p.D, n, T(p.scale), w.dP.data(), W, w.keys.from(j0), w.dQ.data(), p.D);
      if (!dkv) return;
      accumulate(tiles, true, n, p.Dv, m, T(1), w.S.data(), W, dO, dV + j0 * dv_s1, dv_s1);
      accumulate(tiles, true, n, p.D, m, T(p.scale), w.dP.data(), W, Q, dK + j0 * dk_s1, dk_s1);
    });
    T* dQ = dq + b * dq_s0 + h * p.D + i0 * dq_s1;
    for (int64_t r = 0; r < m; ++r) std::copy_n(w.dQ.data() + r * p.D, p.D, dQ + r * dq_s1);
  };
  auto scratch = [&] {
    return Scratch{std::vector<T>(size_t(bs * W)), std::vector<T>(size_t(bs * W)), std::vector<T>(size_t(bs * p.D)),
                   {}, {}, {}, {}};
  };

  if (per_head_schedule(p)) {
#pragma omp parallel if (worth_parallel(p, heads))
    {
      Scratch w = scratch();
#pragma omp for schedule(dynamic)
      for (int64_t bh = 0; bh < heads; ++bh) {
        const int64_t b = bh / p.H, h = bh % p.H;
        for (int64_t j = 0; j < p.Lk; ++j) {
          zero(dk + b * dk_s0 + h * p.D + j * dk_s1, p.D);
          zero(dv + b * dv_s0 + h * p.Dv + j * dv_s1, p.Dv);
        }
        for (int64_t rb = 0; rb < nrb; ++rb) row_block(w, bh, rb, true);
      }
    }
    return;
  }

  const int64_t tasks_q = heads * nrb, tasks_kv = heads * ncb;
  const bool par = worth_parallel(p, std::min(tasks_q, tasks_kv));
#pragma omp parallel if (par)
  {
    Scratch w = scratch();

    // dQ pass: tasks own query row blocks.
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks_q; ++t) row_block(w, t / nrb, t % nrb, false);

    // dK, dV pass: tasks own key column blocks; tiles [M x n] with leading dimension bs, M up to
    // W rows (a run of consecutive row blocks attending to this column block). The block's keys
    // and values are the panel operands (keyed by task, not head: forget the dQ pass's); Q and
    // dO rows are read in place.
    w.keys.forget();
    w.values.forget();
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks_kv; ++t) {
      const int64_t cb = t % ncb, bh = t / ncb, b = bh / p.H, h = bh % p.H;
      const int64_t j0 = cb * bs, n = std::min(bs, p.Lk - j0);
      const T* Q = q + b * p.q_s[0] + h * p.q_s[2];
      const T* dO = dout + b * p.do_s[0] + h * p.do_s[2];
      w.keys.load(tiles, t, k + b * p.k_s[0] + h * p.k_s[2] + j0 * p.k_s[1], p.k_s[1], n, p.D, false, true);
      w.values.load(tiles, t, v + b * p.v_s[0] + h * p.v_s[2] + j0 * p.v_s[1], p.v_s[1], n, p.Dv, false, true);
      const T* L = lse + bh * p.Lq;
      const T* Dl = delta.data() + bh * p.Lq;
      const int64_t* pad = p.key_padding ? p.key_padding + b * p.Lk + j0 : nullptr;
      T* dK = dk + b * dk_s0 + h * p.D + j0 * dk_s1;
      T* dV = dv + b * dv_s0 + h * p.Dv + j0 * dv_s1;
      for (int64_t r = 0; r < n; ++r) {
        zero(dK + r * dk_s1, p.D);
        zero(dV + r * dv_s1, p.Dv);
      }
      const int64_t end = p.col_ptr[cb + 1];
      for (int64_t e = p.col_ptr[cb], f; e < end; e = f) {
        f = run_end(p.row_idx, e, end, run_blocks(p));
        int64_t i0 = p.row_idx[e] * bs;
        const int64_t i1 = std::min((p.row_idx[f - 1] + 1) * bs, p.Lq);
        if (p.causal) i0 = std::max(i0, j0 - (p.Lk - p.Lq));  // earlier rows see no key of this block
        const int64_t M = i1 - i0;
        if (M <= 0) continue;
        const Rows<T> Qi{Q + i0 * p.q_s[1], p.q_s[1]}, dOi{dO + i0 * p.do_s[1], p.do_s[1]};
        w.keys.scores(M, n, T(p.scale), Qi, 0, w.S.data(), bs);
        w.values.scores(M, n, T(1), dOi, 0, w.dP.data(), bs);
        for (int64_t r = 0; r < M; ++r) {
          const int64_t i = i0 + r;
          probs_and_dscores(w.S.data() + r * bs, w.dP.data() + r * bs, n, visible_cols(p, i, j0, n), pad, L[i],
                            Dl[i]);
        }
        accumulate(tiles, true, n, p.Dv, M, T(1), w.S.data(), bs, dOi, dV, dv_s1);
        accumulate(tiles, true, n, p.D, M, T(p.scale), w.dP.data(), bs, Qi, dK, dk_s1);
      }
    }
  }
}

}  // namespace

void block_sparse_attention_forward(const BlockSparseAttentionParams& p, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const Tensor& out, const Tensor& lse) {
  dispatch_float(q.dtype(), "block_sparse_attention", [&](auto z) {
    using T = decltype(z);
    forward_typed<T>(p, static_cast<const T*>(q.raw_data()), static_cast<const T*>(k.raw_data()),
                     static_cast<const T*>(v.raw_data()), static_cast<T*>(out.raw_data()),
                     static_cast<T*>(lse.raw_data()));
  });
}

void block_sparse_attention_backward(const BlockSparseAttentionParams& p, const Tensor& q, const Tensor& k,
                                     const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout,
                                     const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  dispatch_float(q.dtype(), "block_sparse_attention_backward", [&](auto z) {
    using T = decltype(z);
    backward_typed<T>(p, static_cast<const T*>(q.raw_data()), static_cast<const T*>(k.raw_data()),
                      static_cast<const T*>(v.raw_data()), static_cast<const T*>(out.raw_data()),
                      static_cast<const T*>(lse.raw_data()), static_cast<const T*>(dout.raw_data()),
                      static_cast<T*>(dq.raw_data()), static_cast<T*>(dk.raw_data()),
                      static_cast<T*>(dv.raw_data()));
  });
}

}  // namespace wensu::ops::cpu
