#include "wensu/fold/train_fold.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/core/generator.h"
#include "wensu/fold/fold_data.h"
#include "wensu/io/checkpoint.h"
#include "wensu/io/esm_alphabet.h"
#include "wensu/io/fasta.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/loss.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/shape.h"
#include "wensu/ops/softmax.h"
#include "wensu/train/progress.h"
#include "wensu/train/signals.h"
#include "wensu/train/state.h"

namespace wensu::fold {
namespace {

constexpr uint64_t kSampleStream = 0x464f4c44ull;  // "FOLD"

double cb_distance(const std::vector<float>& cb, int64_t i, int64_t j) {
  const float* a = cb.data() + 3 * i;
  const float* b = cb.data() + 3 * j;
  const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
  return std::sqrt(dx * dx + dy * dy + dz * dz);
}

// Residues [start, start + len) of a chain.
ChainData crop_chain(const ChainData& c, int64_t start, int64_t len) {
  ChainData out;
  out.id = c.id;
  out.sequence = c.sequence.substr(size_t(start), size_t(len));
  auto slice = [&](const auto& v, int64_t per) {
    using V = std::decay_t<decltype(v)>;
    return V(v.begin() + start * per, v.begin() + (start + len) * per);
  };
  out.backbone = slice(c.backbone, 12);
  out.cb = slice(c.cb, 3);
  out.phi_psi = slice(c.phi_psi, 2);
  out.phi_psi_mask = slice(c.phi_psi_mask, 2);
  if (!c.dssp.empty()) out.dssp = c.dssp.substr(size_t(start), size_t(len));
  if (!c.profile.empty()) out.profile = slice(c.profile, 20);
  return out;
}

Tensor tokens_of(const std::string& seq) {
  return Tensor::from_vector(io::EsmAlphabet::get().encode(seq, true), {int64_t(seq.size()) + 2});
}

}  // namespace

FoldLoss fold_loss(models::FoldNet& model, const ChainData& full, int64_t start, int64_t len, double torsion_weight,
                   double plddt_weight) {
  const ChainData c = crop_chain(full, start, len);
  const auto& cfg = model.config();
  const int64_t L = len, DB = cfg.dist_bins, TB = cfg.torsion_bins, PB = cfg.plddt_bins;
  models::FoldOutput out = model.forward(tokens_of(c.sequence));

  std::vector<int64_t> dist_t(size_t(L * L), -100), tors_t(size_t(L * 2), -100), plddt_t(size_t(L), -100);
  std::vector<double> d(static_cast<size_t>(L * L));
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) {
      d[size_t(i * L + j)] = cb_distance(c.cb, i, j);
      if (i != j) dist_t[size_t(i * L + j)] = models::distance_bin(d[size_t(i * L + j)], DB);
    }
  for (int64_t i = 0; i < 2 * L; ++i)
    if (c.phi_psi_mask[size_t(i)]) tors_t[size_t(i)] = models::torsion_bin(c.phi_psi[size_t(i)], TB);

  // pLDDT target: lDDT of the distogram's expected distances (CB here, as a proxy for CA)
  // against the true ones, over pairs closer than 15 A, thresholds 0.5, 1, 2, 4 A.
  {
    NoGradGuard ng;
    const auto p = ops::softmax(out.distogram, -1).to_vector<float>();
    std::vector<double> centre(static_cast<size_t>(DB));
    for (int64_t k = 0; k < DB; ++k) centre[size_t(k)] = models::distance_bin_centre(k, DB);
    for (int64_t i = 0; i < L; ++i) {
      double kept = 0, pairs = 0;
      for (int64_t j = 0; j < L; ++j) {
        if (j == i || d[size_t(i * L + j)] >= 15.0) continue;
        double e = 0;
        for (int64_t k = 0; k < DB; ++k) e += p[size_t((i * L + j) * DB + k)] * centre[size_t(k)];
        const double err = std::abs(e - d[size_t(i * L + j)]);
        kept += (err < 0.5) + (err < 1.0) + (err < 2.0) + (err < 4.0);
        pairs += 4;
      }
      if (pairs > 0) plddt_t[size_t(i)] = std::min<int64_t>(PB - 1, int64_t(kept / pairs * double(PB)));
    }
  }
  auto ce = [](const Tensor& logits, int64_t C, const std::vector<int64_t>& t) {
    bool any = std::any_of(t.begin(), t.end(), [](int64_t v) { return v >= 0; });
    Tensor flat = ops::reshape(logits, {int64_t(t.size()), C});
    return any ? ops::cross_entropy(flat, Tensor::from_vector(t, {int64_t(t.size())}))
               : ops::scale(ops::sum(flat), 0.0);
  };
  Tensor ld = ce(out.distogram, DB, dist_t), lt = ce(out.torsions, TB, tors_t), lp = ce(out.plddt, PB, plddt_t);
  FoldLoss res;
  res.output = out;
  res.total = ops::add(ld, ops::add(ops::scale(lt, torsion_weight), ops::scale(lp, plddt_weight)));
  res.parts = {res.total.item(), ld.item(), lt.item(), lp.item()};
  return res;
}

