// CUDA runtime checks. Test names start with "Cuda" so ctest labels them `cuda`
// (tests/CMakeLists.txt); without a GPU they skip themselves.
#include <gtest/gtest.h>

#include <cstring>

#include "wensu/core/device.h"
#include "wensu/core/generator.h"
#include "wensu/core/tensor.h"

using namespace wensu;

TEST(CudaBuild, ReportsHowItWasBuilt) {
#ifdef WENSU_CUDA
  EXPECT_TRUE(cuda_built());
#else
  EXPECT_FALSE(cuda_built());
  EXPECT_FALSE(cuda_available());
  // A CUDA tensor in a CPU-only build is a clear error, not a crash.
  try {
    Tensor::empty({4}, DType::f32, Device::cuda);
    FAIL() << "allocating on CUDA in a CPU-only build did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("without CUDA"), std::string::npos) << e.what();
  }
#endif
}

TEST(CudaRuntime, HostDeviceRoundTripIsExact) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  Generator g(5);
  for (DType t : {DType::f32, DType::bf16, DType::i64}) {
    Tensor h = Tensor::randn({3, 1000}, g).to(t == DType::i64 ? DType::f64 : t);
    if (t == DType::i64) h = Tensor::arange(3000).reshape({3, 1000});
    Tensor d = h.to(Device::cuda);
    EXPECT_EQ(d.device(), Device::cuda);
    Tensor back = d.to(Device::cpu);
    ASSERT_EQ(back.nbytes(), h.nbytes());
    EXPECT_EQ(std::memcmp(back.raw_data(), h.contiguous().raw_data(), h.nbytes()), 0) << dtype_name(t);
  }
}

TEST(CudaRuntime, DeviceToDeviceCopyAndFill) {
  if (!cuda_available()) GTEST_SKIP() << "no usable GPU";
  Tensor a = Tensor::full({257}, 3.5, DType::f32, Device::cuda);
  Tensor b = Tensor::empty({257}, DType::f32, Device::cuda);
  b.copy_(a);
  for (float v : b.to_vector<float>()) ASSERT_EQ(v, 3.5f);
}
