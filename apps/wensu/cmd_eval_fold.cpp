// wensu eval-fold: a fold model on the held-out test split (fold/evaluate.h).
#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/core/parallel.h"
#include "wensu/fold/evaluate.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace wensu::app {

int cmd_eval_fold(const Args& args) {
  fold::EvalOptions opt;
  std::string model_path, shards, out_dir = "wensu-eval-fold";
  int threads = 0;
  opt.reconstruct.starts = 4;
  po::options_description desc(
      "usage: wensu eval-fold --model MODEL.h5 --shards fold/test.h5 -o OUT/ [options]\n\n"
      "Folds the chains of the shards (the test split of scripts/data/make-structure-data.sh) and\n"
      "scores each against its native structure: TM-score, lDDT-CA, RMSD, GDT-TS, long-range\n"
      "contact precision (top L/5 and L, |i-j| >= 24), and the same scores for an ideal\n"
      "alpha-helix of the same length. Writes OUT/summary.json, OUT/chains.csv and\n"
      "OUT/tm_vs_length.png, and prints the table.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("model,m", po::value(&model_path), "fold model (default: the bundled one)")
      ("shards", po::value(&shards), "fold shards: globs, comma-separated")
      ("out,o", po::value(&out_dir)->default_value(out_dir), "output folder")
      ("min-length", po::value(&opt.min_length)->default_value(opt.min_length), "shortest chain evaluated")
      ("max-length", po::value(&opt.max_length)->default_value(opt.max_length), "longest chain evaluated")
      ("max-chains", po::value(&opt.max_chains)->default_value(0), "an evenly spaced subset of this many chains (0 = all)")
      ("starts", po::value(&opt.reconstruct.starts)->default_value(opt.reconstruct.starts), "reconstruction starts per chain")
      ("seed", po::value(&opt.reconstruct.seed)->default_value(0), "reconstruction seed")
      ("threads", po::value(&threads)->default_value(0), "CPU threads (0 = all cores)");
  if (!parse_options(desc, args)) return 0;
  WENSU_CHECK(!shards.empty(), "eval-fold: --shards is required (e.g. ~/.cache/wensu/fold/test.h5)");
  set_num_threads(threads);
  opt.shards = split_list(shards);
  if (model_path.empty()) model_path = fold::default_fold_model_path();
  fold::FoldModel model = fold::load_fold_model(model_path);
  fs::create_directories(out_dir);
  const fold::EvalSummary s = fold::evaluate_fold(model, opt, [](int64_t done, int64_t total, const fold::ChainEval& e) {
    std::fprintf(stderr, "[%lld/%lld] %s L=%lld TM %.3f lDDT %.3f P@L/5 %.2f (helix TM %.3f) %.1f s\n",
                 (long long)done, (long long)total, e.id.c_str(), (long long)e.length, e.tm, e.lddt, e.p_l5,
                 e.helix_tm, e.seconds);
  });
  fold::write_eval_csv(s, (fs::path(out_dir) / "chains.csv").string());
  fold::plot_tm_vs_length(s, (fs::path(out_dir) / "tm_vs_length.png").string(),
                          "TM-score vs length (" + fs::path(model_path).filename().string() + ")");
  const nlohmann::json summary = {{"model", model_path},         {"model_sha256", model.sha256},
                                  {"shards", opt.shards},         {"chains", s.chains.size()},
                                  {"min_length", opt.min_length}, {"max_length", opt.max_length},
                                  {"mean_tm", s.mean_tm},         {"median_tm", s.median_tm},
                                  {"mean_lddt_ca", s.mean_lddt},  {"mean_p_l5_long", s.mean_p_l5},
                                  {"mean_p_l_long", s.mean_p_l},  {"helix_mean_tm", s.mean_helix_tm},
                                  {"helix_mean_lddt_ca", s.mean_helix_lddt}, {"starts", opt.reconstruct.starts}};
  std::ofstream(fs::path(out_dir) / "summary.json") << summary.dump(2) << "\n";
  std::printf("%-14s %8s %8s %8s %10s %10s\n", "", "mean TM", "med TM", "lDDT-CA", "P@L/5 LR", "P@L LR");
  std::printf("%-14s %8.3f %8.3f %8.3f %10.3f %10.3f\n", "model", s.mean_tm, s.median_tm, s.mean_lddt, s.mean_p_l5,
              s.mean_p_l);
  std::printf("%-14s %8.3f %8s %8.3f %10s %10s\n", "ideal helix", s.mean_helix_tm, "", s.mean_helix_lddt, "-", "-");
  std::printf("%zu chains of %lld-%lld residues; per chain: %s/chains.csv\n", s.chains.size(),
              (long long)opt.min_length, (long long)opt.max_length, out_dir.c_str());
  return 0;
}

}  // namespace wensu::app
