#include "wensu/train/lm_trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/core/generator.h"
#include "wensu/dist/comm.h"
#include "wensu/io/dist_checkpoint.h"
#include "wensu/nn/moe.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/loss.h"
#include "wensu/ops/reduce.h"
#include "wensu/train/progress.h"
#include "wensu/train/signals.h"
#include "wensu/train/state.h"

namespace wensu::train {
namespace {

// The local loss whose gradient, averaged over the ranks, is the gradient of the mean
// cross-entropy over the whole step (all micro-batches of all ranks): sum of this rank's token
// losses / all target positions of the step, times the world size.
Tensor local_loss(const Tensor& logits, const LmBatch& b, int64_t step_targets, int world) {
  if (b.targets_count == 0) return ops::scale(ops::sum(logits), 0.0);
  Tensor ce = ops::cross_entropy(logits, b.targets);  // mean over this rank's targets
  return ops::scale(ce, double(b.targets_count) * double(world) / double(step_targets));
}

struct Checkpointer {
  LmTask& task;
  optim::AdamW& adamw;
  const LmLoopOptions& opt;
  const dist::Communicator& world;

  std::string path() const { return opt.out_dir + "/checkpoint.h5"; }
  bool expert_parallel() const { return opt.groups && opt.groups->ep > 1; }

  void save(int64_t step) const {
    Tensor cursors = task.cursors();  // this rank's rows; the others are 0
    if (world.size() > 1) world.all_reduce_sum(cursors);
    io::Checkpoint ck;
    ck.step = step;
    ck.model_config = task.model_config_json();
    ck.train_config = task.train_config_json();
    ck.params = to_io(task.model().named_parameters());
    ck.optimizer = to_io(adamw.state());
    ck.rng = all_generator_states();
    ck.extra = {{"data.cursor", cursors}};
    ck.meta = task.checkpoint_meta();
    if (expert_parallel()) return io::save_checkpoint_distributed(path(), ck, *opt.groups);
    if (world.rank() == 0) io::save_checkpoint(path(), ck);
    world.barrier();
  }
  int64_t load() {
    io::Checkpoint ck = io::load_checkpoint(path());
    NoGradGuard ng;
    auto params = to_io(task.model().named_parameters()), state = to_io(adamw.state());
    io::load_tensors_into(io::select_for_rank(ck.params, params), params, path(), "parameter");
    io::load_tensors_into(io::select_for_rank(ck.optimizer, state), state, path(), "optimizer state");
    adamw.sync_steps_from_state();
    restore_generator_states(ck.rng);
    for (const auto& nt : ck.extra)
      if (nt.name == "data.cursor") task.restore(nt.tensor);
    return ck.step;
  }
};

}  // namespace

Tensor TokenLmTask::micro_loss(const LmBatch& b, int64_t step_targets, int world) {
  return local_loss(forward(b.tokens), b, step_targets, world);
}

double all_ranks_sum(double v) {
  const dist::Communicator& c = dist::Communicator::world();
  if (c.size() == 1) return v;
  Tensor t = Tensor::from_vector(std::vector<double>{v}, {1});
  c.all_reduce_sum(t);
  return t.item();
}

void init_lm_weights(nn::Module& model, uint64_t seed, const std::string& padding_param, int64_t padding_row) {
  NoGradGuard ng;
  for (auto& [name, p] : model.named_parameters()) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a of the name
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
    if (p.dim() >= 2) {
      Generator g(seed ^ h);
      Tensor v = ops::scale(Tensor::randn(p.shape(), g, p.dtype()), 0.02);
      if (name == padding_param && padding_row >= 0) v.narrow(0, padding_row, 1).fill_(0.0);
      p.copy_(v);
    } else if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      p.fill_(0.0);
    }
  }
}

