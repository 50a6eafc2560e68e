#include "wensu/train/pretrain.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/dist/comm.h"
#include "wensu/io/dist_checkpoint.h"
#include "wensu/io/fasta.h"
#include "wensu/nn/moe.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/shape.h"
#include "wensu/ops/loss.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/shape.h"
#include "wensu/train/mlm_data.h"
#include "wensu/train/progress.h"
#include "wensu/train/signals.h"
#include "wensu/train/state.h"

namespace wensu::train {
namespace {

// The local loss whose gradient, averaged over the ranks, is the gradient of the mean masked
// cross-entropy over the whole step (all micro-batches of all ranks): sum of this rank's
// token losses / all masked positions of the step, times the world size.
Tensor local_mlm_loss(const Tensor& logits, const MlmBatch& local, int64_t step_masked, int world) {
  if (local.masked == 0) return ops::scale(ops::sum(logits), 0.0);
  Tensor ce = ops::cross_entropy(logits, local.targets);  // mean over this rank's masked positions
  return ops::scale(ce, double(local.masked) * double(world) / double(step_masked));
}

double all_sum(double v, const dist::Communicator& c) {
  if (c.size() == 1) return v;
  Tensor t = Tensor::from_vector(std::vector<double>{v}, {1});
  c.all_reduce_sum(t);
  return t.item();
}

// BERT / Hugging Face ESM initialisation for training from scratch: every matrix and the token
// embedding N(0, 0.02), biases 0, norm gains 1, the padding row 0. (fair-esm's module defaults
// give the tied vocabulary projection N(0, 1) rows and an initial loss near 14 instead of ln 33.)
// Each tensor draws from a generator keyed by its name, so every rank and every world size
// initialises a parameter identically.
void init_for_pretraining(nn::Module& model, uint64_t seed) {
  NoGradGuard ng;
  for (auto& [name, p] : model.named_parameters()) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a of the name
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
    if (p.dim() >= 2) {
      Generator g(seed ^ h);
      Tensor v = ops::scale(Tensor::randn(p.shape(), g, p.dtype()), 0.02);
      if (name == "embed_tokens.weight") v.narrow(0, models::kEsm2PaddingIdx, 1).fill_(0.0);
      p.copy_(v);
    } else if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      p.fill_(0.0);
    }
  }
}

bool has_moe(const models::Esm2Config& c) {
  for (int64_t i = 0; i < c.num_layers; ++i)
    if (c.layer_is_moe(i)) return true;
  return false;
}

struct Run {
  PretrainOptions& opt;
  dist::ParallelGroups groups;
  const dist::Communicator& world;
  models::Esm2& model;
  optim::AdamW& adamw;
  MlmShare& data;

  // cursors: every stream's data cursor [streams, 7], gathered from all ranks.
  io::Checkpoint checkpoint(int64_t step, const Tensor& cursors) const {
    io::Checkpoint ck;
    ck.step = step;
    ck.model_config = nlohmann::json(opt.model).dump();
    ck.train_config = pretrain_options_json(opt);
    ck.params = to_io(model.named_parameters());
    ck.optimizer = to_io(adamw.state());
    ck.rng = all_generator_states();
    ck.extra = {{"data.cursor", cursors}};
    return ck;
  }
  void save(int64_t step) const {
    const std::string path = opt.out_dir + "/checkpoint.h5";
    Tensor cursors = data.cursors();  // this rank's rows; the others are 0
    if (world.size() > 1) world.all_reduce_sum(cursors);
    if (groups.ep > 1) return io::save_checkpoint_distributed(path, checkpoint(step, cursors), groups);
    if (world.rank() == 0) io::save_checkpoint(path, checkpoint(step, cursors));
    world.barrier();
  }
  int64_t load() {
    const std::string path = opt.out_dir + "/checkpoint.h5";
    io::Checkpoint ck = io::load_checkpoint(path);
    NoGradGuard ng;
    auto params = to_io(model.named_parameters()), state = to_io(adamw.state());
    io::load_tensors_into(io::select_for_rank(ck.params, params), params, path, "parameter");
    io::load_tensors_into(io::select_for_rank(ck.optimizer, state), state, path, "optimizer state");
    adamw.sync_steps_from_state();
    restore_generator_states(ck.rng);
    for (const auto& nt : ck.extra)
      if (nt.name == "data.cursor") data.restore(nt.tensor);
    return ck.step;
  }
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
                      {"adamw", {{"beta1", o.adamw.beta1}, {"beta2", o.adamw.beta2}, {"eps", o.adamw.eps},
                                 {"weight_decay", o.adamw.weight_decay}}},
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
  const auto& a = j.at("adamw");
  o.adamw.beta1 = a.at("beta1"), o.adamw.beta2 = a.at("beta2"), o.adamw.eps = a.at("eps");
  o.adamw.weight_decay = a.at("weight_decay");
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
  loss_sum = all_sum(loss_sum, world);
  masked = all_sum(masked, world);
  return {masked > 0 ? loss_sum / masked : 0.0, sequences};
}

