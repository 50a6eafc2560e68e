// Typed row-major GEMM over CBLAS, and how a strided 2-d view maps onto BLAS arguments.
// OpenBLAS is loaded at run time by blas.cpp (see there for why), so calls go through
// function pointers resolved once.
#pragma once
#include <cblas.h>

#include <cstdint>
#include <string>

namespace wensu::ops::cpu {

struct BlasApi {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&cblas_dgemm) dgemm = nullptr;
  void (*set_num_threads)(int) = nullptr;
  std::string library;  // path that was loaded
  std::string core;     // kernel family OpenBLAS chose, e.g. "SapphireRapids"
};

// Loads the BLAS on first use (thread-safe); throws wensu::Error if it cannot be loaded.
const BlasApi& blas();

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

inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  blas().sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n),
               int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                 int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  blas().dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n),
               int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

}  // namespace wensu::ops::cpu
