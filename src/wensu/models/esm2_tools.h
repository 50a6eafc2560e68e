// Running an ESM-2-style model over FASTA files: loading it from a checkpoint (one written by
// `wensu pretrain` or `wensu convert esm2`), and per-residue / mean embeddings to HDF5, as
// fair-esm's esm-extract does. Everything streams: sequences are read, batched and written
// a batch at a time.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "wensu/models/esm2.h"

namespace wensu::models {

// The model of a checkpoint (load_esm2_checkpoint of esm2_convert.h), in eval mode.
std::shared_ptr<Esm2> load_esm2(const std::string& checkpoint);

struct EmbedOptions {
  int64_t tokens_per_batch = 8192;  // padded tokens per forward
  bool per_residue = false;         // also /per_residue/<n> [L, D] per sequence
  bool skip_invalid = false;
};

struct EmbedSummary {
  int64_t sequences = 0, residues = 0, dim = 0;
};

// Writes out_h5 atomically (temp file + rename):
//   /ids            [N] strings: the FASTA ids, in input order
//   /mean           float32 [N, D]: mean over the residues (not <cls>/<eos>) of the final
//                   representation (after emb_layer_norm_after)
//   /per_residue/n  float32 [L_n, D] (per_residue only), attribute "id"
// Sequences are embedded whole, however long: the attention config decides what fits.
EmbedSummary embed_fasta(Esm2& model, const std::vector<std::string>& files, const std::string& out_h5,
                         const EmbedOptions& opt);

}  // namespace wensu::models
