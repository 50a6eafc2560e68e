// Training state <-> checkpoint: model parameters, AdamW state, step, every RNG state, the
// configs and any extra tensors (data cursors). Resuming restores all of it, so a resumed run
// continues exactly where the saved one stopped.
#pragma once
#include <string>

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
void truncate_metrics(const std::string& path, int64_t step);

}  // namespace wensu::train
