// CPU-only builds: every CUDA entry point says plainly that this build has no CUDA.
#include "wensu/core/allocator.h"
#include "wensu/core/check.h"
#include "wensu/core/device.h"

namespace wensu {

bool cuda_built() { return false; }
bool cuda_available() { return false; }

namespace cuda {
namespace {
[[noreturn]] void no_cuda() {
  throw Error("this wensu was built without CUDA; rebuild with -DWENSU_CUDA=ON on a machine with nvcc");
}
}  // namespace
void* device_malloc(size_t) { no_cuda(); }
void device_free(void*, size_t) { no_cuda(); }
void copy_host_to_device(void*, const void*, size_t) { no_cuda(); }
void copy_device_to_host(void*, const void*, size_t) { no_cuda(); }
void copy_device_to_device(void*, const void*, size_t) { no_cuda(); }
int device_count() { return 0; }
}  // namespace cuda

}  // namespace wensu
