// Training state <-> checkpoint: model parameters, AdamW state, step, every RNG state, the
// configs and any extra tensors (data cursors). Resuming restores all of it, so a resumed run
// continues exactly where the saved one stopped.
#pragma once
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "wensu/core/check.h"

#include "wensu/io/checkpoint.h"
#include "wensu/nn/module.h"
#include "wensu/optim/adamw.h"

namespace wensu::train {

struct TrainingState {
  int64_t step = 0;
  std::string model_config;  // JSON text
  std::string train_config;  // JSON text
  nn::NamedTensors extra;    // live tensors saved and restored in place
};

void save_training_state(const std::string& path, const nn::Module& model, const optim::AdamW* opt,
                         const TrainingState& st);

// Loads into the live model/optimizer/extra tensors and restores the RNG states; returns the
// stored state (step and configs). Names and shapes must match exactly.
TrainingState load_training_state(const std::string& path, nn::Module& model, optim::AdamW* opt,
                                  const nn::NamedTensors& extra = {});

std::vector<io::NamedTensor> to_io(const nn::NamedTensors& ts);

// Keeps the lines of a metrics.jsonl whose "step" is <= step (and lines without one): a resumed
// run rewrites what a killed run logged after its checkpoint. No file: nothing to do.
// --resume: adopts the settings of the run in opt.out_dir (its model config, and its training
// options through apply(train_config, opt)), keeping only what the command line may change: a
// larger --steps extends a finished run, and --stop-after is this call's. `command` names the
// command in the error when there is no checkpoint. Returns the checkpoint's metadata.
template <class Model, class Options>
io::CheckpointInfo adopt_resumed_settings(Options& opt, const char* command,
                                          void (*apply)(const std::string& train_config, Options& opt)) {
  const std::string ckpt = opt.out_dir + "/checkpoint.h5";
  WENSU_CHECK(std::filesystem::exists(ckpt), command, " --resume: no checkpoint at ", ckpt,
              " (start without --resume, or point --out at the run to continue)");
  io::CheckpointInfo info = io::inspect_checkpoint(ckpt);
  opt.model = nlohmann::json::parse(info.model_config).get<Model>();
  const int64_t steps = opt.steps, stop_after = opt.stop_after;
  apply(info.train_config, opt);
  opt.steps = std::max(steps, opt.steps);
  opt.stop_after = stop_after;
  return info;
}

void truncate_metrics(const std::string& path, int64_t step);

}  // namespace wensu::train
