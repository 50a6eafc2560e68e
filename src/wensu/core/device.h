// Where a tensor's memory lives. The CPU always exists; CUDA only in WENSU_CUDA builds with a GPU.
#pragma once
#include <cstdint>

namespace wensu {

enum class Device : uint8_t { cpu, cuda };

inline const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

bool cuda_built();      // compiled with WENSU_CUDA
bool cuda_available();  // built with CUDA and at least one GPU is usable

}  // namespace wensu
