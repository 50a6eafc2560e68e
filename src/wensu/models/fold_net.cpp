#include "wensu/models/fold_net.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/io/json_fields.h"
#include "wensu/ops/block_layout.h"
#include "wensu/ops/block_sparse_attention.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/indexing.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/shape.h"
#include "wensu/ops/unary.h"

namespace wensu::models {

void FoldConfig::validate() const {
  WENSU_CHECK(features == "lm" || features == "onehot", "fold config: features must be \"lm\" or \"onehot\", got '",
              features, "'");
  if (features == "lm") lm.validate();
  WENSU_CHECK(seq_dim > 0 && pair_dim > 0 && outer_dim > 0 && blocks >= 0 && transition > 0,
              "fold config: seq_dim, pair_dim, outer_dim, transition must be > 0 and blocks >= 0");
  WENSU_CHECK(heads > 0 && pair_dim % heads == 0, "fold config: pair_dim (", pair_dim,
              ") must be a multiple of heads (", heads, ")");
  WENSU_CHECK(max_relpos > 0, "fold config: max_relpos must be > 0");
  WENSU_CHECK(dist_bins >= 2 && torsion_bins >= 2 && plddt_bins >= 2, "fold config: every head needs >= 2 bins");
}

void to_json(nlohmann::json& j, const FoldConfig& c) {
  j = {{"features", c.features}, {"seq_dim", c.seq_dim},     {"pair_dim", c.pair_dim},
       {"outer_dim", c.outer_dim}, {"blocks", c.blocks},     {"heads", c.heads},
       {"transition", c.transition}, {"max_relpos", c.max_relpos}, {"dist_bins", c.dist_bins},
       {"torsion_bins", c.torsion_bins}, {"plddt_bins", c.plddt_bins}};
  if (c.features == "lm") j["lm"] = c.lm;
}

void from_json(const nlohmann::json& j, FoldConfig& c) {
  {
    io::JsonFields r(j, "fold config");
    r("features", c.features);
    r("lm", c.lm);
    r("seq_dim", c.seq_dim);
    r("pair_dim", c.pair_dim);
    r("outer_dim", c.outer_dim);
    r("blocks", c.blocks);
    r("heads", c.heads);
    r("transition", c.transition);
    r("max_relpos", c.max_relpos);
    r("dist_bins", c.dist_bins);
    r("torsion_bins", c.torsion_bins);
    r("plddt_bins", c.plddt_bins);
  }
  c.validate();
}

// bins - 1 bins of (18 / (bins - 1)) Angstrom from 2 to 20, and one for >= 20.
int64_t distance_bin(double d, int64_t bins) {
  const double w = 18.0 / double(bins - 1);
  if (!(d >= 2.0)) return 0;
  return std::min<int64_t>(bins - 1, int64_t((d - 2.0) / w));
}

double distance_bin_centre(int64_t k, int64_t bins) {
  const double w = 18.0 / double(bins - 1);
  return k >= bins - 1 ? 21.0 : 2.0 + (double(k) + 0.5) * w;
}

int64_t distance_bins_below(double d, int64_t bins) {
  int64_t k = 0;
  while (k < bins - 1 && distance_bin_centre(k, bins) < d) ++k;
  return k;
}

int64_t torsion_bin(double angle, int64_t bins) {
  const double two_pi = 2 * std::numbers::pi;
  double a = std::fmod(angle + std::numbers::pi, two_pi);
  if (a < 0) a += two_pi;
  return std::min<int64_t>(bins - 1, int64_t(a / two_pi * double(bins)));
}

double torsion_bin_centre(int64_t k, int64_t bins) {
  return -std::numbers::pi + (double(k) + 0.5) * 2 * std::numbers::pi / double(bins);
}

AxialAttention::AxialAttention(int64_t dim, int64_t h, Generator& gen) : heads(h) {
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(dim));
  qkv = register_module("qkv", std::make_shared<nn::Linear>(dim, 3 * dim, false, gen));
  gate = register_module("gate", std::make_shared<nn::Linear>(dim, dim, true, gen));
  out = register_module("out", std::make_shared<nn::Linear>(dim, dim, true, gen));
}

Tensor AxialAttention::forward(const Tensor& z) const {
  const int64_t R = z.size(0), N = z.size(1), C = z.size(2), dh = C / heads;
  Tensor x = norm->forward(z);
  Tensor qkv_x = qkv->forward(x);  // [R, N, 3C]
  auto part = [&](int64_t i) { return ops::reshape(ops::narrow(qkv_x, 2, i * C, C), {R, N, heads, dh}); };
  // Flash-style (a dense block layout): memory O(R N C), never the [R, H, N, N] probabilities
  // that dense attention keeps (16 GB for a 1,000-residue chain).
  auto& layout = layouts_[N];
  if (!layout) layout = ops::make_block_layout(ops::BlockLayoutConfig{}, N, N);
  Tensor o = ops::reshape(ops::block_sparse_attention(part(0), part(1), part(2), *layout), {R, N, C});
  return out->forward(ops::mul(ops::sigmoid(gate->forward(x)), o));
}

PairBlock::PairBlock(int64_t dim, int64_t heads, int64_t transition, Generator& gen) {
  row = register_module("row", std::make_shared<AxialAttention>(dim, heads, gen));
  column = register_module("column", std::make_shared<AxialAttention>(dim, heads, gen));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(dim));
  up = register_module("up", std::make_shared<nn::Linear>(dim, transition * dim, true, gen));
  down = register_module("down", std::make_shared<nn::Linear>(transition * dim, dim, true, gen));
}