double contact_precision(const Tensor& probs, const std::vector<float>& cb, int64_t k, int64_t min_sep) {
  const int64_t L = probs.size(0), DB = probs.size(2);
  const auto p = probs.to_vector<float>();
  const int64_t contact_bins = models::distance_bins_below(8.0, DB);
  std::vector<std::pair<float, std::pair<int64_t, int64_t>>> pairs;
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = i + min_sep; j < L; ++j) {
      float s = 0;
      for (int64_t b = 0; b < contact_bins; ++b) s += p[size_t((i * L + j) * DB + b)];
      pairs.push_back({s, {i, j}});
    }
  if (pairs.empty() || k <= 0) return 0.0;
  k = std::min<int64_t>(k, int64_t(pairs.size()));
  std::partial_sort(pairs.begin(), pairs.begin() + k, pairs.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  int64_t hits = 0;
  for (int64_t t = 0; t < k; ++t) hits += cb_distance(cb, pairs[size_t(t)].second.first, pairs[size_t(t)].second.second) < 8.0;
  return double(hits) / double(k);
}

models::Esm2Config read_lm_config(const std::string& checkpoint) {
  const io::CheckpointInfo info = io::inspect_checkpoint(checkpoint);
  return nlohmann::json::parse(info.model_config).get<models::Esm2Config>();
}

void load_lm_weights(models::FoldNet& model, const std::string& checkpoint) {
  WENSU_CHECK(model.lm, "fold: the model has no LM (features = onehot) to load ", checkpoint, " into");
  io::Checkpoint ck = io::load_checkpoint(checkpoint);
  std::vector<io::NamedTensor> into = train::to_io(model.lm->named_parameters());
  NoGradGuard ng;
  io::load_tensors_into(ck.params, into, checkpoint, "LM parameter");
}

namespace {

struct ChainRef {
  size_t shard;
  int64_t index, length;
};

std::string options_json(const FoldTrainOptions& o) {
  return nlohmann::json{{"lm_checkpoint", o.lm_checkpoint}, {"train", o.train},       {"valid", o.valid},
                        {"steps", o.steps},                 {"crop", o.crop},         {"schedule", o.schedule},
                        {"weight_decay", o.adamw.weight_decay}, {"clip_norm", o.clip_norm},
                        {"torsion_weight", o.torsion_weight}, {"plddt_weight", o.plddt_weight},
                        {"seed", o.seed},                   {"val_every", o.val_every}, {"val_chains", o.val_chains},
                        {"val_crop", o.val_crop},           {"ckpt_every", o.ckpt_every}}
      .dump();
}

void apply_options_json(const std::string& text, FoldTrainOptions& o) {
  const auto j = nlohmann::json::parse(text);
  o.lm_checkpoint = j.at("lm_checkpoint");
  o.train = j.at("train").get<std::vector<std::string>>();
  o.valid = j.at("valid").get<std::vector<std::string>>();
  o.steps = j.at("steps");
  o.crop = j.at("crop");
  o.schedule = j.at("schedule").get<optim::ScheduleConfig>();
  o.adamw.weight_decay = j.at("weight_decay");
  o.clip_norm = j.at("clip_norm");
  o.torsion_weight = j.at("torsion_weight");
  o.plddt_weight = j.at("plddt_weight");
  o.seed = j.at("seed");
  o.val_every = j.at("val_every");
  o.val_chains = j.at("val_chains");
  o.val_crop = j.at("val_crop");
  o.ckpt_every = j.at("ckpt_every");
}

}  // namespace

