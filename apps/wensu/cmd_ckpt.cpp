// wensu ckpt: checkpoint tools. `wensu ckpt info FILE [--tensors]` shows what a checkpoint holds;
// the reading and formatting live in wensu/io/checkpoint.h.
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <string>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/io/checkpoint.h"

namespace po = boost::program_options;

namespace wensu::app {
namespace {

constexpr const char* kUsage =
    "usage: wensu ckpt SUBCOMMAND [options]\n"
    "\n"
    "subcommands:\n"
    "  info FILE [--tensors]   show a checkpoint's step, configs, tensors and RNG states\n"
    "  weights IN OUT          copy only the parameters, configs and meta (no optimizer, RNG\n"
    "                          or data state): a model to ship or evaluate, a third the size\n"
    "\n"
    "'wensu ckpt info --help' describes the options.\n";

int ckpt_info(const Args& args) {
  po::options_description visible(
      "usage: wensu ckpt info FILE [options]\n"
      "\n"
      "Shows the format version, step, meta attributes, tensor counts and sizes (params,\n"
      "optimizer, extra), RNG states and the model and train configs of a checkpoint.\n"
      "Only metadata is read, so large checkpoints are quick to inspect.\n"
      "\n"
      "options");
  visible.add_options()
      ("help,h", "show this help")
      ("tensors,t", "also list every tensor: name, dtype, shape");
  po::options_description all;
  all.add(visible).add_options()("file", po::value<std::string>(), "checkpoint file");
  po::positional_options_description positional;
  positional.add("file", 1);

  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << visible;
    return 0;
  }
  WENSU_CHECK(vm.count("file"), "missing FILE (usage: wensu ckpt info FILE [--tensors])");
  const std::string file = vm["file"].as<std::string>();
  std::cout << io::describe_checkpoint(io::inspect_checkpoint(file), vm.count("tensors") > 0);
  return 0;
}

int ckpt_weights(const Args& args) {
  std::string in, out, dtype;
  po::options_description desc(
      "usage: wensu ckpt weights IN.h5 OUT.h5 [--dtype bf16]\n\n"
      "Writes OUT.h5 (atomically) with IN.h5's parameters, step, configs and meta but without\n"
      "optimizer state, RNG states or extra tensors: what eval-ppl, embed and fine-tuning need,\n"
      "not what --resume needs. --dtype bf16 stores the matrices (parameters of 2 or more dims)\n"
      "in bfloat16, half the size; loading widens them back to float32.\n\noptions");
  desc.add_options()("help,h", "show this help")("in", po::value(&in), "checkpoint to read")(
      "out", po::value(&out), "weights-only checkpoint to write")(
      "dtype", po::value(&dtype)->default_value("f32"), "f32 (as stored) or bf16 (matrices in bfloat16)");
  po::positional_options_description pos;
  pos.add("in", 1).add("out", 1);
  if (!parse_options(desc, args, &pos)) return 0;
  WENSU_CHECK(!in.empty() && !out.empty(), "usage: wensu ckpt weights IN.h5 OUT.h5");
  const io::Checkpoint ck = io::load_checkpoint(in);
  io::Checkpoint w;
  w.step = ck.step;
  w.model_config = ck.model_config;
  w.train_config = ck.train_config;
  WENSU_CHECK(dtype == "f32" || dtype == "bf16", "ckpt weights: --dtype is f32 or bf16, not '", dtype, "'");
  w.params = ck.params;
  if (dtype == "bf16")
    for (auto& p : w.params)
      if (p.tensor.dim() >= 2 && is_floating(p.tensor.dtype())) p.tensor = p.tensor.to(DType::bf16);
  w.meta = ck.meta;
  w.meta["weights_of"] = in;
  io::save_checkpoint(out, w);
  std::printf("wrote %s: %zu parameter tensors of %s (step %lld)\n", out.c_str(), w.params.size(), in.c_str(),
              (long long)w.step);
  return 0;
}

}  // namespace

int cmd_ckpt(const Args& args) { return run_subcommand("ckpt", "subcommand", kUsage, args, {{"info", ckpt_info}, {"weights", ckpt_weights}}); }

}  // namespace wensu::app
