// The safetensors format (huggingface/safetensors), how PyTorch models are exchanged without
// pickle: an 8-byte little-endian header length N, N bytes of JSON
//   {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ...,
//    "__metadata__": {"key": "value", ...}}
// (optionally padded with spaces), then the raw little-endian tensor bytes, row-major; offsets
// count from the first byte after the header. Wensu reads it to convert reference models
// (scripts/export_esm2.py, HF transformers' model.safetensors) into its checkpoints.
//
// Read dtypes: F32, F64, F16, BF16, I64, each into the Wensu dtype of the same name. Every
// failure is a one-line wensu::Error naming the file (and the tensor, where there is one).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "wensu/io/checkpoint.h"

namespace wensu::io {

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;  // "__metadata__" (string values only, per the format)
  std::vector<NamedTensor> tensors;             // CPU tensors, in the order of their data in the file
};

// Reads every tensor of `path`. Checks the header against the file before reading data: a
// truncated file, a dtype Wensu does not read, or a byte range that does not match the dtype
// and shape is an error naming the tensor.
SafetensorsFile load_safetensors(const std::string& path);

// Writes tensors (any device, any strides; names unique and non-empty) and string metadata,
// data in the order given, the header padded with spaces to a multiple of 8 bytes as the
// reference writer does. Throws naming the file when it cannot be written.
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// "F32" <-> DType::f32 etc.; safetensors_dtype throws for names Wensu does not read.
const char* safetensors_dtype_name(DType t);
DType safetensors_dtype(const std::string& name);

}  // namespace wensu::io
