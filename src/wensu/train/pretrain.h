// Masked-LM pretraining of an ESM-2-style protein language model on FASTA shards
// (`wensu pretrain`), on the loop it shares with text training (lm_trainer.h): AdamW with warmup and decay, gradient accumulation and clipping, metrics
// as JSON lines, periodic validation perplexity, atomic checkpoints every N steps and on
// SIGINT/SIGTERM, and an exact resume: parameters, AdamW moments, every RNG and the data cursor
// are in the checkpoint, so a killed and resumed run logs the same losses as one that never
// stopped. Under mpirun each rank reads its own shards (data streams, mlm_data.h) and, for MoE
// configs, holds its share of the experts (expert parallel); one process given the same number
// of data streams sees the same global batches and logs the same losses.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "wensu/models/esm2.h"
#include "wensu/optim/adamw.h"
#include "wensu/optim/schedule.h"
#include "wensu/train/lm_trainer.h"

namespace wensu::train {

struct PretrainOptions {
  models::Esm2Config model;
  std::vector<std::string> data;      // training FASTA files or globs
  std::vector<std::string> val_data;  // validation FASTA (may be empty)
  std::string out_dir;                // metrics.jsonl, checkpoint.h5
  bool resume = false;                // continue from out_dir/checkpoint.h5
  int64_t steps = 1000;               // with resume: the larger of this and the run's own
  int64_t max_len = 512;              // tokens per sequence with <cls> and <eos>
  int64_t tokens_per_batch = 8192;    // padded tokens per micro-batch (whole world, all streams)
  int64_t data_streams = 0;           // shard streams (0: the number of processes); each rank runs data_streams / ranks
  int64_t accumulate = 1;             // micro-batches per step
  int64_t pool = 2048;
  optim::ScheduleConfig schedule;
  optim::AdamWConfig adamw;
  double clip_norm = 1.0;
  uint64_t seed = 0;
  int64_t val_every = 0;              // steps between validations (0: only at the end)
  int64_t val_batches = 0;            // batches per validation (0: the whole file)
  int64_t ckpt_every = 100;           // steps between checkpoints
  int expert_parallel = 0;            // ranks per expert group (0: all ranks when the model has MoE layers, else 1)
  bool skip_invalid = false;
  bool progress = true;
  int64_t stop_after = -1;            // stop (with a checkpoint) after this many steps (tests)
};

using PretrainResult = TrainResult;

// The options as JSON (what the checkpoint stores as train_config) and back.
std::string pretrain_options_json(const PretrainOptions& o);
void apply_pretrain_options_json(const std::string& json, PretrainOptions& o);

PretrainResult run_pretrain(PretrainOptions opt);

// Perplexity of a model on FASTA files: every residue masked BERT-style (as in training, with a
// fixed seed), sums over all ranks. Returns {mean masked cross-entropy, sequences}.
std::pair<double, int64_t> masked_lm_loss(models::Esm2& model, const std::vector<std::string>& files, int64_t max_len,
                                          int64_t tokens_per_batch, int64_t max_batches, uint64_t seed);

}  // namespace wensu::train
