// Causal-LM training of a GPT-style text model on plain-text corpora (`wensu text train`), on
// the loop protein pretraining uses (lm_trainer.h): the same AdamW, schedule, accumulation,
// clipping, metrics.jsonl, progress, validation, atomic checkpoints, exact resume and MPI data
// (and expert) parallelism. The checkpoint carries the tokenizer's files, so it is a complete
// model for `wensu text generate`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "wensu/models/gpt.h"
#include "wensu/optim/adamw.h"
#include "wensu/optim/schedule.h"
#include "wensu/train/lm_trainer.h"

namespace wensu::train {

struct TextTrainOptions {
  models::GptConfig model;            // vocab_size and eos_id are set from the tokenizer
  std::string tokenizer;              // BPE folder (vocab.json + merges.txt) or SentencePiece .model
  std::vector<std::string> data;      // training text files or globs
  std::vector<std::string> val_data;  // validation text (may be empty)
  std::string out_dir;
  bool resume = false;                // continue from out_dir/checkpoint.h5 (its settings win)
  int64_t steps = 1000;               // with resume: the larger of this and the run's own
  int64_t seq_len = 0;                // tokens per row (0: the model's max_positions)
  int64_t batch_rows = 32;            // rows per micro-batch, all ranks together
  int64_t data_streams = 0;           // 0: one per process
  int64_t accumulate = 1;
  optim::ScheduleConfig schedule;
  optim::AdamWConfig adamw;
  double clip_norm = 1.0;
  uint64_t seed = 0;
  int64_t val_every = 0;
  int64_t val_windows = 0;            // windows of seq_len per validation (0: the whole file)
  int64_t ckpt_every = 100;
  int expert_parallel = 0;
  bool progress = true;
  int64_t stop_after = -1;
};

std::string text_train_options_json(const TextTrainOptions& o);
void apply_text_train_options_json(const std::string& json, TextTrainOptions& o);

TrainResult run_text_train(TextTrainOptions opt);

}  // namespace wensu::train
