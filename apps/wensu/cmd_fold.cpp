// wensu fold: structures for every record of FASTA files (fold/predict.h), written as PDB and
// mmCIF with pLDDT in the B-factor column, a JSON summary, a contact-map picture and the
// distogram in HDF5.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/core/parallel.h"
#include "wensu/fold/predict.h"
#include "wensu/io/fasta.h"
#include "wensu/version.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace wensu::app {

int cmd_fold(const Args& args) {
  std::vector<std::string> inputs;
  std::string out_dir = "wensu-fold", model_path, device = "cpu";
  int threads = 0;
  double max_memory_gb = 8.0;
  bool strict = false;
  fold::ReconstructOptions ro;
  po::options_description desc(
      "usage: wensu fold IN.fasta [MORE.fasta ...] -o OUT/ [options]\n\n"
      "Predicts the structure of every record: OUT/ID.pdb and OUT/ID.cif (backbone N, CA, C, O and\n"
      "CB, pLDDT 0-100 in the B-factor column), OUT/ID.json (mean pLDDT, length, timings, model\n"
      "hash, seed), OUT/ID.contacts.png (predicted contact map) and OUT/ID.distogram.h5. Uses the\n"
      "bundled model (data/models/wensu-fold) unless --model is given. Invalid records (letters\n"
      "that are not amino acids, empty records, sequences too long for --max-memory) are reported\n"
      "by name and skipped; the others are still folded (exit status 1 when any was skipped),\n"
      "unless --strict stops at the first.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("input", po::value(&inputs)->multitoken(), "FASTA files")
      ("out,o", po::value(&out_dir)->default_value(out_dir), "output folder")
      ("model,m", po::value(&model_path), "fold model checkpoint (default: the bundled one)")
      ("device", po::value(&device)->default_value(device), "cpu (cuda: see issue 7)")
      ("threads", po::value(&threads)->default_value(0), "CPU threads (0 = all cores)")
      ("seed", po::value(&ro.seed)->default_value(0), "seed of the reconstruction's random starts")
      ("starts", po::value(&ro.starts)->default_value(ro.starts), "reconstruction starts (the best is kept)")
      ("max-memory", po::value(&max_memory_gb)->default_value(max_memory_gb), "GB a record may use; longer sequences are refused")
      ("strict", po::bool_switch(&strict), "stop at the first invalid record");
  po::positional_options_description pos;
  pos.add("input", -1);
  if (!parse_options(desc, args, &pos)) return 0;
  WENSU_CHECK(!inputs.empty(), "fold: give a FASTA file (wensu fold IN.fasta -o OUT/)");
  WENSU_CHECK(device == "cpu", "fold: --device ", device, " is not available yet; use --device cpu");
  set_num_threads(threads);
  if (model_path.empty()) model_path = fold::default_fold_model_path();
  fold::FoldModel model = fold::load_fold_model(model_path);
  const double max_bytes = max_memory_gb * 1e9;

  // Every record first (invalid ones named now, so a long run does not fail at the end).
  struct Job {
    std::string id, sequence;
  };
  std::vector<Job> jobs;
  std::vector<std::string> problems;
  for (const auto& path : inputs) {
    io::FastaOptions fo;
    fo.skip_invalid = !strict;
    fo.on_skip = [&](const std::string& msg) { problems.push_back(msg); };
    io::FastaReader reader(path, fo);
    io::FastaRecord rec;
    while (reader.next(rec)) {
      const double need = fold::estimate_fold_memory(model.net->config(), int64_t(rec.sequence.size()));
      if (need > max_bytes) {
        const std::string msg = path + ": record '" + rec.id + "' (line " + std::to_string(rec.line) + ") has " +
                                std::to_string(rec.sequence.size()) + " residues, which need about " +
                                std::to_string(int(need / 1e9 + 0.5)) + " GB, over --max-memory " +
                                std::to_string(max_memory_gb) + " GB; raise --max-memory or split the sequence";
        WENSU_CHECK(!strict, msg);
        problems.push_back(msg);
        continue;
      }
      jobs.push_back({rec.id, rec.sequence});
    }
  }
  for (const auto& p : problems) std::fprintf(stderr, "wensu fold: skipped: %s\n", p.c_str());

  fs::create_directories(out_dir);
  for (size_t n = 0; n < jobs.size(); ++n) {
    const auto& job = jobs[n];
    const std::string stem = fold::safe_file_stem(job.id);
    const fold::FoldPrediction p = fold::predict_structure(model, job.id, job.sequence, ro);
    fold::write_prediction_files(p, out_dir, stem);
    const nlohmann::json summary = {{"id", job.id},
                                    {"length", job.sequence.size()},
                                    {"mean_plddt", p.mean_plddt},
                                    {"seconds", {{"network", p.network_s}, {"reconstruction", p.reconstruction_s}}},
                                    {"model", model.path},
                                    {"model_sha256", model.sha256},
                                    {"seed", ro.seed},
                                    {"starts", ro.starts},
                                    {"reconstruction_objective", p.objective},
                                    {"threads", num_threads()},
                                    {"wensu_version", WENSU_VERSION}};
    const std::string json_path = (fs::path(out_dir) / (stem + ".json")).string();
    const std::string tmp = json_path + ".tmp." + std::to_string(::getpid());
    std::ofstream(tmp) << summary.dump(2) << "\n";
    fs::rename(tmp, json_path);
    std::printf("[%zu/%zu] %s: %zu residues, mean pLDDT %.1f, %.1f s -> %s/%s.pdb\n", n + 1, jobs.size(),
                job.id.c_str(), job.sequence.size(), p.mean_plddt, p.network_s + p.reconstruction_s,
                out_dir.c_str(), stem.c_str());
    std::fflush(stdout);
  }
  return problems.empty() ? 0 : 1;
}

}  // namespace wensu::app
