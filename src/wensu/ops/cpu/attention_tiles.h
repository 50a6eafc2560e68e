// Tile GEMMs for the CPU attention kernels (float32, AVX-512), the two products a flash-style
// tile needs, with head dimensions that are multiples of 16:
//
//   scores:     C[m x n]   = alpha * A[m x D] @ X[j0 : j0+n]^T    X's rows packed into panels
//   accumulate: C[m x N]  += alpha * op(A)[m x k] @ B[k x N]       B rows read in place
//
// Why not sgemm: on the attention tile shapes (64 x 512 x 64 and its transposes) oneDNN's sgemm
// reaches about 90 GFLOP/s on one core against 155 on a large square product, because every call
// packs its operands and one dimension is only 64 deep. Here the keys (and values) of a head are
// packed once into 32-column panels and reused by every query block that reads them, and the
// other products need no packing: their B rows are the head's own rows, read as they lie.
//
// Available on CPUs with AVX-512F (checked at run time; the build's baseline is AVX2). Callers
// fall back to ops::cpu::gemm when `enabled()` is false or the shapes do not fit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace wensu::ops::cpu::tiles {

constexpr int64_t kPanel = 32;  // columns per packed panel

// True when this CPU has AVX-512F and the tiles were not switched off.
bool enabled();
// Process-wide switch (tests compare both paths; `wensu bench attention --gemm` chooses).
void set_enabled(bool on);

// Floats needed to pack n rows of width D: ceil(n / 32) panels of [D x 32].
inline int64_t packed_floats(int64_t n, int64_t D) { return (n + kPanel - 1) / kPanel * kPanel * D; }

// Packs rows [0, n) of X (row stride ldx, D columns) into panels: panel p holds rows
// [32p, 32p + 32) as [D x 32] (element (row 32p + c, column d) at out[p*32*D + d*32 + c]); rows
// past n are zero.
void pack_panels(const float* x, int64_t ldx, int64_t n, int64_t D, float* out);

// C[m x n] = alpha * A[m x D] @ X^T for the packed rows X[0 : n) starting at `panels` (a panel
// boundary). A row-major with leading dimension lda; C with ldc. D % 16 == 0.
void scores(int64_t m, int64_t n, int64_t D, float alpha, const float* a, int64_t lda, const float* panels, float* c,
            int64_t ldc);

// C[m x N] += alpha * A @ B with A(i, kk) = a[i * sai + kk * sak] (row-major A: sai = lda,
// sak = 1; transposed: sai = 1, sak = lda) and B [k x N] row-major with ldb. N % 16 == 0.
void accumulate(int64_t m, int64_t N, int64_t k, float alpha, const float* a, int64_t sai, int64_t sak,
                const float* b, int64_t ldb, float* c, int64_t ldc);

// A 64-byte aligned float buffer that only grows (per-thread packed panels).
class PanelBuffer {
 public:
  float* reserve(int64_t floats);
  float* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float[], Free> data_;
  int64_t size_ = 0;
};

}  // namespace wensu::ops::cpu::tiles
