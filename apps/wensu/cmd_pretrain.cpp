// wensu pretrain: masked-LM pretraining of an ESM-2-style model on FASTA shards; the work is in
// src/wensu/train/pretrain.cpp. Under mpirun it runs data (and expert) parallel.
#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/core/parallel.h"
#include "wensu/dist/comm.h"
#include "wensu/io/jsonl.h"
#include "wensu/train/pretrain.h"

namespace po = boost::program_options;

namespace wensu::app {

int cmd_pretrain(const Args& args) {
  train::PretrainOptions opt;
  std::string config, data, val;
  int threads = 0;
  bool quiet = false;
  po::options_description desc(
      "usage: wensu pretrain --config MODEL.json --data 'shards/*.fasta.gz' --out RUN/ [options]\n"
      "       mpirun -np N wensu pretrain ...   (data parallel: each rank reads its own shards;\n"
      "                                          MoE configs also expert parallel)\n\n"
      "Masked-LM pretraining (ESM-2 recipe: 15% of residues, 80% <mask> / 10% random / 10% kept)\n"
      "of the model in MODEL.json (e.g. data/configs/esm2_8m.json) on FASTA or gzipped FASTA\n"
      "files. Writes RUN/metrics.jsonl (one JSON line per step: loss, ppl, lr, tokens/s; and\n"
      "validation lines; plot it with `wensu plot`) and RUN/checkpoint.h5 every --ckpt-every\n"
      "steps, at the end, and on Ctrl-C / SIGTERM. --resume continues exactly where the\n"
      "checkpoint stopped (same losses as a run that never stopped).\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("config", po::value(&config), "model config (JSON, models::Esm2Config)")
      ("data", po::value(&data), "training FASTA files: globs, comma-separated")
      ("val-data", po::value(&val), "validation FASTA files (perplexity every --val-every steps and at the end)")
      ("out,o", po::value(&opt.out_dir)->default_value("wensu-pretrain"), "run folder")
      ("max-len", po::value(&opt.max_len)->default_value(opt.max_len), "tokens per sequence (longer ones are cropped at random)")
      ("tokens-per-batch", po::value(&opt.tokens_per_batch)->default_value(opt.tokens_per_batch), "padded tokens per micro-batch over all ranks")
      ("data-streams", po::value(&opt.data_streams)->default_value(0), "shard streams: each rank reads its own shards, data-streams / ranks streams each (0 = one per rank). One process with --data-streams N sees the global batches of N ranks; a resumed run keeps its own")
      ("val-batches", po::value(&opt.val_batches)->default_value(opt.val_batches), "batches per validation (0 = all)")
      ("skip-invalid", po::bool_switch(&opt.skip_invalid), "skip invalid FASTA records (counted) instead of stopping")
      ("threads", po::value(&threads)->default_value(0), "CPU threads per rank (0 = all cores / ranks on this node)")
      ("quiet", po::bool_switch(&quiet), "no progress bar");
  add_trainer_options(desc, opt, 4e-4, 0.01, 0.0);
  if (!parse_options(desc, args)) return 0;
  MpiScope mpi;
  set_num_threads(threads);
  opt.progress = !quiet;
  if (!opt.resume) {
    WENSU_CHECK(!config.empty(), "pretrain: --config MODEL.json is required (e.g. data/configs/esm2_8m.json)");
    WENSU_CHECK(!data.empty(), "pretrain: --data is required (FASTA files or globs, comma-separated)");
    opt.model = io::read_json_file(config).get<models::Esm2Config>();
    opt.data = split_list(data);
    opt.val_data = split_list(val);
    if (opt.steps <= 0) opt.steps = 1000;
    opt.schedule.total_steps = opt.steps;
  }
  train::PretrainResult r = train::run_pretrain(opt);
  std::string skipped;
  if (opt.skip_invalid) skipped = "skipped " + std::to_string(r.skipped_records) + " invalid FASTA record(s) (--skip-invalid)";
  return report_training(r, opt.out_dir, opt.skip_invalid ? skipped.c_str() : nullptr);
}

}  // namespace wensu::app
