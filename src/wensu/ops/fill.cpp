#include "wensu/ops/fill.h"

#include <vector>

#include "wensu/core/allocator.h"
#include "wensu/ops/cpu/copy.h"
#include "wensu/ops/dispatch.h"

namespace wensu::ops {

void fill_(const Tensor& x, double value) {
  if (x.device() == Device::cpu) return cpu::fill(x, value);
  // Until CUDA has a fill kernel: fill on the host and copy over (creation only, not hot).
  WENSU_CHECK(x.is_contiguous(), "fill_ on a non-contiguous CUDA tensor");
  Tensor h = Tensor::empty(x.shape(), x.dtype());
  cpu::fill(h, value);
  cuda::copy_host_to_device(x.raw_data(), h.raw_data(), x.nbytes());
}

}  // namespace wensu::ops
