#include "wensu/fold/predict.h"

#include <hdf5.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/core/generator.h"
#include "wensu/io/bundled.h"
#include "wensu/io/checkpoint.h"
#include "wensu/io/hdf5.h"
#include "wensu/io/esm_alphabet.h"
#include "wensu/io/plot.h"
#include "wensu/ops/softmax.h"
#include "wensu/train/state.h"

namespace wensu::fold {
namespace fs = std::filesystem;

namespace {

std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  WENSU_CHECK(in.good(), "cannot read ", path);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  WENSU_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1, "SHA-256: OpenSSL failed to start");
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), size_t(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &n);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) out += {kHex[md[i] >> 4], kHex[md[i] & 15]};
  return out;
}


void write_float_dataset(hid_t file, const char* name, const std::vector<float>& v, std::vector<hsize_t> dims,
                         const std::string& path) {
  io::Hdf5Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
  io::Hdf5Handle plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (dims.size() >= 2 && !v.empty()) {  // chunked and compressed: probabilities shrink well
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min<hsize_t>(dims[0], 64);
    H5Pset_chunk(plist.get(), int(chunk.size()), chunk.data());
    H5Pset_deflate(plist.get(), 4);
  }
  io::Hdf5Handle d(H5Dcreate2(file, name, H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT), H5Dclose);
  WENSU_CHECK(d.get() >= 0 && H5Dwrite(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0,
              "cannot write /", name, " to ", path);
}

// Writes via `write(tmp)` to a temporary file next to `path`, then renames it into place.
template <class F>
void write_atomically(const std::string& path, const std::string& suffix, F write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + suffix;
  try {
    write(tmp);
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

}  // namespace

FoldModel load_fold_model(const std::string& checkpoint) {
  WENSU_CHECK(fs::exists(checkpoint), "fold model ", checkpoint,
              " not found (train one with `wensu train-fold`, or pass --model)");
  const io::CheckpointInfo info = io::inspect_checkpoint(checkpoint);
  models::FoldConfig cfg;
  try {
    cfg = nlohmann::json::parse(info.model_config).get<models::FoldConfig>();
  } catch (const nlohmann::json::exception& e) {
    throw Error("fold model " + checkpoint + ": its model config is not a FoldNet config (" + e.what() +
                "); is this a pretraining checkpoint? `wensu fold` needs one written by `wensu train-fold`");
  }
  Generator gen(0);
  FoldModel m;
  m.net = std::make_shared<models::FoldNet>(cfg, gen);
  const io::Checkpoint ck = io::load_checkpoint(checkpoint);
  NoGradGuard ng;
  io::load_tensors_into(ck.params, train::to_io(m.net->named_parameters()), checkpoint, "parameter");
  m.net->eval();
  m.path = checkpoint;
  m.sha256 = file_sha256(checkpoint);
  return m;
}

std::string default_fold_model_path() { return io::bundled_model_path("wensu-fold/model.h5"); }

Restraints restraints_from(const std::vector<float>& dist_probs, const std::vector<float>& torsion_probs, int64_t L,
                           int64_t DB, int64_t TB) {
  Restraints r;
  r.L = L;
  r.dist.assign(size_t(L * L), 0.0f);
  r.weight.assign(size_t(L * L), 0.0f);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) {
      if (std::abs(i - j) < 2) continue;
      const float* p = dist_probs.data() + (i * L + j) * DB;
      double mass = 0, mean = 0;
      for (int64_t k = 0; k + 1 < DB; ++k) {
        mass += p[k];
        mean += p[k] * models::distance_bin_centre(k, DB);
      }
      if (mass <= 1e-6) continue;
      r.dist[size_t(i * L + j)] = float(mean / mass);
      r.weight[size_t(i * L + j)] = float(mass);
    }
  r.phi.resize(size_t(L));
  r.psi.resize(size_t(L));
  r.torsion_weight.resize(size_t(L));
  for (int64_t i = 0; i < L; ++i) {
    double conc = 0;
    for (int a = 0; a < 2; ++a) {
      const float* p = torsion_probs.data() + (i * 2 + a) * TB;
      double s = 0, c = 0;
      for (int64_t k = 0; k < TB; ++k) {
        const double t = models::torsion_bin_centre(k, TB);
        s += p[k] * std::sin(t);
        c += p[k] * std::cos(t);
      }
      (a == 0 ? r.phi : r.psi)[size_t(i)] = float(std::atan2(s, c));
      conc += 0.5 * std::sqrt(s * s + c * c);
    }
    r.torsion_weight[size_t(i)] = float(conc);
  }
  return r;
}

double estimate_fold_memory(const models::FoldConfig& cfg, int64_t L) {
  // About a dozen live [L, L, C] float tensors in a pair block (norm, q/k/v, gate, attention
  // output, transposes) plus the distogram logits and probabilities [L, L, bins] twice.
  const double pair = double(L) * double(L) * 4.0;
  return pair * (12.0 * double(cfg.pair_dim) + 4.0 * double(cfg.dist_bins)) + 256.0 * 1024 * 1024;
}

FoldPrediction predict_structure(FoldModel& model, const std::string& id, const std::string& sequence,
                                 const ReconstructOptions& opt) {
  const auto& cfg = model.net->config();
  const int64_t L = int64_t(sequence.size());
  FoldPrediction p;
  p.id = id;
  p.sequence = sequence;
  p.dist_bins = cfg.dist_bins;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> torsions, plddt;
  {
    NoGradGuard ng;
    const auto tokens = io::EsmAlphabet::get().encode(sequence, true);
    models::FoldOutput out = model.net->forward(Tensor::from_vector(tokens, {L + 2}));
    p.distogram = ops::softmax(out.distogram, -1).to_vector<float>();
    torsions = ops::softmax(out.torsions, -1).to_vector<float>();
    plddt = ops::softmax(out.plddt, -1).to_vector<float>();
  }
  p.contacts.assign(size_t(L * L), 0.0f);
  const int64_t contact_bins = models::distance_bins_below(8.0, cfg.dist_bins);
  for (int64_t ij = 0; ij < L * L; ++ij)
    for (int64_t k = 0; k < contact_bins; ++k) p.contacts[size_t(ij)] += p.distogram[size_t(ij * cfg.dist_bins + k)];
  auto t1 = std::chrono::steady_clock::now();
  p.network_s = std::chrono::duration<double>(t1 - t0).count();

  const Restraints r = restraints_from(p.distogram, torsions, L, cfg.dist_bins, cfg.torsion_bins);
  Reconstruction rec = reconstruct(sequence, r, opt);
  p.reconstruction_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  p.objective = rec.objective;
  p.backbone = std::move(rec.backbone);
  p.backbone.id = id;
  p.backbone.confidence.resize(size_t(L));
  double sum = 0;
  for (int64_t i = 0; i < L; ++i) {
    double e = 0;
    for (int64_t k = 0; k < cfg.plddt_bins; ++k)
      e += plddt[size_t(i * cfg.plddt_bins + k)] * (double(k) + 0.5) * 100.0 / double(cfg.plddt_bins);
    p.backbone.confidence[size_t(i)] = float(e);
    sum += e;
  }
  p.mean_plddt = L > 0 ? sum / double(L) : 0.0;
  return p;
}

std::string safe_file_stem(const std::string& id) {
  std::string s = id.empty() ? "unnamed" : id;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  return s;
}

void write_prediction_files(const FoldPrediction& p, const std::string& out_dir, const std::string& name) {
  fs::create_directories(out_dir);
  const fs::path base = fs::path(out_dir) / name;
  const int64_t L = int64_t(p.sequence.size());
  write_backbone(p.backbone, base.string() + ".pdb", base.string() + ".cif");
  write_atomically(base.string() + ".contacts.png", ".png", [&](const std::string& tmp) {
    io::plot_heatmap(p.contacts, L, L, p.id + ": P(CB-CB < 8 A)", tmp);
  });
  write_atomically(base.string() + ".distogram.h5", ".h5", [&](const std::string& tmp) {
    io::Hdf5Handle f(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    WENSU_CHECK(f.get() >= 0, "cannot create ", tmp);
    const hsize_t n = hsize_t(L), b = hsize_t(p.dist_bins);
    write_float_dataset(f.get(), "distogram", p.distogram, {n, n, b}, tmp);
    write_float_dataset(f.get(), "contacts", p.contacts, {n, n}, tmp);
    std::vector<float> centres(size_t(p.dist_bins));
    for (int64_t k = 0; k < p.dist_bins; ++k) centres[size_t(k)] = float(models::distance_bin_centre(k, p.dist_bins));
    write_float_dataset(f.get(), "bin_centres", centres, {b}, tmp);
    WENSU_CHECK(f.reset() >= 0, "cannot close ", tmp, " (disk full?)");
  });
}

}  // namespace wensu::fold
