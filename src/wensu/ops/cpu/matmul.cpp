#include <omp.h>

#include "wensu/ops/cpu/blas.h"
#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/matmul.h"

namespace wensu::ops::cpu {

void gemm_batched(const Tensor& a, const Tensor& b, const Tensor& c, double alpha, double beta) {
  const int64_t B = c.size(0), m = c.size(1), n = c.size(2), k = a.size(2);
  WENSU_CHECK(c.strides()[2] == 1, "internal: gemm_batched output must be row-major");
  Tensor A = a, Bm = b;
  BlasMatrix la = blas_layout(m, k, A.strides()[1], A.strides()[2]);
  if (!la.ok) {
    A = a.contiguous().detach();
    la = blas_layout(m, k, A.strides()[1], A.strides()[2]);
  }
  BlasMatrix lb = blas_layout(k, n, Bm.strides()[1], Bm.strides()[2]);
  if (!lb.ok) {
    Bm = b.contiguous().detach();
    lb = blas_layout(k, n, Bm.strides()[1], Bm.strides()[2]);
  }
  const int64_t sa = A.size(0) == 1 ? 0 : A.strides()[0];
  const int64_t sb = Bm.size(0) == 1 ? 0 : Bm.strides()[0];
  const int64_t sc = c.strides()[0];
  const int64_t ldc = m == 1 ? n : c.strides()[1];
  dispatch_float(c.dtype(), "matmul", [&](auto z) {
    using T = decltype(z);
    const T* pa = static_cast<const T*>(A.raw_data());
    const T* pb = static_cast<const T*>(Bm.raw_data());
    T* pc = static_cast<T*>(c.raw_data());
    if (k == 0) {  // empty inner dim: C = beta * C
      for (int64_t i = 0; i < B; ++i)
        for (int64_t r = 0; r < m; ++r)
          for (int64_t j = 0; j < n; ++j) pc[i * sc + r * ldc + j] *= T(beta);
      return;
    }
    // Many small products: one per thread (the GEMM runs single-threaded inside our region).
    // Few large ones: let the GEMM spread each product over all threads.
    const bool per_thread = B >= 2 * omp_get_max_threads() || (B > 1 && m * n * k < (1 << 21));
    auto one = [&](int64_t i) {
      gemm(la.trans, lb.trans, m, n, k, T(alpha), pa + i * sa, la.ld, pb + i * sb, lb.ld, T(beta), pc + i * sc, ldc);
    };
    if (per_thread) {
#pragma omp parallel for schedule(dynamic)
      for (int64_t i = 0; i < B; ++i) one(i);
    } else {  // outside any parallel region, so the GEMM library may use every thread
      for (int64_t i = 0; i < B; ++i) one(i);
    }
  });
}

}  // namespace wensu::ops::cpu
