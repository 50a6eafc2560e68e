// CUDA builds: a caching device allocator over cudaMalloc (never managed memory) and copies.
// Freed blocks are kept by exact rounded size, like the CPU allocator, because training
// allocates the same shapes every step and cudaMalloc/cudaFree synchronise the device.
#include <cuda_runtime.h>

#include <mutex>
#include <unordered_map>
#include <vector>

#include "wensu/core/allocator.h"
#include "wensu/core/check.h"
#include "wensu/core/device.h"

namespace wensu {
namespace {

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(detail::concat("CUDA error in ", what, ": ", cudaGetErrorString(e)));
}

struct DeviceCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
};
DeviceCache& device_cache() {
  static DeviceCache* c = new DeviceCache;
  return *c;
}
size_t round_device(size_t bytes) { return (bytes + 511) / 512 * 512; }

}  // namespace

bool cuda_built() { return true; }

bool cuda_available() {
  static const bool ok = [] {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  }();
  return ok;
}

namespace cuda {

void* device_malloc(size_t bytes) {
  size_t n = round_device(bytes);
  auto& c = device_cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(n);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      return p;
    }
  }
  void* p = nullptr;
  check_cuda(cudaMalloc(&p, n), "cudaMalloc");
  return p;
}

void device_free(void* p, size_t bytes) {
  auto& c = device_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_blocks[round_device(bytes)].push_back(p);
}

void copy_host_to_device(void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy host->device");
}
void copy_device_to_host(void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy device->host");
}
void copy_device_to_device(void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy device->device");
}
int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

}  // namespace cuda
}  // namespace wensu
