// `wensu eval-fold`: a fold model on held-out chains (the test split's shard), the way the
// field reports it: TM-score (normalised by the native's length), lDDT-CA, RMSD and GDT-TS of the
// reconstructed backbone against the native, and long-range contact precision of the distogram
// (top L/5 and top L pairs with |i - j| >= 24, contact = CB-CB < 8 A). Next to the model, the
// baseline every method must beat: an ideal alpha-helix of the same length.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "wensu/fold/predict.h"
#include "wensu/fold/structure_db.h"

namespace wensu::fold {

struct EvalOptions {
  std::vector<std::string> shards;  // fold shards (the test split)
  int64_t min_length = 50, max_length = 300;
  int64_t max_chains = 0;  // 0: every chain in range; else an evenly spaced subset of this many
  ReconstructOptions reconstruct;
};

struct ChainEval {
  std::string id;
  int64_t length = 0;
  double tm = 0, lddt = 0, rmsd = 0, gdt = 0;  // reconstruction vs native
  double p_l5 = 0, p_l = 0;                    // long-range contact precision
  double mean_plddt = 0;
  double helix_tm = 0, helix_lddt = 0;         // ideal alpha-helix baseline
  double seconds = 0;
};

struct EvalSummary {
  std::vector<ChainEval> chains;
  double mean_tm = 0, median_tm = 0, mean_lddt = 0, mean_p_l5 = 0, mean_p_l = 0, mean_helix_tm = 0,
         mean_helix_lddt = 0;
};

EvalSummary evaluate_fold(FoldModel& model, const EvalOptions& opt,
                          const std::function<void(int64_t done, int64_t total, const ChainEval&)>& progress = {});

// Backbone of a chain of a shard (N, CA, C, O, ideal CB) as `score_structures` takes it.
Backbone native_backbone(const ChainData& c);

// Per-chain CSV (header line, one row per chain) and a scatter plot of TM-score against length.
void write_eval_csv(const EvalSummary& s, const std::string& path);
void plot_tm_vs_length(const EvalSummary& s, const std::string& path, const std::string& title);

}  // namespace wensu::fold
