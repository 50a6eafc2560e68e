// FoldNet, the network of `wensu fold`: from one protein sequence to a CB-CB distogram, backbone
// torsion distributions and per-residue confidence (pLDDT), the restraints that
// fold/reconstruct.h turns into coordinates. In the spirit of trRosetta's and ESMFold's heads,
// small enough to train on a CPU:
//
//   features  f [L, F]      the protein LM's last hidden states (features = "lm", Esm2, frozen)
//                           or the one-hot sequence (features = "onehot", the baseline that
//                           measures what pretraining brings)
//   s = Linear(f)           [L, S]
//   z_ij = Linear_l(s)_i + Linear_r(s)_j + Linear_o(a_i (x) b_j) + RelPos(clip(j - i))   [L, L, C]
//   blocks x { z += RowAttention(LN z); z += ColumnAttention(LN z); z += Transition(LN z) }
//       axial attention (gated, as in AlphaFold's Evoformer pair stack without triangles),
//       rows of z are the batch of a flash-style attention (block-sparse with a dense layout)
//   distogram = Linear(LN (z + z^T) / 2)              [L, L, dist_bins]
//   t = [s, mean_j LN z_ij]                             [L, S + C]
//   torsions  = Linear(t) -> [L, 2, torsion_bins] (phi, psi);  plddt = Linear(t) -> [L, plddt_bins]
//
// Bins: distance_bin(), torsion_bin(), plddt bins of width 100 / plddt_bins.
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "wensu/models/esm2.h"
#include "wensu/ops/block_layout.h"
#include "wensu/nn/layers.h"

namespace wensu::models {

struct FoldConfig {
  std::string features = "lm";  // "lm" or "onehot"
  Esm2Config lm;                // the LM's shape (features = "lm")
  int64_t seq_dim = 64;
  int64_t pair_dim = 32;
  int64_t outer_dim = 8;        // a_i, b_j of the outer product
  int64_t blocks = 4;
  int64_t heads = 4;
  int64_t transition = 2;       // pair transition hidden size = transition * pair_dim
  int64_t max_relpos = 32;
  int64_t dist_bins = 37;       // [2, 2.5) ... [19.5, 20) Angstrom and >= 20 (below 2: bin 0)
  int64_t torsion_bins = 36;    // 10 degrees each, from -180
  int64_t plddt_bins = 50;
  void validate() const;        // throws wensu::Error naming the bad field
};
void to_json(nlohmann::json& j, const FoldConfig& c);
void from_json(const nlohmann::json& j, FoldConfig& c);

// Distance bin of a CB-CB distance in Angstrom; lower edge and centre of bin k (the last bin,
// >= 20 A, has centre 21).
int64_t distance_bin(double d, int64_t bins = 37);
double distance_bin_centre(int64_t k, int64_t bins = 37);
// How many leading bins lie below d Angstrom (their centres, not the last open bin): the bins
// whose probabilities add up to P(CB-CB < d), e.g. d = 8 for a contact.
int64_t distance_bins_below(double d, int64_t bins = 37);
// Bin of an angle in radians, [-pi, pi) in `bins` equal parts, and its centre.
int64_t torsion_bin(double angle, int64_t bins = 36);
double torsion_bin_centre(int64_t k, int64_t bins = 36);

struct FoldOutput {
  Tensor distogram;  // [L, L, dist_bins] logits, symmetric in (i, j)
  Tensor torsions;   // [L, 2, torsion_bins] logits of phi and psi
  Tensor plddt;      // [L, plddt_bins] logits of the residue's lDDT-CA x 100
};

// Gated multi-head self-attention along the rows of a pair representation.
class AxialAttention : public nn::Module {
 public:
  AxialAttention(int64_t dim, int64_t heads, Generator& gen);
  Tensor forward(const Tensor& z) const;  // [R, N, C] (attention over N, R rows) -> [R, N, C]
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> qkv, gate, out;
  int64_t heads;

 private:
  mutable std::map<int64_t, std::shared_ptr<const ops::BlockLayout>> layouts_;  // dense, by length
};

class PairBlock : public nn::Module {
 public:
  PairBlock(int64_t dim, int64_t heads, int64_t transition, Generator& gen);
  Tensor forward(const Tensor& z) const;  // [L, L, C]
  std::shared_ptr<AxialAttention> row, column;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> up, down;
};

class FoldNet : public nn::Module {
 public:
  FoldNet(const FoldConfig& cfg, Generator& gen);
  // tokens: int64 [L + 2], ESM alphabet, <cls> residues <eos> (io::EsmAlphabet::encode). The
  // LM, when there is one, runs without gradients (it is frozen: its parameters are named
  // "lm.*" and the fold trainer leaves them out of the optimizer).
  FoldOutput forward(const Tensor& tokens);
  const FoldConfig& config() const { return cfg_; }

  std::shared_ptr<Esm2> lm;  // null for features = "onehot"
  std::shared_ptr<nn::Linear> seq_in, left, right, outer_a, outer_b, outer_out, dist_head, torsion_head, plddt_head;
  std::shared_ptr<nn::Embedding> relpos;
  std::shared_ptr<nn::LayerNorm> dist_norm, pair_norm;
  std::vector<std::shared_ptr<PairBlock>> blocks;

 private:
  Tensor features(const Tensor& tokens);  // [L, F]
  FoldConfig cfg_;
};

}  // namespace wensu::models
