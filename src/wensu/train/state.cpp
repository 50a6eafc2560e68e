#include "wensu/train/state.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"

namespace wensu::train {

std::vector<io::NamedTensor> to_io(const nn::NamedTensors& ts) {
  std::vector<io::NamedTensor> out;
  for (auto& [n, t] : ts) out.push_back({n, t});
  return out;
}

void save_training_state(const std::string& path, const nn::Module& model, const optim::AdamW* opt,
                         const TrainingState& st) {
  io::Checkpoint ck;
  ck.step = st.step;
  ck.model_config = st.model_config;
  ck.train_config = st.train_config;
  ck.params = to_io(model.named_parameters());
  if (opt) ck.optimizer = to_io(opt->state());
  ck.rng = all_generator_states();
  ck.extra = to_io(st.extra);
  io::save_checkpoint(path, ck);
}

TrainingState load_training_state(const std::string& path, nn::Module& model, optim::AdamW* opt,
                                  const nn::NamedTensors& extra) {
  io::Checkpoint ck = io::load_checkpoint(path);
  NoGradGuard ng;
  io::load_tensors_into(ck.params, to_io(model.named_parameters()), path, "parameter");
  if (opt) {
    io::load_tensors_into(ck.optimizer, to_io(opt->state()), path, "optimizer state");
    opt->sync_steps_from_state();
  }
  if (!extra.empty()) io::load_tensors_into(ck.extra, to_io(extra), path, "extra state");
  restore_generator_states(ck.rng);
  TrainingState st;
  st.step = ck.step;
  st.model_config = ck.model_config;
  st.train_config = ck.train_config;
  st.extra = extra;
  return st;
}

void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("step") && j["step"].get<int64_t>() > step) continue;
    kept += line + "\n";
  }
  in.close();
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << kept;
  std::filesystem::rename(tmp, path);
}

}  // namespace wensu::train
