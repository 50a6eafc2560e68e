#include "wensu/fold/evaluate.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "wensu/core/check.h"
#include "wensu/fold/fold_data.h"
#include "wensu/fold/score.h"
#include "wensu/fold/train_fold.h"
#include "wensu/io/fasta.h"
#include "wensu/io/plot.h"

namespace wensu::fold {

Backbone native_backbone(const ChainData& c) {
  Backbone b;
  b.id = c.id;
  b.sequence = c.sequence;
  const int64_t L = c.length();
  for (int64_t i = 0; i < L; ++i) {
    const float* r = c.backbone.data() + 12 * i;
    b.n.push_back({r[0], r[1], r[2]});
    b.ca.push_back({r[3], r[4], r[5]});
    b.c.push_back({r[6], r[7], r[8]});
    b.o.push_back({r[9], r[10], r[11]});
    b.cb.push_back({c.cb[size_t(3 * i)], c.cb[size_t(3 * i + 1)], c.cb[size_t(3 * i + 2)]});
  }
  return b;
}

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

EvalSummary evaluate_fold(FoldModel& model, const EvalOptions& opt,
                          const std::function<void(int64_t, int64_t, const ChainEval&)>& progress) {
  // The chains in range, in shard order.
  struct Ref {
    size_t shard;
    int64_t index;
  };
  std::vector<FoldShard> shards;
  std::vector<Ref> refs;
  for (const auto& path : io::expand_paths(opt.shards)) {
    shards.push_back(FoldShard::open(path));
    for (int64_t i = 0; i < shards.back().size(); ++i) {
      const int64_t L = shards.back().length(i);
      if (L >= opt.min_length && L <= opt.max_length) refs.push_back({shards.size() - 1, i});
    }
  }
  WENSU_CHECK(!refs.empty(), "eval-fold: no chain of ", opt.min_length, "-", opt.max_length, " residues in the shards");
  if (opt.max_chains > 0 && int64_t(refs.size()) > opt.max_chains) {  // evenly spaced, deterministic
    std::vector<Ref> sub;
    for (int64_t k = 0; k < opt.max_chains; ++k) sub.push_back(refs[size_t(k * int64_t(refs.size()) / opt.max_chains)]);
    refs = std::move(sub);
  }
  EvalSummary s;
  const int64_t total = int64_t(refs.size());
  for (const auto& ref : refs) {
    const auto t0 = std::chrono::steady_clock::now();
    const ChainData c = shards[ref.shard].chain(ref.index);
    const Backbone native = native_backbone(c);
    ChainEval e;
    e.id = c.id;
    e.length = c.length();
    const FoldPrediction p = predict_structure(model, c.id, c.sequence, opt.reconstruct);
    const ScoreResult r = score_structures(p.backbone, native);
    e.tm = r.tm_score, e.lddt = r.lddt_ca, e.rmsd = r.rmsd, e.gdt = r.gdt_ts;
    e.mean_plddt = p.mean_plddt;
    Tensor probs = Tensor::from_vector(p.distogram, {e.length, e.length, p.dist_bins});
    e.p_l5 = contact_precision(probs, c.cb, std::max<int64_t>(1, e.length / 5));
    e.p_l = contact_precision(probs, c.cb, e.length);
    // Ideal alpha-helix (phi -57, psi -47 degrees) of the same length.
    std::vector<double> helix(size_t(2 * e.length));
    for (int64_t i = 0; i < e.length; ++i) {
      helix[size_t(2 * i)] = -57.0 * M_PI / 180.0;
      helix[size_t(2 * i + 1)] = -47.0 * M_PI / 180.0;
    }
    const ScoreResult h = score_structures(build_backbone(c.sequence, helix), native);
    e.helix_tm = h.tm_score, e.helix_lddt = h.lddt_ca;
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.chains.push_back(e);
    if (progress) progress(int64_t(s.chains.size()), total, e);
  }
  std::vector<double> tms;
  for (const auto& e : s.chains) {
    tms.push_back(e.tm);
    s.mean_tm += e.tm, s.mean_lddt += e.lddt, s.mean_p_l5 += e.p_l5, s.mean_p_l += e.p_l;
    s.mean_helix_tm += e.helix_tm, s.mean_helix_lddt += e.helix_lddt;
  }
  const double n = double(s.chains.size());
  s.mean_tm /= n, s.mean_lddt /= n, s.mean_p_l5 /= n, s.mean_p_l /= n, s.mean_helix_tm /= n, s.mean_helix_lddt /= n;
  s.median_tm = median(tms);
  return s;
}

void write_eval_csv(const EvalSummary& s, const std::string& path) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    WENSU_CHECK(out.good(), "cannot write ", path);
    out << "id,length,tm_score,lddt_ca,rmsd,gdt_ts,p_l5_long,p_l_long,mean_plddt,helix_tm,helix_lddt,seconds\n";
    for (const auto& e : s.chains)
      out << e.id << ',' << e.length << ',' << e.tm << ',' << e.lddt << ',' << e.rmsd << ',' << e.gdt << ',' << e.p_l5
          << ',' << e.p_l << ',' << e.mean_plddt << ',' << e.helix_tm << ',' << e.helix_lddt << ',' << e.seconds << '\n';
  }
  std::filesystem::rename(tmp, path);
}

void plot_tm_vs_length(const EvalSummary& s, const std::string& path, const std::string& title) {
  // Points as separate dots: NaN between them breaks the line.
  io::Series model{"model", {}, {}}, helix{"ideal helix", {}, {}};
  for (const auto& e : s.chains) {
    model.x.insert(model.x.end(), {double(e.length), NAN});
    model.y.insert(model.y.end(), {e.tm, NAN});
    helix.x.insert(helix.x.end(), {double(e.length), NAN});
    helix.y.insert(helix.y.end(), {e.helix_tm, NAN});
  }
  helix.alpha = 0.6;
  io::PlotSpec spec;
  spec.title = title;
  spec.xlabel = "length (residues)";
  spec.ylabel = "TM-score";
  spec.series = {model, helix};
  io::plot_lines({spec}, path);
}

}  // namespace wensu::fold
