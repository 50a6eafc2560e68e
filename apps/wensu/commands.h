// The `wensu` subcommands. Each lives in its own file and parses its own options; the work
// itself is in the library.
#pragma once
#include <boost/program_options.hpp>
#include "wensu/train/lm_trainer.h"
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace wensu::app {

using Args = std::vector<std::string>;  // arguments after the subcommand name

int cmd_ckpt(const Args& args);
int cmd_convert(const Args& args);
int cmd_bench(const Args& args);
int cmd_pretrain(const Args& args);
int cmd_eval_ppl(const Args& args);
int cmd_embed(const Args& args);
int cmd_score(const Args& args);
int cmd_train_fold(const Args& args);
int cmd_fold(const Args& args);
int cmd_structdb(const Args& args);
int cmd_eval_fold(const Args& args);
int cmd_demo(const Args& args);
int cmd_plot(const Args& args);
int cmd_text(const Args& args);
int cmd_mm(const Args& args);

// Parses args into the variables bound in `desc` (which must define --help). Returns false
// after printing the help when --help was given: the command then exits 0.
// For commands made of subcommands (`wensu ckpt info`, `wensu convert esm2`): the usage text
// on stderr with exit 2 when no subcommand is given, on stdout with exit 0 for --help, else the
// named subcommand on the remaining arguments ("unknown <what>" and exit 2 for anything else).
int run_subcommand(const char* command, const char* what, const char* usage, const Args& args,
                   const std::vector<std::pair<std::string, int (*)(const Args&)>>& subcommands);

// "a,b,,c" -> {"a", "b", "c"}: comma-separated lists of files or globs (--data, --train).
std::vector<std::string> split_list(const std::string& s);

// With `positional`, bare arguments fill the options it names (e.g. input files).
bool parse_options(const boost::program_options::options_description& desc, const Args& args,
                   const boost::program_options::positional_options_description* positional = nullptr);

// The options of the shared training loop (wensu pretrain, wensu text train), bound to the
// fields of the same names in the trainer's options `o`; the defaults that differ are given.
template <class TrainerOptions>
void add_trainer_options(boost::program_options::options_description& desc, TrainerOptions& o, double lr,
                         double weight_decay, double min_lr_ratio) {
  namespace po = boost::program_options;
  auto text = [](double v) { return (std::ostringstream() << v).str(); };  // 0.1, not 0.10000000000000001
  desc.add_options()
      ("resume", po::bool_switch(&o.resume), "continue the run in --out from its checkpoint (its settings win)")
      ("steps", po::value(&o.steps)->default_value(0), "optimizer steps (0: 1000 for a new run; with --resume the run's own, unless this is larger)")
      ("accumulate", po::value(&o.accumulate)->default_value(o.accumulate), "micro-batches per step")
      ("lr", po::value(&o.schedule.lr)->default_value(lr, text(lr)), "peak learning rate")
      ("warmup", po::value(&o.schedule.warmup_steps)->default_value(100), "warmup steps")
      ("decay", po::value(&o.schedule.decay)->default_value("cosine"), "cosine, linear or constant")
      ("min-lr-ratio", po::value(&o.schedule.min_lr_ratio)->default_value(min_lr_ratio, text(min_lr_ratio)), "final learning rate as a fraction of --lr")
      ("weight-decay", po::value(&o.adamw.weight_decay)->default_value(weight_decay, text(weight_decay)), "AdamW weight decay (matrices only)")
      ("clip", po::value(&o.clip_norm)->default_value(o.clip_norm), "gradient norm clip (0 = off)")
      ("seed", po::value(&o.seed)->default_value(o.seed), "seed of initialisation and data order")
      ("val-every", po::value(&o.val_every)->default_value(o.val_every), "steps between validations (0 = at the end)")
      ("ckpt-every", po::value(&o.ckpt_every)->default_value(o.ckpt_every), "steps between checkpoints")
      ("stop-after", po::value(&o.stop_after)->default_value(-1), "stop after this many steps of this call (checkpoint kept)");
  if constexpr (requires { o.expert_parallel; })  // trainers of models with MoE layers
    desc.add_options()("expert-parallel", po::value(&o.expert_parallel)->default_value(0), "ranks per expert group (0 = all ranks for MoE models)");
}

// What a finished (or interrupted) training run prints on rank 0: steps, time, tokens/s, first
// and last loss, validation, where the metrics and checkpoint are. Returns the exit status:
// 130 when interrupted (a checkpoint was saved), else 0.
int report_training(const train::TrainResult& r, const std::string& out_dir, const char* extra_line = nullptr);

// Starts MPI for the lifetime of a training command when an MPI launcher (mpirun: Open MPI,
// MPICH/PMI, PMIx) started this process; otherwise the world is this one process.
struct MpiScope {
  MpiScope();
  ~MpiScope();
  MpiScope(const MpiScope&) = delete;
  MpiScope& operator=(const MpiScope&) = delete;
  bool on;
};

}  // namespace wensu::app
