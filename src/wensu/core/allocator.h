// Memory for tensors. The CPU allocator caches freed blocks by exact size: training repeats
// the same shapes every step, and reusing warm pages avoids a page-fault storm on each fresh
// multi-megabyte buffer. The cache holds at most the program's high-water mark of live memory
// (at least 64 MiB); past that it is emptied, so varying shapes cannot grow it without end. CUDA memory goes through the CUDA backend's caching allocator.
#pragma once
#include <cstddef>

#include "wensu/core/device.h"

namespace wensu {

void* allocate(size_t bytes, Device device);
void deallocate(void* p, size_t bytes, Device device);

struct AllocatorStats {
  size_t live_bytes = 0;    // handed out and not yet returned
  size_t peak_bytes = 0;    // max of live_bytes since the last reset
  size_t cached_bytes = 0;  // returned and kept for reuse
};
AllocatorStats cpu_allocator_stats();
void reset_peak_memory();
void empty_cache();  // give cached CPU blocks back to the system

// Raw CUDA runtime entry points, implemented in src/wensu/core/cuda/ (or reporting that the
// build has no CUDA). Kept as plain functions so the core does not include CUDA headers.
namespace cuda {
void* device_malloc(size_t bytes);
void device_free(void* p, size_t bytes);
void copy_host_to_device(void* dst, const void* src, size_t bytes);
void copy_device_to_host(void* dst, const void* src, size_t bytes);
void copy_device_to_device(void* dst, const void* src, size_t bytes);
int device_count();
}  // namespace cuda

}  // namespace wensu
