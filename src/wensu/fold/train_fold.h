// `wensu train-fold`: trains FoldNet's heads (models/fold_net.h) on fold shards
// (fold/fold_data.h), resumable like pretraining.
//
// Each step draws one chain uniformly from all training shards and a random crop of at most
// `crop` residues, both from counter-based Philox keyed by (seed, step): the sampler has no state,
// so a resumed run sees exactly the crops an uninterrupted one would have. Losses (mean over
// the crop):
//   distogram  cross-entropy of the CB-CB bin, every pair i != j
//   torsions   cross-entropy of the phi and psi bins where measured (the database's chain-end
//              placeholders are masked)
//   plddt      cross-entropy of the residue's lDDT-CA bin, the lDDT that the distogram's own
//              expected distances score against the true ones (no gradient through the target)
//   total = distogram + torsion_weight * torsions + plddt_weight * plddt
// The LM of features = "lm" is frozen: it comes from --lm (a pretraining checkpoint or
// data/models/esm2_small/weights.h5) and is saved with the model, so a fold checkpoint is
// self-contained.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "wensu/fold/structure_db.h"
#include "wensu/models/fold_net.h"
#include "wensu/optim/adamw.h"
#include "wensu/optim/schedule.h"

namespace wensu::fold {

struct FoldTrainOptions {
  models::FoldConfig model;
  std::string lm_checkpoint;            // features = "lm": the LM's weights (and its config)
  std::vector<std::string> train;       // shard files or globs
  std::vector<std::string> valid;       // validation shards (may be empty)
  std::string out_dir;                  // metrics.jsonl, checkpoint.h5
  bool resume = false;
  int64_t steps = 2000;
  int64_t crop = 128;
  optim::ScheduleConfig schedule;
  optim::AdamWConfig adamw;
  double clip_norm = 1.0;
  double torsion_weight = 0.5, plddt_weight = 0.1;
  uint64_t seed = 0;
  int64_t val_every = 250, val_chains = 64, val_crop = 256;
  int64_t ckpt_every = 100;
  bool progress = true;
  int64_t stop_after = -1;  // stop (with a checkpoint) after this many steps of this call (tests)
};

struct FoldLossParts {
  double total = 0, distogram = 0, torsion = 0, plddt = 0;
};

// The losses of `model` on residues [start, start + len) of `chain`; total is differentiable.
struct FoldLoss {
  Tensor total;
  FoldLossParts parts;
  models::FoldOutput output;  // the forward the losses came from
};
FoldLoss fold_loss(models::FoldNet& model, const ChainData& chain, int64_t start, int64_t len,
                   double torsion_weight, double plddt_weight);

// Long-range contact precision of a distogram: of the top `k` pairs with |i - j| >= min_sep by
// predicted P(CB-CB < 8 A), the fraction whose true CB-CB distance is below 8 A.
// probs [L, L, bins] (softmax of the logits), cb [L, 3].
double contact_precision(const Tensor& probs, const std::vector<float>& cb, int64_t k, int64_t min_sep = 24);

struct FoldTrainResult {
  std::vector<double> losses;
  int64_t first_step = 0, last_step = 0;
  double seconds = 0;
  double val_distogram = 0, val_p_l5 = 0;  // last validation
  bool interrupted = false;
};

FoldTrainResult run_train_fold(FoldTrainOptions opt);

// Copies an Esm2 checkpoint's parameters into model.lm and returns its config (for FoldConfig.lm).
models::Esm2Config read_lm_config(const std::string& checkpoint);
void load_lm_weights(models::FoldNet& model, const std::string& checkpoint);

}  // namespace wensu::fold
