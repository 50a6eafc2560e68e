// wensu: one binary, one subcommand per job.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <string>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/dist/comm.h"
#include "wensu/version.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  std::function<int(const wensu::app::Args&)> run;
};

const Command kCommands[] = {
    {"demo", "train a tiny transformer on a toy task and save a checkpoint", wensu::app::cmd_demo},
    {"ckpt", "inspect checkpoints (wensu ckpt info FILE)", wensu::app::cmd_ckpt},
    {"convert", "convert reference weights to a checkpoint (wensu convert esm2 IN OUT)", wensu::app::cmd_convert},
    {"plot", "draw training curves from a run's metrics.jsonl (PNG, SVG, PDF)", wensu::app::cmd_plot},
    {"bench", "benchmarks: wensu bench layer | attention | moe | pretrain", wensu::app::cmd_bench},
    {"pretrain", "masked-LM pretraining of a protein language model on FASTA shards", wensu::app::cmd_pretrain},
    {"eval-ppl", "masked-LM perplexity of a checkpoint on FASTA files", wensu::app::cmd_eval_ppl},
    {"embed", "per-sequence / per-residue embeddings of FASTA files to HDF5", wensu::app::cmd_embed},
    {"fold", "predict structures for FASTA records: PDB, mmCIF, pLDDT, contact map, distogram", wensu::app::cmd_fold},
    {"train-fold", "train the structure heads of wensu fold on fold shards", wensu::app::cmd_train_fold},
    {"eval-fold", "evaluate a fold model on the test split (TM-score, lDDT-CA, contact precision)", wensu::app::cmd_eval_fold},
    {"structdb", "ProMod3 structure database: info, FASTA, fold training shards", wensu::app::cmd_structdb},
    {"text", "text models: train, generate, tokenizer-train, tokenize (GPT-style, same engine)", wensu::app::cmd_text},
    {"mm", "image-text models: train, eval, search, embed (two-tower, contrastive)", wensu::app::cmd_mm},
    {"score", "compare a predicted structure with its reference (TM-score, RMSD, GDT-TS, lDDT-CA)", wensu::app::cmd_score},
};

void usage(std::FILE* out) {
  std::fprintf(out, "wensu %s: protein sequence modelling engine\n\nusage: wensu COMMAND [options]\n\ncommands:\n",
               WENSU_VERSION);
  for (auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "\n'wensu COMMAND --help' describes each command.\n");
}

// OpenMP threads that finish a parallel region spin before sleeping; libgomp's default spin
// (300k iterations) made the transformer layer 15% slower on 2 threads here (the waiting core
// burns the power budget the working one needs between regions; measured 219-241 ms vs
// 185-187 ms per forward with GOMP_SPINCOUNT=1000). libgomp reads the setting when it loads,
// before main, so wensu sets it and re-executes itself once. A user's own OMP_WAIT_POLICY or
// GOMP_SPINCOUNT is left alone.
void choose_openmp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "1000", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run with the default
}

}  // namespace

int wensu::app::run_subcommand(const char* command, const char* what, const char* usage, const Args& args,
                               const std::vector<std::pair<std::string, int (*)(const Args&)>>& subcommands) {
  if (args.empty()) {
    std::fputs(usage, stderr);
    return 2;
  }
  const std::string& sub = args[0];
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::fputs(usage, stdout);
    return 0;
  }
  const Args rest(args.begin() + 1, args.end());
  for (const auto& [name, run] : subcommands)
    if (sub == name) return run(rest);
  std::fprintf(stderr, "wensu %s: unknown %s '%s'\n\n%s", command, what, sub.c_str(), usage);
  return 2;
}

std::vector<std::string> wensu::app::split_list(const std::string& s) {
  std::vector<std::string> out;
  for (size_t a = 0; a <= s.size();) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

bool wensu::app::parse_options(const boost::program_options::options_description& desc, const Args& args,
                               const boost::program_options::positional_options_description* positional) {
  namespace po = boost::program_options;
  po::variables_map vm;
  po::command_line_parser parser(args);
  parser.options(desc);
  if (positional) parser.positional(*positional);
  po::store(parser.run(), vm);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

namespace {
// True when an MPI launcher started this process (Open MPI, MPICH/PMI, PMIx).
bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}
}  // namespace

int wensu::app::report_training(const wensu::train::TrainResult& r, const std::string& out_dir, const char* extra_line) {
  if (wensu::dist::Communicator::world().rank() != 0) return r.interrupted ? 130 : 0;
  if (r.losses.empty())
    std::printf("nothing to do: the run in %s is at step %lld\n", out_dir.c_str(), (long long)r.last_step);
  else
    std::printf("steps %lld-%lld in %.1f s (%.0f %s/s): loss %.4f -> %.4f%s\n", (long long)r.first_step,
                (long long)r.last_step, r.seconds, r.tokens_per_s, r.unit.c_str(), r.losses.front(), r.losses.back(),
                r.interrupted ? " (interrupted; checkpoint saved, continue with --resume)" : "");
  if (extra_line) std::printf("%s\n", extra_line);
  if (r.val_ppl > 0) {
    std::printf("validation: loss %.4f", r.val_loss);
    if (r.perplexity) std::printf(", perplexity %.3f", r.val_ppl);
    for (const auto& [k, v] : r.val_metrics) std::printf(", %s %.4g", k.c_str(), v);
    std::printf("\n");
  }
  std::printf("metrics: %s/metrics.jsonl  checkpoint: %s/checkpoint.h5\n", out_dir.c_str(), out_dir.c_str());
  return r.interrupted ? 130 : 0;
}

wensu::app::MpiScope::MpiScope() : on(launched_by_mpirun()) {
  if (on) wensu::dist::init(nullptr, nullptr);
}

wensu::app::MpiScope::~MpiScope() {
  if (on) wensu::dist::finalize();
}

int main(int argc, char** argv) {
  choose_openmp_spin(argv);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("wensu %s\n", WENSU_VERSION);
    return 0;
  }
  wensu::app::Args args(argv + 2, argv + argc);
  for (auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "wensu %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "wensu: unknown command '%s'\n\n", name.c_str());
  usage(stderr);
  return 2;
}
