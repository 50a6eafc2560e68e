// The training loop shared by Wensu's language models: masked-LM pretraining of protein models
// (pretrain.h) and causal LM training of text models (text_train.h). A task supplies the model,
// its batches and its validation; the loop does the rest the same way for both:
//
//   per step: `accumulate` micro-batches (forward, loss, backward), gradients averaged over the
//   ranks (expert gradients over their replicas), clipping, AdamW at the schedule's rate;
//   metrics.jsonl lines, a progress bar with ETA, validation every val_every steps, atomic
//   checkpoints every ckpt_every steps and on SIGINT/SIGTERM, and an exact resume: parameters,
//   AdamW moments, every RNG and the data cursors are in the checkpoint.
//
// The loss of a step is the mean cross-entropy over every target position of all its
// micro-batches on all ranks, so a run's losses do not depend on how the batch is split.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "wensu/core/tensor.h"
#include "wensu/nn/module.h"
#include "wensu/optim/adamw.h"
#include "wensu/optim/schedule.h"

namespace wensu::dist {
struct ParallelGroups;
}

namespace wensu::train {

// One rank's micro-batch.
struct LmBatch {
  Tensor tokens;              // int64 [B, L]
  Tensor targets;             // int64 [B, L]: the token to predict, -100 where there is none
  int64_t targets_count = 0;  // positions with a target (image-text tasks: pairs)
  int64_t real_tokens = 0;    // tokens that are not padding (throughput; image-text: pairs)
  Tensor lengths;             // image-text tasks: int64 [B], the caption length of each row
  Tensor images;              // image-text tasks: float [B, C, S, S]
};

// What the loop needs from a model and its data. Every call is made on every rank in step.
class LmTask {
 public:
  virtual ~LmTask() = default;
  virtual nn::Module& model() = 0;
  // This rank's share of the step's loss for micro-batch b, whose gradient averaged over the
  // ranks is the gradient of the step's loss; step_targets counts the targets of all the step's
  // micro-batches on all ranks.
  virtual Tensor micro_loss(const LmBatch& b, int64_t step_targets, int world) = 0;
  virtual Tensor aux_loss() const { return Tensor(); }  // after a forward (MoE balancing); may be undefined
  virtual LmBatch next_batch() = 0;                   // this rank's next micro-batch
  // Every data stream's cursor, this rank's rows filled and the others 0 (summed over ranks).
  virtual Tensor cursors() const = 0;
  virtual void restore(const Tensor& cursors) = 0;
  virtual int64_t epoch() const { return 0; }
  virtual int64_t skipped_records() const { return -1; }  // this rank's; -1: not counted, not logged
  // Collective. {mean loss per target, items seen}; items < 0 when there is no validation data.
  virtual std::pair<double, int64_t> validate() = 0;
  virtual std::string model_config_json() const = 0;
  virtual std::string train_config_json() const = 0;
  // String attributes for the checkpoint's meta (e.g. the model kind and the tokenizer's files).
  virtual std::map<std::string, std::string> checkpoint_meta() const { return {}; }
  // Extra numbers for a step's metrics line (after the step) and a validation's line.
  virtual std::map<std::string, double> step_metrics() const { return {}; }
  virtual std::map<std::string, double> validation_metrics() const { return {}; }
};

// A task whose loss is the mean cross-entropy of token logits over every target of the step
// (masked and causal language models).
class TokenLmTask : public LmTask {
 public:
  virtual Tensor forward(const Tensor& tokens) = 0;  // int64 [B, L] -> logits [B, L, V]
  Tensor micro_loss(const LmBatch& b, int64_t step_targets, int world) override;
};

struct LmLoopOptions {
  std::string name = "train";  // progress label and messages
  std::string out_dir;         // metrics.jsonl and checkpoint.h5
  bool resume = false;         // load out_dir/checkpoint.h5 first
  int64_t steps = 1000;        // the step to stop at
  int64_t accumulate = 1;      // micro-batches per step
  optim::ScheduleConfig schedule;
  double clip_norm = 1.0;
  int64_t val_every = 0;       // 0: validate only at the end
  int64_t ckpt_every = 100;
  int64_t stop_after = -1;     // stop (with a checkpoint) after this many steps here (tests)
  bool progress = true;
  std::string val_items = "val_sequences";  // metrics key of validate()'s item count
  std::string unit = "tokens";               // what real_tokens counts (progress and summary)
  bool perplexity = true;                    // log exp(loss) as ppl (a language model's loss)
  const dist::ParallelGroups* groups = nullptr;  // MoE expert / data groups (null or world 1: plain)
};

struct TrainResult {
  std::vector<double> losses;  // training loss of each step run here
  int64_t first_step = 0, last_step = 0;
  double seconds = 0, tokens_per_s = 0;
  double val_loss = 0, val_ppl = 0;  // last validation (0 when none ran)
  std::map<std::string, double> val_metrics;  // the task's extra numbers of the last validation
  std::string unit = "tokens";       // what tokens_per_s counts (LmLoopOptions::unit)
  bool perplexity = true;            // val_ppl means something (LmLoopOptions::perplexity)
  bool interrupted = false;          // stopped by SIGINT/SIGTERM (after a checkpoint)
  int64_t skipped_records = 0;       // all ranks, as the task counts them
};

TrainResult run_lm_loop(LmTask& task, optim::AdamW& adamw, const LmLoopOptions& opt);

// The loop's options from a trainer's own (PretrainOptions, TextTrainOptions: same field names).
template <class TrainerOptions>
LmLoopOptions loop_options(const TrainerOptions& o, const std::string& name, const dist::ParallelGroups* groups) {
  LmLoopOptions lo;
  lo.name = name;
  lo.out_dir = o.out_dir;
  lo.resume = o.resume;
  lo.steps = o.steps;
  lo.accumulate = o.accumulate;
  lo.schedule = o.schedule;
  lo.clip_norm = o.clip_norm;
  lo.val_every = o.val_every;
  lo.ckpt_every = o.ckpt_every;
  lo.stop_after = o.stop_after;
  lo.progress = o.progress;
  lo.groups = groups;
  return lo;
}

// Initialisation for training from scratch (BERT, GPT-2, HF ESM): every matrix N(0, 0.02),
// biases 0, norm gains as built; row `padding_row` of `padding_param` 0. Each tensor draws from a
// generator keyed by its name, so every rank and every world size initialises it identically.
void init_lm_weights(nn::Module& model, uint64_t seed, const std::string& padding_param = "",
                     int64_t padding_row = -1);

// Sum of v over the ranks of the world.
double all_ranks_sum(double v);

}  // namespace wensu::train
