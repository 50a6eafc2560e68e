// Contrastive training of the two-tower image-text model (`wensu mm train`), on the loop the
// language models use (lm_trainer.h): AdamW, schedule, accumulation, clipping, metrics.jsonl,
// progress, validation, atomic checkpoints and exact resume. The loss is the symmetric InfoNCE
// of CLIP/BriVL with a learned temperature over in-batch negatives (ops/contrastive.h). Under
// MPI every rank encodes its share of the global batch and the embeddings of all ranks are
// gathered (dist/gather.h), so the negatives are the whole global batch and the loss equals one
// process's on the same batch.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "wensu/models/dual_encoder.h"
#include "wensu/optim/adamw.h"
#include "wensu/optim/schedule.h"
#include "wensu/train/lm_trainer.h"

namespace wensu::train {

struct MmTrainOptions {
  models::DualEncoderConfig model;  // text.vocab_size from the tokenizer; text config from --text-init
  std::string data;                 // pairs.tsv
  std::string train_split = "train";
  std::string val_split = "valid";  // "" = no validation
  std::string text_init;            // a text model checkpoint: its tokenizer and weights (bow: its token embeddings)
  std::string tokenizer;            // or just a tokenizer (SentencePiece .model or BPE folder)
  std::string out_dir;
  bool resume = false;
  int64_t steps = 1000;
  int64_t batch = 128;              // pairs per micro-batch, all ranks together (the negatives)
  int64_t accumulate = 1;
  double text_lr_scale = 1.0;       // the text tower's learning rate relative to --lr
  int64_t shift = 0;                // augmentation: images moved by up to this many pixels
  double dropout = -1;              // >= 0: dropout of both towers (the text tower's overrides --text-init's)
  int64_t max_tokens = 0;           // caption tokens, end-of-text included (0 = the text tower's context)
  optim::ScheduleConfig schedule;
  optim::AdamWConfig adamw;
  double clip_norm = 1.0;
  uint64_t seed = 0;
  int64_t val_every = 0;
  int64_t ckpt_every = 100;
  bool strict = false;              // an unreadable image stops the run
  bool progress = true;
  int64_t stop_after = -1;
};

std::string mm_train_options_json(const MmTrainOptions& o);
void apply_mm_train_options_json(const std::string& json, MmTrainOptions& o);

TrainResult run_mm_train(MmTrainOptions opt);

}  // namespace wensu::train
