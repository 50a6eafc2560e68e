// Versioned HDF5 checkpoints: model parameters, optimizer state, RNG states, the typed configs
// (as JSON text) and a few string attributes, in one file. The layout is documented in
// docs/checkpoint-format.md; the format version is bumped whenever it changes, and a build reads
// every version up to kCheckpointFormatVersion.
//
// Writes are atomic: the file is written to PATH.tmp.<pid> next to PATH, flushed to disk and
// renamed over PATH, so a crash or an error never leaves a partial checkpoint behind.
// Every failure is a one-line wensu::Error that names the file (and the tensor, where there is one).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "wensu/core/generator.h"
#include "wensu/core/tensor.h"

namespace wensu::io {

constexpr int kCheckpointFormatVersion = 1;
constexpr const char* kCheckpointFormatName = "wensu-checkpoint";

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

struct Checkpoint {
  int format_version = kCheckpointFormatVersion;
  int64_t step = 0;
  std::string model_config;  // JSON text of the typed model config
  std::string train_config;  // JSON text of the optimizer/schedule/trainer config (may be empty)
  // Model parameters, stored in their own dtype (float32, float64, bfloat16, float16, int64).
  std::vector<NamedTensor> params;
  // Optimizer state, names like "adamw.exp_avg/layers.0.attn.q_proj.weight".
  std::vector<NamedTensor> optimizer;
  std::map<std::string, GeneratorState> rng;  // every named generator (core/generator.h)
  // Small string attributes. save_checkpoint adds "wensu_version" and "created" (UTC, ISO 8601)
  // unless the caller already set them.
  std::map<std::string, std::string> meta;
  std::vector<NamedTensor> extra;  // other state, e.g. data-loader cursors as int64 tensors
};

// Writes `ck` to `path` atomically (see above). Tensors may live on any device and be strided
// views; they are written contiguous, in the order given. Tensor names must be non-empty and
// unique within each section. format_version is always written as kCheckpointFormatVersion.
void save_checkpoint(const std::string& path, const Checkpoint& ck);

// Reads a whole checkpoint into CPU tensors, in the order they were saved.
Checkpoint load_checkpoint(const std::string& path);

// Copies `from` into the existing tensors `into` (e.g. a model's parameters), matching by name.
// Missing names, unexpected names (when `strict`), shape mismatches and int64 <-> floating
// mismatches each throw a one-line error naming `file` and the tensor, e.g.
//   checkpoint run/ck.h5: parameter 'layers.0.ffn.fc1.weight' has shape [64, 32], expected [128, 32]
// Floating dtypes convert (bfloat16 storage -> float32 parameter). Everything is checked before
// anything is copied, so a failed load leaves `into` untouched. `what` names the kind of tensor
// in messages: "parameter" or "optimizer state".
void load_tensors_into(const std::vector<NamedTensor>& from, const std::vector<NamedTensor>& into,
                       const std::string& file, const std::string& what, bool strict = true);

// What a checkpoint holds, read without loading tensor data (for `wensu ckpt info` and for
// checking compatibility before a load).
struct TensorInfo {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  int64_t nbytes = 0;
};

struct CheckpointInfo {
  std::string path;
  int format_version = 0;
  int64_t step = 0;
  std::string model_config;
  std::string train_config;
  std::map<std::string, std::string> meta;
  std::map<std::string, GeneratorState> rng;
  std::vector<TensorInfo> params, optimizer, extra;
};

CheckpointInfo inspect_checkpoint(const std::string& path);

// Human-readable summary: format version, step, meta, tensor counts and sizes per section, RNG
// states, the configs as pretty JSON, and with `list_tensors` one line per tensor.
std::string describe_checkpoint(const CheckpointInfo& info, bool list_tensors = false);

// Tensor names are stored as HDF5 link names, which cannot contain '/': "%" -> "%25",
// "/" -> "%2F", and the name "." -> "%2E". Exposed for the format doc's examples and tests.
std::string escape_tensor_name(const std::string& name);
std::string unescape_tensor_name(const std::string& link);

}  // namespace wensu::io
