#include "wensu/train/pretrain.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/dist/comm.h"
#include "wensu/io/checkpoint.h"
#include "wensu/io/fasta.h"
#include "wensu/ops/loss.h"
#include "wensu/train/lm_trainer.h"
#include "wensu/train/mlm_data.h"
#include "wensu/train/state.h"

namespace wensu::train {
namespace {

bool has_moe(const models::Esm2Config& c) {
  for (int64_t i = 0; i < c.num_layers; ++i)
    if (c.layer_is_moe(i)) return true;
  return false;
}

// ESM-2 masked-LM pretraining as the shared loop's task.
class MlmTask : public TokenLmTask {
 public:
  MlmTask(const PretrainOptions& opt, models::Esm2& model, MlmShare& data, bool common_length)
      : opt_(opt), model_(model), data_(data), common_length_(common_length) {}
  nn::Module& model() override { return model_; }
  Tensor forward(const Tensor& tokens) override { return model_.forward(tokens); }
  Tensor aux_loss() const override { return model_.aux_loss(); }
  LmBatch next_batch() override {
    auto parts = data_.next_parts();
    // MoE layers route and balance over the whole global batch, counting padded positions too,
    // so every rank pads its rows to the same length as one process holding all streams would.
    int64_t len = 0;
    if (common_length_) {
      for (const auto& p : parts) len = std::max(len, p.tokens.size(1));
      for (int64_t l : dist::Communicator::world().all_gather(len)) len = std::max(len, l);
    }
    MlmBatch m = MlmShare::stack(parts, len);
    return {m.tokens, m.targets, m.masked, m.real_tokens};
  }
  Tensor cursors() const override { return data_.cursors(); }
  void restore(const Tensor& c) override { data_.restore(c); }
  int64_t epoch() const override { return data_.epoch(); }
  int64_t skipped_records() const override { return opt_.skip_invalid ? data_.skipped_records() : -1; }
  std::pair<double, int64_t> validate() override {
    if (opt_.val_data.empty()) return {0.0, -1};
    return masked_lm_loss(model_, opt_.val_data, opt_.max_len, opt_.tokens_per_batch, opt_.val_batches, 1234);
  }
  std::string model_config_json() const override { return nlohmann::json(opt_.model).dump(); }
  std::string train_config_json() const override { return pretrain_options_json(opt_); }

 private:
  const PretrainOptions& opt_;
  models::Esm2& model_;
  MlmShare& data_;
  bool common_length_;
};

}  // namespace

std::string pretrain_options_json(const PretrainOptions& o) {
  nlohmann::json j = {{"data", o.data},
                      {"val_data", o.val_data},
                      {"steps", o.steps},
                      {"max_len", o.max_len},
                      {"tokens_per_batch", o.tokens_per_batch},
                      {"data_streams", o.data_streams},
                      {"accumulate", o.accumulate},
                      {"pool", o.pool},
                      {"schedule", o.schedule},
                      {"adamw", o.adamw},
                      {"clip_norm", o.clip_norm},
                      {"seed", o.seed},
                      {"val_every", o.val_every},
                      {"val_batches", o.val_batches},
                      {"ckpt_every", o.ckpt_every},
                      {"skip_invalid", o.skip_invalid}};
  return j.dump();
}

void apply_pretrain_options_json(const std::string& text, PretrainOptions& o) {
  const auto j = nlohmann::json::parse(text);
  o.data = j.at("data").get<std::vector<std::string>>();
  o.val_data = j.at("val_data").get<std::vector<std::string>>();
  o.steps = j.at("steps");
  o.max_len = j.at("max_len");
  o.tokens_per_batch = j.at("tokens_per_batch");
  o.data_streams = j.value("data_streams", int64_t(1));  // runs from before data streams had one
  o.accumulate = j.at("accumulate");
  o.pool = j.at("pool");
  o.schedule = j.at("schedule").get<optim::ScheduleConfig>();
  o.adamw = j.at("adamw").get<optim::AdamWConfig>();
  o.clip_norm = j.at("clip_norm");
  o.seed = j.at("seed");
  o.val_every = j.at("val_every");
  o.val_batches = j.at("val_batches");
  o.ckpt_every = j.at("ckpt_every");
  o.skip_invalid = j.at("skip_invalid");
}

std::pair<double, int64_t> masked_lm_loss(models::Esm2& model, const std::vector<std::string>& files, int64_t max_len,
                                          int64_t tokens_per_batch, int64_t max_batches, uint64_t seed) {
  const dist::Communicator& world = dist::Communicator::world();
  MlmDataConfig dc;
  dc.files = io::expand_paths(files);
  dc.max_len = max_len;
  dc.tokens_per_batch = std::max(tokens_per_batch, max_len * world.size());
  dc.seed = seed;
  dc.shuffle = false;
  dc.repeat = false;
  MlmStream stream(dc);
  NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  double loss_sum = 0, masked = 0;
  int64_t sequences = 0;
  MlmBatch global;
  for (int64_t b = 0; (max_batches <= 0 || b < max_batches) && stream.next(global); ++b) {
    MlmBatch local = rank_rows(global, world.rank(), world.size());
    sequences += global.sequences;
    if (local.masked == 0) continue;
    Tensor ce = ops::cross_entropy(model.forward(local.tokens), local.targets);
    loss_sum += ce.item() * double(local.masked);
    masked += double(local.masked);
  }
  model.train(was_training);
  loss_sum = all_ranks_sum(loss_sum);
  masked = all_ranks_sum(masked);
  return {masked > 0 ? loss_sum / masked : 0.0, sequences};
}

PretrainResult run_pretrain(PretrainOptions opt) {
  const dist::Communicator& world = dist::Communicator::world();
  if (opt.resume) adopt_resumed_settings<models::Esm2Config>(opt, "pretrain", apply_pretrain_options_json);
  opt.model.validate();
  const int ep = opt.expert_parallel > 0 ? opt.expert_parallel : (has_moe(opt.model) ? world.size() : 1);
  dist::ParallelGroups groups = dist::make_parallel_groups(ep);
  if (world.rank() == 0) std::filesystem::create_directories(opt.out_dir);
  world.barrier();

  manual_seed(opt.seed);
  models::Esm2 model(opt.model, generator("default"), world.size() > 1 ? &groups : nullptr);
  init_lm_weights(model, opt.seed, "embed_tokens.weight", models::kEsm2PaddingIdx);
  model.train();
  optim::AdamW adamw(model.named_parameters(), opt.adamw);
  MlmDataConfig dc;
  dc.files = io::expand_paths(opt.data);
  dc.max_len = opt.max_len;
  dc.tokens_per_batch = opt.tokens_per_batch;
  dc.pool = opt.pool;
  dc.seed = opt.seed;
  dc.skip_invalid = opt.skip_invalid;
  if (opt.data_streams <= 0) opt.data_streams = world.size();  // fixed for the run from here on (train_config)
  const int64_t streams = opt.data_streams, per_rank = streams / world.size();
  WENSU_CHECK(streams % world.size() == 0, "pretrain: ", streams, " data streams do not divide over ", world.size(),
              " processes; use a number of processes that divides --data-streams (this run's: ", streams, ")");
  MlmShare data(dc, streams, world.rank() * per_rank, per_rank);
  MlmTask task(opt, model, data, has_moe(opt.model) && world.size() > 1);
  const LmLoopOptions lo = loop_options(opt, "pretrain", &groups);
  return run_lm_loop(task, adamw, lo);
}

}  // namespace wensu::train