Tensor PairBlock::forward(const Tensor& z0) const {
  Tensor z = ops::add(z0, row->forward(z0));
  Tensor zt = ops::transpose(z, 0, 1);  // columns as rows
  z = ops::transpose(ops::add(zt, column->forward(zt)), 0, 1);
  return ops::add(z, down->forward(ops::relu(up->forward(norm->forward(z)))));
}

FoldNet::FoldNet(const FoldConfig& cfg, Generator& gen) : cfg_(cfg) {
  cfg_.validate();
  int64_t F = 21;  // one-hot: 20 amino acids + anything else
  if (cfg_.features == "lm") {
    lm = register_module("lm", std::make_shared<Esm2>(cfg_.lm, gen));
    F = cfg_.lm.embed_dim;
  }
  const int64_t S = cfg_.seq_dim, C = cfg_.pair_dim, O = cfg_.outer_dim;
  seq_in = register_module("seq_in", std::make_shared<nn::Linear>(F, S, true, gen));
  left = register_module("left", std::make_shared<nn::Linear>(S, C, false, gen));
  right = register_module("right", std::make_shared<nn::Linear>(S, C, false, gen));
  outer_a = register_module("outer_a", std::make_shared<nn::Linear>(S, O, false, gen));
  outer_b = register_module("outer_b", std::make_shared<nn::Linear>(S, O, false, gen));
  outer_out = register_module("outer_out", std::make_shared<nn::Linear>(O * O, C, true, gen));
  relpos = register_module("relpos", std::make_shared<nn::Embedding>(2 * cfg_.max_relpos + 1, C, gen));
  for (int64_t b = 0; b < cfg_.blocks; ++b)
    blocks.push_back(register_module("blocks." + std::to_string(b),
                                     std::make_shared<PairBlock>(C, cfg_.heads, cfg_.transition, gen)));
  dist_norm = register_module("dist_norm", std::make_shared<nn::LayerNorm>(C));
  pair_norm = register_module("pair_norm", std::make_shared<nn::LayerNorm>(C));
  dist_head = register_module("dist_head", std::make_shared<nn::Linear>(C, cfg_.dist_bins, true, gen));
  torsion_head = register_module("torsion_head", std::make_shared<nn::Linear>(S + C, 2 * cfg_.torsion_bins, true, gen));
  plddt_head = register_module("plddt_head", std::make_shared<nn::Linear>(S + C, cfg_.plddt_bins, true, gen));
}

Tensor FoldNet::features(const Tensor& tokens) {
  const int64_t L = tokens.size(0) - 2;
  if (lm) {
    NoGradGuard frozen;
    lm->eval();
    Tensor rep;
    lm->forward(ops::unsqueeze(tokens, 0), &rep);             // [1, L + 2, D]
    return ops::contiguous(ops::narrow(rep, 1, 1, L)).reshape({L, rep.size(2)}).detach();
  }
  // One-hot over the ESM amino-acid ids 4..23 (the 20 standard residues, "LAGVSERTIDPKQNFYMHWC")
  // and one column for anything else.
  const auto ids = tokens.to_vector<int64_t>();
  std::vector<float> onehot(size_t(L * 21), 0.0f);
  for (int64_t i = 0; i < L; ++i) {
    const int64_t t = ids[size_t(i + 1)];
    onehot[size_t(i * 21 + (t >= 4 && t < 24 ? t - 4 : 20))] = 1.0f;
  }
  return Tensor::from_vector(onehot, {L, 21});
}

FoldOutput FoldNet::forward(const Tensor& tokens) {
  WENSU_CHECK(tokens.dim() == 1 && tokens.size(0) >= 3, "FoldNet: tokens must be [L + 2] with L >= 1");
  const int64_t L = tokens.size(0) - 2, O = cfg_.outer_dim;
  Tensor s = seq_in->forward(features(tokens));  // [L, S]
  // Pair features: z_ij = l_i + r_j + W (a_i (x) b_j) + relpos(j - i).
  Tensor z = ops::add(ops::unsqueeze(left->forward(s), 1), ops::unsqueeze(right->forward(s), 0));  // [L, L, C]
  Tensor a = ops::unsqueeze(ops::unsqueeze(outer_a->forward(s), 1), 3);                            // [L, 1, O, 1]
  Tensor b = ops::unsqueeze(ops::unsqueeze(outer_b->forward(s), 0), 2);                            // [1, L, 1, O]
  z = ops::add(z, outer_out->forward(ops::reshape(ops::mul(a, b), {L, L, O * O})));
  std::vector<int64_t> rel(size_t(L * L));
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j)
      rel[size_t(i * L + j)] = std::clamp<int64_t>(j - i, -cfg_.max_relpos, cfg_.max_relpos) + cfg_.max_relpos;
  z = ops::add(z, relpos->forward(Tensor::from_vector(rel, {L, L})));
  for (const auto& block : blocks) z = block->forward(z);

  FoldOutput out;
  Tensor zs = ops::scale(ops::add(z, ops::transpose(z, 0, 1)), 0.5);
  out.distogram = dist_head->forward(dist_norm->forward(zs));                        // [L, L, bins]
  Tensor t = ops::concat({s, ops::mean(pair_norm->forward(z), {1})}, 1);            // [L, S + C]
  out.torsions = ops::reshape(torsion_head->forward(t), {L, 2, cfg_.torsion_bins});  // [L, 2, bins]
  out.plddt = plddt_head->forward(t);                                                // [L, bins]
  return out;
}

}  // namespace wensu::models
