// wensu convert: reference weights into Wensu checkpoints. `wensu convert esm2 IN.safetensors
// OUT.h5` takes an ESM-2 exported by scripts/export_esm2.py (fair-esm names) or HF transformers'
// EsmForMaskedLM model.safetensors; the work is in wensu/models/esm2_convert.h.
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <string>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/io/checkpoint.h"
#include "wensu/models/esm2_convert.h"

namespace po = boost::program_options;

namespace wensu::app {
namespace {

constexpr const char* kUsage =
    "usage: wensu convert MODEL IN OUT [options]\n"
    "\n"
    "models:\n"
    "  esm2 IN.safetensors OUT.h5   ESM-2 weights (fair-esm or HF transformers) to a checkpoint\n"
    "\n"
    "'wensu convert esm2 --help' describes the options.\n";

int convert_esm2(const Args& args) {
  po::options_description visible(
      "usage: wensu convert esm2 IN.safetensors OUT.h5 [--config FILE]\n"
      "\n"
      "Converts ESM-2 weights into a Wensu checkpoint whose model_config is the Esm2 config.\n"
      "IN is either written by scripts/export_esm2.py (fair-esm names; the config is in its\n"
      "metadata) or an HF transformers EsmForMaskedLM model.safetensors (pass its config.json\n"
      "with --config). Every parameter must be present with the shape the config implies;\n"
      "F32, F16 and BF16 weights are stored as float32. Name tables: docs/esm2.md.\n"
      "\n"
      "options");
  visible.add_options()
      ("help,h", "show this help")
      ("config,c", po::value<std::string>(), "model config: a Wensu ESM-2 config or an HF config.json "
                                             "(default: the 'esm2_config' metadata of IN)");
  po::options_description all;
  all.add(visible).add_options()
      ("in", po::value<std::string>(), "input safetensors")
      ("out", po::value<std::string>(), "output checkpoint");
  po::positional_options_description positional;
  positional.add("in", 1).add("out", 1);

  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << visible << "\n";
    return 0;
  }
  WENSU_CHECK(vm.count("in") && vm.count("out"), "missing IN or OUT (usage: wensu convert esm2 IN.safetensors OUT.h5)");
  const std::string in = vm["in"].as<std::string>(), out = vm["out"].as<std::string>();
  const std::string config = vm.count("config") ? vm["config"].as<std::string>() : "";

  models::Esm2Import imp = models::load_esm2_safetensors(in, config);
  io::Checkpoint ck = models::esm2_checkpoint(*imp.model);
  ck.meta["converted_from"] = in;
  ck.meta["source_naming"] = models::esm2_naming_name(imp.naming);
  io::save_checkpoint(out, ck);

  const auto& c = imp.model->config();
  std::printf("wrote %s: ESM-2, %lld layers, embed %lld, %lld heads, %lld parameters (%s names; %zu tensors skipped)\n",
              out.c_str(), (long long)c.num_layers, (long long)c.embed_dim, (long long)c.attention_heads,
              (long long)imp.model->num_parameters(), models::esm2_naming_name(imp.naming), imp.skipped.size());
  return 0;
}

}  // namespace

int cmd_convert(const Args& args) { return run_subcommand("convert", "model", kUsage, args, {{"esm2", convert_esm2}}); }

}  // namespace wensu::app
