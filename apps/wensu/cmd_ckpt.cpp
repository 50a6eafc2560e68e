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

}  // namespace

int cmd_ckpt(const Args& args) { return run_subcommand("ckpt", "subcommand", kUsage, args, {{"info", ckpt_info}}); }

}  // namespace wensu::app
