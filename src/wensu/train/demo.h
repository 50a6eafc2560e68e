// The demo training run behind `wensu demo`: a small transformer on the toy task, with AdamW,
// warmup + cosine decay, clipping, a progress bar, metrics.jsonl and a checkpoint. Tests use
// the same function.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "wensu/models/sequence_model.h"
#include "wensu/optim/adamw.h"
#include "wensu/optim/schedule.h"

namespace wensu::train {

struct DemoOptions {
  models::SequenceModelConfig model;
  optim::AdamWConfig adamw;
  optim::ScheduleConfig schedule;
  std::string task = "sum";    // toy task: copy or sum (train/toy_task.h)
  int64_t steps = 600;         // total optimizer steps of the run
  int64_t batch = 16;
  int64_t length = 32;
  int64_t accumulate = 1;      // micro-batches per optimizer step (gradient accumulation)
  double clip_norm = 1.0;
  uint64_t seed = 0;
  std::string out_dir;         // metrics.jsonl and checkpoint.h5 go here ("" = nowhere)
  std::string resume;          // checkpoint to continue from ("" = fresh start)
  int64_t stop_after = -1;     // stop (and checkpoint) after this many steps (for tests)
  bool progress = true;
};

struct DemoResult {
  std::vector<double> losses;  // one per optimizer step taken in this call
  int64_t first_step = 0;      // step number of losses[0]
  double seconds = 0;
};

DemoOptions default_demo_options();
DemoResult run_demo(const DemoOptions& opt);

}  // namespace wensu::train