TrainResult run_lm_loop(LmTask& task, optim::AdamW& adamw, const LmLoopOptions& opt) {
  const dist::Communicator& world = dist::Communicator::world();
  const std::string metrics_path = opt.out_dir + "/metrics.jsonl";
  Checkpointer ckpt{task, adamw, opt, world};
  const dist::ParallelGroups* groups = world.size() > 1 ? opt.groups : nullptr;

  int64_t step = 0;
  if (opt.resume) {
    step = ckpt.load();
    if (world.rank() == 0) truncate_metrics(metrics_path, step);
  } else if (world.rank() == 0) {
    std::filesystem::remove(metrics_path);
  }
  // Opened at the first line, so a run that fails before its first step leaves no file.
  std::ofstream metrics_file;
  auto metrics = [&]() -> std::ostream* {
    if (world.rank() != 0) return nullptr;
    if (!metrics_file.is_open()) metrics_file.open(metrics_path, std::ios::app);
    return &metrics_file;
  };

  TrainResult res;
  res.first_step = step + 1;
  res.unit = opt.unit;
  res.perplexity = opt.perplexity;
  const int64_t last = opt.stop_after >= 0 ? std::min(opt.steps, step + opt.stop_after) : opt.steps;
  ProgressBar bar(opt.name.c_str(), opt.steps, "step");
  SignalScope signals;
  const auto t0 = std::chrono::steady_clock::now();
  double tokens_done = 0;
  auto validate = [&](int64_t at) {
    auto [loss, items] = task.validate();
    if (items < 0) return;
    res.val_loss = loss;
    res.val_ppl = std::exp(loss);
    res.val_metrics = task.validation_metrics();
    if (auto* m = metrics()) {
      nlohmann::json line = {{"step", at}, {"val_loss", loss}, {opt.val_items, items}};
      if (opt.perplexity) line["val_ppl"] = res.val_ppl;
      for (const auto& [k, v] : res.val_metrics) line[k] = v;
      *m << line.dump() << "\n" << std::flush;
    }
  };
  while (step < last) {
    ++step;
    // A step's micro-batches come first: the loss is normalised by all their targets.
    std::vector<LmBatch> micro(size_t(opt.accumulate));
    int64_t step_targets = 0, step_tokens = 0;
    for (auto& m : micro) {
      m = task.next_batch();
      step_targets += m.targets_count;
      step_tokens += m.real_tokens;
    }
    step_targets = int64_t(all_ranks_sum(double(step_targets)));
    step_tokens = int64_t(all_ranks_sum(double(step_tokens)));
    double loss_sum = 0, aux_sum = 0;
    for (auto& m : micro) {
      Tensor loss = task.micro_loss(m, std::max<int64_t>(step_targets, 1), world.size());
      Tensor aux = task.aux_loss();
      double aux_part = 0;
      if (aux.defined()) {
        aux_part = aux.item() / double(opt.accumulate);
        aux_sum += aux_part;
        loss = ops::add(loss, ops::scale(aux, 1.0 / double(opt.accumulate)));
      }
      loss.backward();
      loss_sum += (loss.item() - aux_part) / double(world.size());
    }
    // Shared gradients averaged over all ranks, expert gradients over their replicas.
    nn::all_reduce_gradients(task.model(), groups);
    const double gnorm = optim::clip_grad_norm(task.model().parameters(), opt.clip_norm);
    const double lr = optim::learning_rate(opt.schedule, step);
    adamw.step(lr);
    adamw.zero_grad();
    const double loss = all_ranks_sum(loss_sum);
    const int64_t local_skipped = task.skipped_records();
    const int64_t skipped = local_skipped >= 0 ? int64_t(all_ranks_sum(double(local_skipped))) : 0;
    res.skipped_records = skipped;
    res.losses.push_back(loss);
    tokens_done += double(step_tokens);
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (auto* m = metrics()) {
      nlohmann::json line = {{"step", step}, {"loss", loss}, {"lr", lr},
                             {"grad_norm", gnorm}, {"tokens", int64_t(tokens_done)}, {"step_tokens", step_tokens},
                             {"tokens_per_s", tokens_done / el},
                             {"elapsed_s", el}, {"epoch", task.epoch()}};
      if (opt.perplexity) line["ppl"] = std::exp(loss);
      for (const auto& [k, v] : task.step_metrics()) line[k] = v;
      if (local_skipped >= 0) line["skipped_records"] = skipped;
      if (aux_sum != 0) line["moe_aux"] = aux_sum;
      *m << line.dump() << "\n" << std::flush;
    }
    if (opt.progress && world.rank() == 0) {
      char status[96];
      std::snprintf(status, sizeof status, "loss %.4f  %.0f %s/s", loss, tokens_done / el, opt.unit.c_str());
      bar.update(step, status);
    }
    if (opt.val_every > 0 && step % opt.val_every == 0) validate(step);
    // Every rank must agree to stop: a signal may reach some ranks only.
    const bool stop = all_ranks_sum(stop_requested() ? 1.0 : 0.0) > 0;
    if (stop || step == last || (opt.ckpt_every > 0 && step % opt.ckpt_every == 0)) ckpt.save(step);
    if (stop) {
      res.interrupted = true;
      break;
    }
  }
  // A final validation, unless the last step had one or this call ran no step at all.
  if (!res.interrupted && !res.losses.empty() && step == opt.steps && (opt.val_every <= 0 || step % opt.val_every != 0))
    validate(step);
  res.last_step = step;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.tokens_per_s = res.seconds > 0 ? tokens_done / res.seconds : 0;
  if (opt.progress && world.rank() == 0) bar.finish();
  return res;
}

}  // namespace wensu::train
