// Loading OpenBLAS at run time. OpenBLAS (DYNAMIC_ARCH builds, as Debian ships) picks its
// kernels from the CPU model when the library is loaded. Debian 12's 0.3.21 does not know
// newer or virtualised CPU models and falls back to its generic SSE3 "Prescott" kernels:
// on this project's machines (AVX-512, reported as "Intel Xeon Processor") that is 18 GFLOP/s
// instead of ~115 per core. The choice can only be overridden through OPENBLAS_CORETYPE,
// read by the library's constructor, so we choose from CPUID features, set it, and only then
// dlopen the library. A user's own OPENBLAS_CORETYPE always wins; WENSU_BLAS_LIBRARY selects
// another libopenblas (for example one carried to a machine without Debian's packages).
#include "wensu/ops/cpu/blas.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "wensu/core/check.h"

#ifndef WENSU_BLAS_LIBRARY
#define WENSU_BLAS_LIBRARY "libopenblas.so.0"
#endif

namespace wensu::ops::cpu {
namespace {

const char* core_for_this_cpu() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512fp16")) return "SapphireRapids";
  if (__builtin_cpu_supports("avx512bf16")) return "Cooperlake";
  if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
  if (__builtin_cpu_supports("avx2")) return "Haswell";
  return nullptr;  // let OpenBLAS decide
}

template <typename F>
F symbol(void* lib, const char* name, const std::string& path) {
  void* p = dlsym(lib, name);
  WENSU_CHECK(p, "BLAS library ", path, " has no symbol ", name);
  return reinterpret_cast<F>(p);
}

BlasApi load() {
  std::string path = std::getenv("WENSU_BLAS_LIBRARY") ? std::getenv("WENSU_BLAS_LIBRARY") : WENSU_BLAS_LIBRARY;
  const bool user_core = std::getenv("OPENBLAS_CORETYPE") != nullptr;
  const char* core = user_core ? nullptr : core_for_this_cpu();
  if (core) setenv("OPENBLAS_CORETYPE", core, 1);
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!lib && path != "libopenblas.so.0") lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_GLOBAL);
  if (core) unsetenv("OPENBLAS_CORETYPE");  // do not leak our choice into child processes
  WENSU_CHECK(lib, "cannot load OpenBLAS from ", path, " (", dlerror(),
              "); install libopenblas-openmp-dev or set WENSU_BLAS_LIBRARY to a libopenblas.so");
  BlasApi api;
  api.library = path;
  api.sgemm = symbol<decltype(&cblas_sgemm)>(lib, "cblas_sgemm", path);
  api.dgemm = symbol<decltype(&cblas_dgemm)>(lib, "cblas_dgemm", path);
  api.set_num_threads = symbol<void (*)(int)>(lib, "openblas_set_num_threads", path);
  if (auto name = reinterpret_cast<char* (*)()>(dlsym(lib, "openblas_get_corename"))) api.core = name();
  return api;
}

}  // namespace

const BlasApi& blas() {
  static const BlasApi api = load();
  return api;
}

}  // namespace wensu::ops::cpu
