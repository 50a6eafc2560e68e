// wensu demo: trains a small transformer on a synthetic task and saves a checkpoint, to show
// the engine working end to end (until `wensu fold` ships its bundled model).
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "wensu/core/parallel.h"
#include "wensu/train/demo.h"

namespace po = boost::program_options;

namespace wensu::app {

int cmd_demo(const Args& args) {
  train::DemoOptions opt = train::default_demo_options();
  int threads = 0;
  po::options_description desc(
      "usage: wensu demo [options]\n\n"
      "Trains a small transformer (2 layers, d=64, rotary, causal) on random tokens to\n"
      "predict (x[i-1] + x[i-2]) mod 16 (--task sum: a plateau near ln 16 = 2.77, then a\n"
      "sudden drop towards 0 after ~300 steps) or x[i-1] (--task copy: learnt at once).\n"
      "Writes OUT/metrics.jsonl (one JSON line per step) and OUT/checkpoint.h5.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("out,o", po::value(&opt.out_dir)->default_value("wensu-demo"), "output folder")
      ("task", po::value(&opt.task)->default_value(opt.task), "toy task: sum or copy")
      ("steps", po::value(&opt.steps)->default_value(opt.steps), "optimizer steps")
      ("batch", po::value(&opt.batch)->default_value(opt.batch), "sequences per step")
      ("length", po::value(&opt.length)->default_value(opt.length), "tokens per sequence")
      ("lr", po::value(&opt.schedule.lr)->default_value(opt.schedule.lr), "peak learning rate")
      ("seed", po::value(&opt.seed)->default_value(opt.seed), "random seed")
      ("resume", po::value(&opt.resume), "continue from this checkpoint")
      ("threads", po::value(&threads)->default_value(0), "CPU threads (0 = all cores)");
  if (!parse_options(desc, args)) return 0;
  set_num_threads(threads);
  opt.schedule.total_steps = opt.steps;
  train::DemoResult r = train::run_demo(opt);
  if (r.losses.empty()) {
    std::printf("nothing to do: the checkpoint is already at step %lld\n", (long long)opt.steps);
    return 0;
  }
  std::printf("trained %zu steps in %.1f s: loss %.3f -> %.3f (chance level ln 16 = 2.773)\n", r.losses.size(),
              r.seconds, r.losses.front(), r.losses.back());
  std::printf("metrics: %s/metrics.jsonl\ncheckpoint: %s/checkpoint.h5 (inspect with: wensu ckpt info %s/checkpoint.h5)\n",
              opt.out_dir.c_str(), opt.out_dir.c_str(), opt.out_dir.c_str());
  return 0;
}

}  // namespace wensu::app