PretrainResult run_pretrain(PretrainOptions opt) {
  const dist::Communicator& world = dist::Communicator::world();
  const std::string ckpt = opt.out_dir + "/checkpoint.h5", metrics_path = opt.out_dir + "/metrics.jsonl";
  if (opt.resume) {
    WENSU_CHECK(std::filesystem::exists(ckpt), "pretrain --resume: no checkpoint at ", ckpt,
                " (start without --resume, or point --out at the run to continue)");
    const io::CheckpointInfo info = io::inspect_checkpoint(ckpt);
    opt.model = nlohmann::json::parse(info.model_config).get<models::Esm2Config>();
    const int64_t steps = opt.steps, stop_after = opt.stop_after;
    apply_pretrain_options_json(info.train_config, opt);
    opt.steps = std::max(steps, opt.steps);  // --steps may extend a finished run (0: keep its own)
    opt.stop_after = stop_after;
  }
  opt.model.validate();
  const int ep = opt.expert_parallel > 0 ? opt.expert_parallel : (has_moe(opt.model) ? world.size() : 1);
  dist::ParallelGroups groups = dist::make_parallel_groups(ep);
  if (world.rank() == 0) std::filesystem::create_directories(opt.out_dir);
  world.barrier();

  manual_seed(opt.seed);
  models::Esm2 model(opt.model, generator("default"), world.size() > 1 ? &groups : nullptr);
  init_for_pretraining(model, opt.seed);
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
  Run run{opt, groups, world, model, adamw, data};
  // MoE layers route and balance over the whole global batch, counting padded positions too, so
  // every rank pads its rows to the same length as one process holding all streams would.
  const bool common_length = has_moe(opt.model) && world.size() > 1;

  int64_t step = 0;
  if (opt.resume) {
    step = run.load();
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

  PretrainResult res;
  res.first_step = step + 1;
  const int64_t last = opt.stop_after >= 0 ? std::min(opt.steps, step + opt.stop_after) : opt.steps;
  ProgressBar bar("pretrain", opt.steps, "step");
  SignalScope signals;
  const auto t0 = std::chrono::steady_clock::now();
  double tokens_done = 0;
  auto validate = [&](int64_t at) {
    if (opt.val_data.empty()) return;
    auto [loss, seqs] = masked_lm_loss(model, opt.val_data, opt.max_len, opt.tokens_per_batch, opt.val_batches, 1234);
    res.val_loss = loss;
    res.val_ppl = std::exp(loss);
    if (auto* m = metrics())
      *m << nlohmann::json{{"step", at}, {"val_loss", loss}, {"val_ppl", res.val_ppl}, {"val_sequences", seqs}}.dump()
         << "\n"
         << std::flush;
  };
  while (step < last) {
    ++step;
    // A step's micro-batches come first: the loss is normalised by all their masked positions.
    std::vector<MlmBatch> micro(size_t(opt.accumulate));
    int64_t step_masked = 0, step_tokens = 0;
    for (auto& m : micro) {
      auto parts = data.next_parts();
      int64_t len = 0;
      if (common_length) {
        for (const auto& p : parts) len = std::max(len, p.tokens.size(1));
        for (int64_t l : world.all_gather(len)) len = std::max(len, l);
      }
      m = MlmShare::stack(parts, len);
      step_masked += m.masked;
      step_tokens += m.real_tokens;
    }
    step_masked = int64_t(all_sum(double(step_masked), world));
    step_tokens = int64_t(all_sum(double(step_tokens), world));
    double loss_sum = 0, aux_sum = 0;
    for (auto& m : micro) {
      Tensor logits = model.forward(m.tokens);  // [b, L, 33]
      Tensor loss = local_mlm_loss(logits, m, std::max<int64_t>(step_masked, 1), world.size());
      Tensor aux = model.aux_loss();
      if (aux.defined()) {
        aux_sum += aux.item() / double(opt.accumulate);
        loss = ops::add(loss, ops::scale(aux, 1.0 / double(opt.accumulate)));
      }
      loss.backward();
      loss_sum += (loss.item() - (aux.defined() ? aux.item() / double(opt.accumulate) : 0.0)) / double(world.size());
    }
    // Shared gradients averaged over all ranks, expert gradients over their replicas.
    nn::all_reduce_gradients(model, world.size() > 1 ? &groups : nullptr);
    const double gnorm = optim::clip_grad_norm(model.parameters(), opt.clip_norm);
    const double lr = optim::learning_rate(opt.schedule, step);
    adamw.step(lr);
    adamw.zero_grad();
    const double loss = all_sum(loss_sum, world);
    const int64_t skipped = opt.skip_invalid ? int64_t(all_sum(double(data.skipped_records()), world)) : 0;
    res.skipped_records = skipped;
    res.losses.push_back(loss);
    tokens_done += double(step_tokens);
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (auto* m = metrics()) {
      nlohmann::json line = {{"step", step}, {"loss", loss}, {"ppl", std::exp(loss)}, {"lr", lr},
                             {"grad_norm", gnorm}, {"tokens", int64_t(tokens_done)}, {"step_tokens", step_tokens},
                             {"tokens_per_s", tokens_done / el},
                             {"elapsed_s", el}, {"epoch", data.epoch()}};
      if (opt.skip_invalid) line["skipped_records"] = skipped;
      if (aux_sum != 0) line["moe_aux"] = aux_sum;
      *m << line.dump() << "\n" << std::flush;
    }
    if (opt.progress && world.rank() == 0) {
      char status[96];
      std::snprintf(status, sizeof status, "loss %.4f  %.0f tok/s", loss, tokens_done / el);
      bar.update(step, status);
    }
    if (opt.val_every > 0 && step % opt.val_every == 0) validate(step);
    // Every rank must agree to stop: a signal may reach some ranks only.
    const bool stop = all_sum(stop_requested() ? 1.0 : 0.0, world) > 0;
    if (stop || step == last || (opt.ckpt_every > 0 && step % opt.ckpt_every == 0)) run.save(step);
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
