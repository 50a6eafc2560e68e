// GEMM for the CPU kernels, row-major, on strided 2-d views.
//
// float32 goes to oneDNN's sgemm, measured against OpenBLAS 0.3.21 (Debian 12) on this
// project's machines, one thread: 150 vs 133 GFLOP/s on the transformer's projection shapes and
// 153 vs 86 GFLOP/s on the attention shape [512 x 512] @ [512 x 64]. (Debian's OpenBLAS also
// does not recognise these CPUs and silently falls back to 18 GFLOP/s SSE3 kernels unless
// OPENBLAS_CORETYPE is set.) oneDNN has no float64 GEMM; float64 exists for gradient checks
// and references, and goes to Eigen.
// Both use OpenMP and run single-threaded when called inside one of our parallel regions.
#pragma once
#include <oneapi/dnnl/dnnl.h>

#include <Eigen/Core>
#include <cstdint>

#include "wensu/core/check.h"

namespace wensu::ops::cpu {

// A 2-d view with strides (row, col) as BLAS sees it: row-major with leading dimension `ld`,
// transposed when the view is column-major. ok=false when neither stride is 1.
struct BlasMatrix {
  bool ok = false;
  bool trans = false;
  int64_t ld = 0;
};

inline BlasMatrix blas_layout(int64_t rows, int64_t cols, int64_t srow, int64_t scol) {
  if (cols == 1 && rows == 1) return {true, false, 1};
  if (scol == 1 || cols == 1) {
    int64_t ld = rows == 1 ? cols : srow;
    if (ld >= cols && ld > 0) return {true, false, ld};
  }
  if (srow == 1 || rows == 1) {
    int64_t ld = cols == 1 ? rows : scol;
    if (ld >= rows && ld > 0) return {true, true, ld};
  }
  return {};
}

// C[m, n] = alpha * op(A)[m, k] @ op(B)[k, n] + beta * C, op = transpose when ta/tb.
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  WENSU_CHECK(st == dnnl_success, "oneDNN sgemm failed (status ", int(st), ") for m=", m, " n=", n, " k=", k);
}

inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                 int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Map = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
  // Stored shapes: A is [m, k] or, transposed, [k, m]; likewise B.
  Map A(a, ta ? k : m, ta ? m : k, Eigen::OuterStride<>(lda));
  Map B(b, tb ? n : k, tb ? k : n, Eigen::OuterStride<>(ldb));
  Eigen::Map<Mat, 0, Eigen::OuterStride<>> C(c, m, n, Eigen::OuterStride<>(ldc));
  if (beta == 0.0)
    C.setZero();  // never read C: it may hold garbage (NaN * 0 would stay NaN)
  else if (beta != 1.0)
    C *= beta;
  if (ta && tb)
    C.noalias() += alpha * A.transpose() * B.transpose();
  else if (ta)
    C.noalias() += alpha * A.transpose() * B;
  else if (tb)
    C.noalias() += alpha * A * B.transpose();
  else
    C.noalias() += alpha * A * B;
}

}  // namespace wensu::ops::cpu
