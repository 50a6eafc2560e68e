#include "wensu/train/demo.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "wensu/ops/binary.h"
#include "wensu/ops/loss.h"
#include "wensu/train/progress.h"
#include "wensu/train/state.h"
#include "wensu/train/toy_task.h"

namespace wensu::train {

DemoOptions default_demo_options() {
  DemoOptions o;
  o.model.vocab_size = 16;
  auto& t = o.model.transformer;
  t.d_model = 64;
  t.n_heads = 4;
  t.n_layers = 2;
  t.ffn.d_ff = 128;
  t.attention.rotary = true;  // the task is about relative positions
  t.attention.causal = true;
  o.schedule.lr = 3e-3;
  o.schedule.warmup_steps = 30;
  o.schedule.total_steps = o.steps;
  return o;
}

DemoResult run_demo(const DemoOptions& opt) {
  manual_seed(opt.seed);
  models::SequenceModel model(opt.model, generator("default"));
  optim::AdamW adamw(model.named_parameters(), opt.adamw);
  nlohmann::json train_cfg = {{"task", opt.task}, {"schedule", opt.schedule}, {"steps", opt.steps}, {"batch", opt.batch},
                              {"length", opt.length},     {"accumulate", opt.accumulate}, {"clip_norm", opt.clip_norm}};
  nlohmann::json model_cfg = opt.model;
  int64_t step = 0;
  // The data stream is the "data" generator, whose state the checkpoint restores.
  if (!opt.resume.empty()) step = load_training_state(opt.resume, model, &adamw).step;

  std::ofstream metrics;
  if (!opt.out_dir.empty()) {
    std::filesystem::create_directories(opt.out_dir);
    metrics.open(opt.out_dir + "/metrics.jsonl", std::ios::app);
  }
  DemoResult res;
  res.first_step = step + 1;
  const int64_t last = opt.stop_after >= 0 ? std::min(opt.steps, step + opt.stop_after) : opt.steps;
  ProgressBar bar("demo", opt.steps, "step");
  auto t0 = std::chrono::steady_clock::now();
  Generator& data = generator("data");
  const ToyTask task = toy_task_from_name(opt.task);
  while (step < last) {
    ++step;
    double loss_sum = 0;
    for (int64_t micro = 0; micro < opt.accumulate; ++micro) {
      ToyBatch b = make_toy_batch(task, data, opt.batch, opt.length, opt.model.vocab_size);
      Tensor logits = model.forward(b.ids);                              // [B, L, V]
      Tensor loss = ops::cross_entropy(logits, b.targets);               // scalar
      (opt.accumulate > 1 ? loss * (1.0 / double(opt.accumulate)) : loss).backward();
      loss_sum += loss.item();
    }
    double gnorm = optim::clip_grad_norm(model.parameters(), opt.clip_norm);
    double lr = optim::learning_rate(opt.schedule, step);
    adamw.step(lr);
    adamw.zero_grad();
    double loss = loss_sum / double(opt.accumulate);
    res.losses.push_back(loss);
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (metrics.is_open())
      metrics << nlohmann::json{{"step", step}, {"loss", loss}, {"lr", lr}, {"grad_norm", gnorm}, {"elapsed_s", el}}.dump()
              << "\n";
    if (opt.progress) {
      char status[64];
      std::snprintf(status, sizeof status, "loss %.4f", loss);
      bar.update(step, status);
    }
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (opt.progress) bar.finish();
  if (!opt.out_dir.empty())
    save_training_state(opt.out_dir + "/checkpoint.h5", model, &adamw,
                        {step, model_cfg.dump(), train_cfg.dump(), {}});
  return res;
}

}  // namespace wensu::train
