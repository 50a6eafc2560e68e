// CPU kernels of the indexing ops. Every scatter-like kernel is race-free by construction (each
// task owns a disjoint set of output elements) rather than by atomics, so results are
// deterministic and independent of the thread count.
#include <algorithm>
#include <vector>

#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/indexing.h"

namespace wensu::ops::cpu {
namespace {

// Inner elements per task in the scatter kernels: a few cache lines of output, small enough to
// give every thread work when the outer extent is short (e.g. a 33-token protein vocabulary).
constexpr int64_t kChunk = 256;

// An operand addressed over index's shape viewed as [outer, n, inner] around `dim`: element
// (o, k, i) sits at outer_off[o] + k * dim_stride + inner_off[i] (k is the index value for the
// operand being gathered from or scattered into). Precomputed once per call so the loops do no
// index arithmetic beyond two table lookups.
struct Addressing {
  std::vector<int64_t> outer_off, inner_off;
  int64_t dim_stride = 0;
};

Addressing address(const Shape& ishape, int64_t dim, const Shape& strides) {
  const int64_t nd = int64_t(ishape.size());
  auto offsets = [&](int64_t lo, int64_t hi) {
    int64_t count = 1;
    for (int64_t d = lo; d < hi; ++d) count *= ishape[d];
    std::vector<int64_t> off(size_t(count), 0);
    for (int64_t f = 0; f < count; ++f) {
      int64_t rem = f, o = 0;
      for (int64_t d = hi - 1; d >= lo; --d) {
        o += (rem % ishape[d]) * strides[d];
        rem /= ishape[d];
      }
      off[size_t(f)] = o;
    }
    return off;
  };
  Addressing a;
  a.outer_off = offsets(0, dim);
  a.inner_off = offsets(dim + 1, nd);
  a.dim_stride = strides[dim];
  return a;
}

}  // namespace

void index_select(const Tensor& x, int64_t outer, int64_t n, int64_t inner, const Tensor& idx,
                  const Tensor& out) {
  const int64_t m = idx.numel(), rows = outer * m;
  const int64_t* ip = idx.data<int64_t>();
  dispatch_float(out.dtype(), "index_select", [&](auto z) {
    using T = decltype(z);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = r / m, j = r % m;
      std::copy_n(xp + (o * n + ip[j]) * inner, inner, op + r * inner);
    }
  });
}

