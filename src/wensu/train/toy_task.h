// Small synthetic sequence tasks that a transformer can only solve with attention, used by
// `wensu demo` and the end-to-end tests. Loss starts near ln(V) and falls towards 0.
//   copy: target[i] = ids[i-1]                      (learnt in tens of steps)
//   sum:  target[i] = (ids[i-1] + ids[i-2]) mod V   (a plateau, then a sudden drop: the model
//                                                    must combine two positions)
// Positions without a defined target are ignored (-100).
#pragma once
#include <string>

#include "wensu/core/generator.h"
#include "wensu/core/tensor.h"

namespace wensu::train {

struct ToyBatch {
  Tensor ids;      // int64 [B, L]
  Tensor targets;  // int64 [B, L], -100 where ignored
};

enum class ToyTask { copy, sum };
ToyTask toy_task_from_name(const std::string& name);

ToyBatch make_toy_batch(ToyTask task, Generator& gen, int64_t batch, int64_t length, int64_t vocab);

}  // namespace wensu::train
