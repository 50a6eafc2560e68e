#include "wensu/core/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "wensu/core/check.h"

namespace wensu {
namespace {

constexpr size_t kAlign = 64;  // one cache line, enough for AVX-512 loads

struct CpuCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  AllocatorStats stats;
  size_t high_water = 0;  // max live bytes ever (never reset): the cache's bound
};

// The cache never holds more than this: the most memory the program ever had live (so a loop of
// fixed shapes finds everything it frees again next iteration), and at least 64 MiB. Without a
// bound, batches of varying shapes (sequences of every length) left a block of every size
// behind and grew the cache without end.
size_t cache_limit(const CpuCache& c) { return std::max<size_t>(c.high_water, size_t(64) << 20); }

void free_cached(CpuCache& c) {
  for (auto& [n, blocks] : c.free_blocks) {
    for (void* p : blocks) std::free(p);
    c.stats.cached_bytes -= n * blocks.size();
    blocks.clear();
  }
}

CpuCache& cache() {
  static CpuCache* c = new CpuCache;  // leaked on purpose: tensors may die during static teardown
  return *c;
}

size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  // Small blocks round to the alignment, large ones to 4 KiB so near-equal sizes share a bucket.
  size_t q = bytes >= (1u << 20) ? 4096 : kAlign;
  return (bytes + q - 1) / q * q;
}

void* cpu_allocate(size_t bytes) {
  size_t n = round_size(bytes);
  auto& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(n);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= n;
      c.stats.live_bytes += n;
      if (c.stats.live_bytes > c.stats.peak_bytes) c.stats.peak_bytes = c.stats.live_bytes;
      c.high_water = std::max(c.high_water, c.stats.live_bytes);
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlign, n);
  if (!p) {
    empty_cache();
    p = std::aligned_alloc(kAlign, n);
  }
  if (!p) throw Error(detail::concat("out of host memory allocating ", bytes, " bytes"));
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.live_bytes += n;
  if (c.stats.live_bytes > c.stats.peak_bytes) c.stats.peak_bytes = c.stats.live_bytes;
  c.high_water = std::max(c.high_water, c.stats.live_bytes);
  return p;
}

void cpu_deallocate(void* p, size_t bytes) {
  size_t n = round_size(bytes);
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.live_bytes -= n;
  c.stats.cached_bytes += n;
  c.free_blocks[n].push_back(p);
  if (c.stats.cached_bytes > cache_limit(c)) free_cached(c);  // everything: sizes in use come back
}

}  // namespace

void* allocate(size_t bytes, Device device) {
  if (device == Device::cpu) return cpu_allocate(bytes);
  return cuda::device_malloc(bytes);
}

void deallocate(void* p, size_t bytes, Device device) {
  if (!p) return;
  if (device == Device::cpu)
    cpu_deallocate(p, bytes);
  else
    cuda::device_free(p, bytes);
}

AllocatorStats cpu_allocator_stats() {
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void reset_peak_memory() {
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.peak_bytes = c.stats.live_bytes;
}

void empty_cache() {
  auto& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  free_cached(c);
}

}  // namespace wensu
