// Structure prediction for `wensu fold`: FoldNet's distogram, torsions and pLDDT for a sequence,
// turned into restraints and reconstructed into a backbone (fold/reconstruct.h), and the files
// a prediction is written as.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wensu/fold/reconstruct.h"
#include "wensu/fold/structure.h"
#include "wensu/models/fold_net.h"

namespace wensu::fold {

// A fold model: FoldNet with the parameters of a checkpoint (train-fold's, or a weights-only copy).
struct FoldModel {
  std::shared_ptr<models::FoldNet> net;
  std::string path;    // the checkpoint
  std::string sha256;  // of the checkpoint file, hex
};
FoldModel load_fold_model(const std::string& checkpoint);

// The bundled model: $WENSU_MODELS/wensu-fold/model.h5 when WENSU_MODELS is set, else
// data/models/wensu-fold/model.h5 next to the binary's build tree or in the source tree.
std::string default_fold_model_path();

// Restraints from the network's probabilities. Pairs |i - j| >= 2: the expected CB-CB distance
// over the bins below 20 A, weighted by the probability of being below 20 A. Torsions: the
// circular mean of each distribution, weighted by its concentration (mean resultant length).
// dist_probs [L, L, bins], torsion_probs [L, 2, bins], both row-normalised.
Restraints restraints_from(const std::vector<float>& dist_probs, const std::vector<float>& torsion_probs, int64_t L,
                           int64_t dist_bins, int64_t torsion_bins);

struct FoldPrediction {
  std::string id, sequence;
  Backbone backbone;               // N, CA, C, O, CB; confidence = pLDDT per residue
  std::vector<float> distogram;    // [L, L, bins] probabilities
  std::vector<float> contacts;     // [L, L] P(CB-CB < 8 A)
  int64_t dist_bins = 0;
  double mean_plddt = 0;
  double network_s = 0, reconstruction_s = 0;
  double objective = 0;  // of the kept reconstruction
};

FoldPrediction predict_structure(FoldModel& model, const std::string& id, const std::string& sequence,
                                 const ReconstructOptions& opt);

// Bytes the network needs for a sequence of L residues (pair activations, attention, distogram),
// to refuse lengths beyond --max-memory before starting.
double estimate_fold_memory(const models::FoldConfig& cfg, int64_t L);

// Writes OUT/ID.pdb, ID.cif (pLDDT in the B-factor column), ID.contacts.png and
// ID.distogram.h5 (/distogram [L, L, bins] float32, /bin_centres [bins], /contacts [L, L]), each
// to a temporary file renamed into place. `name` is the file stem (the record id made safe).
void write_prediction_files(const FoldPrediction& p, const std::string& out_dir, const std::string& name);

// A record id as a file name: characters other than letters, digits, '.', '-' and '_' become '_'.
std::string safe_file_stem(const std::string& id);

}  // namespace wensu::fold
