// wensu train-fold: trains FoldNet (models/fold_net.h) on fold shards (fold/train_fold.h).
#include <boost/program_options.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/core/parallel.h"
#include "wensu/fold/train_fold.h"

namespace po = boost::program_options;

namespace wensu::app {

int cmd_train_fold(const Args& args) {
  fold::FoldTrainOptions opt;
  std::string config, train, valid, features;
  int threads = 0;
  bool quiet = false;
  po::options_description desc(
      "usage: wensu train-fold --train 'fold/train-*.h5' --valid fold/valid.h5 --lm LM.h5 --out RUN/ [options]\n\n"
      "Trains the structure heads of `wensu fold` (distogram, torsions, pLDDT; docs/fold.md) on fold\n"
      "shards written by scripts/data/make-structure-data.sh. One random crop of one chain per step;\n"
      "RUN/metrics.jsonl gets the losses of every step and validation lines (distogram loss,\n"
      "long-range top-L/5 contact precision); RUN/checkpoint.h5 is written every --ckpt-every steps,\n"
      "at the end and on Ctrl-C, and --resume continues exactly.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("config", po::value(&config), "FoldNet config JSON (models::FoldConfig; default: the built-in shape)")
      ("features", po::value(&features), "lm (protein LM embeddings, the default) or onehot (sequence only, the baseline)")
      ("lm", po::value(&opt.lm_checkpoint), "protein LM checkpoint for features = lm (e.g. data/models/esm2_small/weights.h5)")
      ("train", po::value(&train), "training shards: globs, comma-separated")
      ("valid", po::value(&valid), "validation shards")
      ("out,o", po::value(&opt.out_dir)->default_value("wensu-fold-run"), "run folder")
      ("resume", po::bool_switch(&opt.resume), "continue the run in --out")
      ("steps", po::value(&opt.steps)->default_value(0), "optimizer steps, one chain crop each (0: 2000 for a new run; with --resume the run's own, unless this is larger)")
      ("crop", po::value(&opt.crop)->default_value(opt.crop), "residues per training crop")
      ("lr", po::value(&opt.schedule.lr)->default_value(1e-3), "peak learning rate")
      ("warmup", po::value(&opt.schedule.warmup_steps)->default_value(100), "warmup steps")
      ("seed", po::value(&opt.seed)->default_value(opt.seed), "seed of initialisation and sampling")
      ("val-every", po::value(&opt.val_every)->default_value(opt.val_every), "steps between validations")
      ("val-chains", po::value(&opt.val_chains)->default_value(opt.val_chains), "validation chains")
      ("ckpt-every", po::value(&opt.ckpt_every)->default_value(opt.ckpt_every), "steps between checkpoints")
      ("stop-after", po::value(&opt.stop_after)->default_value(-1), "stop after this many steps of this call")
      ("threads", po::value(&threads)->default_value(0), "CPU threads (0 = all cores)")
      ("quiet", po::bool_switch(&quiet), "no progress bar");
  if (!parse_options(desc, args)) return 0;
  set_num_threads(threads);
  opt.progress = !quiet;
  if (!opt.resume) {
    WENSU_CHECK(!train.empty(), "train-fold: --train SHARDS is required (scripts/data/make-structure-data.sh makes them)");
    if (!config.empty()) {
      std::ifstream in(config);
      WENSU_CHECK(in.good(), "train-fold: cannot read ", config);
      opt.model = nlohmann::json::parse(in).get<models::FoldConfig>();
    }
    if (!features.empty()) opt.model.features = features;
    opt.train = split_list(train);
    opt.valid = split_list(valid);
    if (opt.steps <= 0) opt.steps = 2000;
    opt.schedule.total_steps = opt.steps;
  }
  const fold::FoldTrainResult r = fold::run_train_fold(opt);
  if (r.losses.empty())
    std::printf("nothing to do: the run in %s is at step %lld\n", opt.out_dir.c_str(), (long long)r.last_step);
  else
    std::printf("steps %lld-%lld in %.1f s: loss %.4f -> %.4f%s\n", (long long)r.first_step, (long long)r.last_step,
                r.seconds, r.losses.front(), r.losses.back(),
                r.interrupted ? " (interrupted; checkpoint saved, continue with --resume)" : "");
  if (r.val_p_l5 > 0)
    std::printf("validation: distogram loss %.4f, long-range P@L/5 %.3f\n", r.val_distogram, r.val_p_l5);
  std::printf("metrics: %s/metrics.jsonl  checkpoint: %s/checkpoint.h5\n", opt.out_dir.c_str(), opt.out_dir.c_str());
  return r.interrupted ? 130 : 0;
}

}  // namespace wensu::app