void index_add(const Tensor& g, int64_t outer, int64_t m, int64_t inner, const Tensor& idx, int64_t n,
               int64_t skip, const Tensor& out) {
  const int64_t* ip = idx.data<int64_t>();
  // Bucket the positions j by target row with a stable counting sort: the j with idx[j] == v
  // are order[start[v] .. start[v+1]) in increasing order. Each (row, chunk) task then owns its
  // output slice and sums into it in a fixed order: no atomics, same bits for any thread count.
  std::vector<int64_t> start(static_cast<size_t>(n + 1), 0), order(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j)
    if (ip[j] != skip) ++start[size_t(ip[j] + 1)];
  for (int64_t v = 0; v < n; ++v) start[size_t(v + 1)] += start[size_t(v)];
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t j = 0; j < m; ++j)
      if (ip[j] != skip) order[size_t(next[size_t(ip[j])]++)] = j;
  }
  const int64_t nchunks = (inner + kChunk - 1) / kChunk;
  const int64_t tasks = outer * n * nchunks;
  const bool par = outer * std::max(m, n) * inner >= kParallelGrain;
  dispatch_float(out.dtype(), "index_add", [&](auto z) {
    using T = decltype(z);
    const T* gp = g.data<T>();
    T* op = out.data<T>();
    // Tasks are uneven (frequent tokens own long buckets), hence dynamic scheduling.
#pragma omp parallel for schedule(dynamic, 8) if (par)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t c = t % nchunks, v = (t / nchunks) % n, o = t / (nchunks * n);
      const int64_t i0 = c * kChunk, len = std::min(kChunk, inner - i0);
      // Accumulate in double: a frequent token's row can collect thousands of contributions.
      double acc[kChunk];
      std::fill_n(acc, len, 0.0);
      for (int64_t s = start[size_t(v)]; s < start[size_t(v + 1)]; ++s) {
        const T* src = gp + (o * m + order[size_t(s)]) * inner + i0;
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) acc[i] += double(src[i]);
      }
      T* dst = op + (o * n + v) * inner + i0;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) dst[i] = T(acc[i]);
    }
  });
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  const Shape& ishape = index.shape();
  const Addressing xa = address(ishape, dim, x.strides());
  const int64_t n = ishape[dim], inner = int64_t(xa.inner_off.size());
  const int64_t rows = int64_t(xa.outer_off.size()) * n;
  const int64_t* ip = index.data<int64_t>();
  dispatch_float(out.dtype(), "gather", [&](auto z) {
    using T = decltype(z);
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = out.data<T>();
    const int64_t* xi = xa.inner_off.data();
    // Each row (o, k) of the output is written by one iteration.
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xb = xp + xa.outer_off[size_t(r / n)];
      const int64_t* ir = ip + r * inner;
      T* orow = op + r * inner;
      for (int64_t i = 0; i < inner; ++i) orow[i] = xb[ir[i] * xa.dim_stride + xi[i]];
    }
  });
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const Shape& ishape = index.shape();
  const Addressing oa = address(ishape, dim, out.strides());
  const Addressing sa = address(ishape, dim, src.strides());
  const int64_t outer = int64_t(oa.outer_off.size()), n = ishape[dim], inner = int64_t(oa.inner_off.size());
  const int64_t nchunks = (inner + kChunk - 1) / kChunk;
  const int64_t tasks = outer * nchunks;
  const int64_t* ip = index.data<int64_t>();
  dispatch_float(out.dtype(), "scatter_add", [&](auto z) {
    using T = decltype(z);
    T* op = out.data<T>();
    const T* sp = static_cast<const T*>(src.raw_data());
    const int64_t *oi = oa.inner_off.data(), *si = sa.inner_off.data();
    // A task owns one outer position and one chunk of inner positions. Index values only move
    // along `dim`, so two tasks never touch the same output element; within a task the n
    // contributions along `dim` are added in order.
#pragma omp parallel for schedule(static) if (outer * n * inner >= kParallelGrain)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t o = t / nchunks, i0 = (t % nchunks) * kChunk, i1 = std::min(inner, i0 + kChunk);
      T* ob = op + oa.outer_off[size_t(o)];
      const T* sb = sp + sa.outer_off[size_t(o)];
      for (int64_t k = 0; k < n; ++k) {
        const int64_t* ir = ip + (o * n + k) * inner;
        const T* sr = sb + k * sa.dim_stride;
        for (int64_t i = i0; i < i1; ++i) ob[ir[i] * oa.dim_stride + oi[i]] += sr[si[i]];
      }
    }
  });
}

void masked_fill(const Tensor& x, const Tensor& mask, const Shape& mask_strides, double value,
                 const Tensor& out) {
  dispatch_float(out.dtype(), "masked_fill", [&](auto z) {
    using T = decltype(z);
    StridedLoop<3> loop(out.shape(), {&out.strides(), &x.strides(), &mask_strides});
    T* o = out.data<T>();
    const T* xp = static_cast<const T*>(x.raw_data());
    const int64_t* mp = static_cast<const int64_t*>(mask.raw_data());
    const T v = T(value);
    loop.run([&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
      T* po = o + off[0];
      const T* px = xp + off[1];
      const int64_t* pm = mp + off[2];
      if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) po[i] = pm[i] != 0 ? v : px[i];
      } else if (st[2] == 0) {  // one mask value for the whole row (e.g. a key-padding mask)
        if (*pm != 0) {
          for (int64_t i = 0; i < n; ++i) po[i * st[0]] = v;
        } else {
          for (int64_t i = 0; i < n; ++i) po[i * st[0]] = px[i * st[1]];
        }
      } else {
        for (int64_t i = 0; i < n; ++i) po[i * st[0]] = pm[i * st[2]] != 0 ? v : px[i * st[1]];
      }
    });
  });
}

}  // namespace wensu::ops::cpu