FoldTrainResult run_train_fold(FoldTrainOptions opt) {
  const std::string ckpt = opt.out_dir + "/checkpoint.h5", metrics_path = opt.out_dir + "/metrics.jsonl";
  if (opt.resume) {
    train::adopt_resumed_settings<models::FoldConfig>(opt, "train-fold", apply_options_json);
  } else if (opt.model.features == "lm") {
    WENSU_CHECK(!opt.lm_checkpoint.empty(), "train-fold: features = lm needs --lm CHECKPOINT (e.g. "
                                            "data/models/esm2_small/weights.h5), or use --features onehot");
    opt.model.lm = read_lm_config(opt.lm_checkpoint);
  }
  opt.model.validate();
  WENSU_CHECK(opt.crop >= 8, "train-fold: --crop must be at least 8 residues");

  // The training chains of every shard (ids and lengths only; residues are read per step).
  std::vector<FoldShard> shards;
  std::vector<ChainRef> chains;
  for (const auto& path : io::expand_paths(opt.train)) {
    shards.push_back(FoldShard::open(path));
    for (int64_t i = 0; i < shards.back().size(); ++i)
      chains.push_back({shards.size() - 1, i, shards.back().length(i)});
  }
  WENSU_CHECK(!chains.empty(), "train-fold: no training chains in ", opt.train.empty() ? "(no --train)" : opt.train[0]);
  std::vector<ChainData> valid;
  for (const auto& path : io::expand_paths(opt.valid)) {
    FoldShard s = FoldShard::open(path);
    for (int64_t i = 0; i < s.size() && int64_t(valid.size()) < opt.val_chains; ++i) valid.push_back(s.chain(i));
  }

  std::filesystem::create_directories(opt.out_dir);
  manual_seed(opt.seed);
  models::FoldNet model(opt.model, generator("default"));
  if (!opt.resume && model.lm) load_lm_weights(model, opt.lm_checkpoint);
  nn::NamedTensors trainable;
  for (auto& [name, t] : model.named_parameters())
    if (name.rfind("lm.", 0) != 0) trainable.emplace_back(name, t);
  std::vector<Tensor> trainable_tensors;
  for (auto& nt : trainable) trainable_tensors.push_back(nt.second);
  optim::AdamW adamw(trainable, opt.adamw);
  const std::string model_json = nlohmann::json(opt.model).dump();

  int64_t step = 0;
  if (opt.resume) {
    step = train::load_training_state(ckpt, model, &adamw).step;
    train::truncate_metrics(metrics_path, step);
  } else {
    std::filesystem::remove(metrics_path);
  }
  auto save = [&](int64_t at) {
    train::TrainingState st;
    st.step = at;
    st.model_config = model_json;
    st.train_config = options_json(opt);
    train::save_training_state(ckpt, model, &adamw, st);
  };
  std::ofstream metrics(metrics_path, std::ios::app);

  FoldTrainResult res;
  res.first_step = step + 1;
  const int64_t last = opt.stop_after >= 0 ? std::min(opt.steps, step + opt.stop_after) : opt.steps;
  train::ProgressBar bar("train-fold", opt.steps, "step");
  train::SignalScope signals;
  const auto t0 = std::chrono::steady_clock::now();
  auto validate = [&](int64_t at) {
    if (valid.empty()) return;
    NoGradGuard ng;
    double dist = 0, p_l5 = 0;
    for (const auto& c : valid) {
      const int64_t len = std::min<int64_t>(c.length(), opt.val_crop);
      FoldLoss l = fold_loss(model, c, 0, len, opt.torsion_weight, opt.plddt_weight);
      dist += l.parts.distogram;
      p_l5 += contact_precision(ops::softmax(l.output.distogram, -1),
                                std::vector<float>(c.cb.begin(), c.cb.begin() + 3 * len), std::max<int64_t>(1, len / 5));
    }
    res.val_distogram = dist / double(valid.size());
    res.val_p_l5 = p_l5 / double(valid.size());
    metrics << nlohmann::json{{"step", at}, {"val_distogram", res.val_distogram}, {"val_p_l5_long", res.val_p_l5},
                              {"val_chains", valid.size()}}
                   .dump()
            << "\n"
            << std::flush;
  };
  model.train();
  while (step < last) {
    ++step;
    const auto r = philox4x32(opt.seed ^ kSampleStream, uint64_t(step));
    const ChainRef& ref = chains[size_t(((uint64_t(r[0]) << 32) | r[1]) % chains.size())];
    const int64_t len = std::min(ref.length, opt.crop);
    const int64_t start = int64_t(r[2] % uint64_t(ref.length - len + 1));
    const ChainData chain = shards[ref.shard].chain(ref.index);
    FoldLoss l = fold_loss(model, chain, start, len, opt.torsion_weight, opt.plddt_weight);
    l.total.backward();
    const double gnorm = optim::clip_grad_norm(trainable_tensors, opt.clip_norm);
    const double lr = optim::learning_rate(opt.schedule, step);
    adamw.step(lr);
    adamw.zero_grad();
    res.losses.push_back(l.parts.total);
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    metrics << nlohmann::json{{"step", step}, {"loss", l.parts.total}, {"distogram", l.parts.distogram},
                              {"torsion", l.parts.torsion}, {"plddt", l.parts.plddt}, {"lr", lr}, {"grad_norm", gnorm},
                              {"chain", chain.id}, {"residues", len}, {"elapsed_s", el}}
                   .dump()
            << "\n"
            << std::flush;
    if (opt.progress) {
      char status[96];
      std::snprintf(status, sizeof status, "loss %.3f  dist %.3f", l.parts.total, l.parts.distogram);
      bar.update(step, status);
    }
    if (opt.val_every > 0 && step % opt.val_every == 0) validate(step);
    const bool stop = train::stop_requested();
    if (stop || step == last || (opt.ckpt_every > 0 && step % opt.ckpt_every == 0)) save(step);
    if (stop) {
      res.interrupted = true;
      break;
    }
  }
  if (!res.interrupted && !res.losses.empty() && step == opt.steps && (opt.val_every <= 0 || step % opt.val_every != 0))
    validate(step);
  res.last_step = step;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (opt.progress) bar.finish();
  return res;
}

}  // namespace wensu::fold
