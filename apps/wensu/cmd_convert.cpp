// wensu convert: reference weights into Wensu checkpoints. `wensu convert esm2 IN.safetensors
// OUT.h5` takes an ESM-2 exported by scripts/export_esm2.py (fair-esm names) or HF transformers'
// EsmForMaskedLM model.safetensors; the work is in wensu/models/esm2_convert.h. `wensu convert
// gpt2 DIR OUT.h5` takes a Hugging Face GPT-2 folder (wensu/models/gpt2_convert.h) with its
// tokenizer, into one self-contained text model.
#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/io/checkpoint.h"
#include "wensu/models/esm2_convert.h"
#include "wensu/models/gpt2_convert.h"
#include "wensu/text/tokenizer_store.h"

namespace po = boost::program_options;

namespace wensu::app {
namespace {

constexpr const char* kUsage =
    "usage: wensu convert MODEL IN OUT [options]\n"
    "\n"
    "models:\n"
    "  esm2 IN.safetensors OUT.h5   ESM-2 weights (fair-esm or HF transformers) to a checkpoint\n"
    "  gpt2 DIR OUT.h5              an HF GPT-2 folder (config.json, model.safetensors, tokenizer)\n"
    "\n"
    "'wensu convert esm2 --help' and 'wensu convert gpt2 --help' describe the options.\n";

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

int convert_gpt2(const Args& args) {
  po::options_description visible(
      "usage: wensu convert gpt2 DIR OUT.h5 [--tokenizer PATH]\n"
      "\n"
      "Converts a Hugging Face GPT-2 folder (GPT2LMHeadModel saved with safe_serialization:\n"
      "config.json and model.safetensors) into a Wensu text model for `wensu text generate`.\n"
      "The tokenizer (vocab.json + merges.txt) is taken from DIR, or from --tokenizer, and stored\n"
      "inside OUT.h5. Unsupported GPT-2 settings and other architectures are refused by name.\n"
      "\n"
      "options");
  visible.add_options()
      ("help,h", "show this help")
      ("tokenizer", po::value<std::string>(), "tokenizer folder or SentencePiece .model (default: DIR)");
  po::options_description all;
  all.add(visible).add_options()
      ("in", po::value<std::string>(), "input folder")
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
  WENSU_CHECK(vm.count("in") && vm.count("out"), "missing DIR or OUT (usage: wensu convert gpt2 DIR OUT.h5)");
  const std::string in = vm["in"].as<std::string>(), out = vm["out"].as<std::string>();
  const std::string tok_path = vm.count("tokenizer") ? vm["tokenizer"].as<std::string>() : in;
  WENSU_CHECK(vm.count("tokenizer") || std::filesystem::exists(std::filesystem::path(in) / "vocab.json"), in,
              " has no vocab.json: a GPT-2 model needs its tokenizer (vocab.json + merges.txt); give it with --tokenizer");
  auto model = models::load_gpt2_hf(in);
  auto tok = text::load_tokenizer(tok_path);
  WENSU_CHECK(tok->vocab_size() <= model->config().vocab_size, "the tokenizer in ", tok_path, " has ",
              tok->vocab_size(), " tokens but the model's vocabulary only ", model->config().vocab_size);
  io::Checkpoint ck = models::gpt_checkpoint(*model);
  for (const auto& [k, v] : text::tokenizer_meta(*tok)) ck.meta[k] = v;
  ck.meta["converted_from"] = in;
  io::save_checkpoint(out, ck);
  const auto& c = model->config();
  std::printf("wrote %s: GPT-2, %lld layers, embed %lld, %lld heads, context %lld, vocab %lld, %lld parameters; %s tokenizer\n",
              out.c_str(), (long long)c.num_layers, (long long)c.embed_dim, (long long)c.num_heads,
              (long long)c.max_positions, (long long)c.vocab_size, (long long)model->num_parameters(), tok->kind().c_str());
  return 0;
}

}  // namespace

int cmd_convert(const Args& args) { return run_subcommand("convert", "model", kUsage, args, {{"esm2", convert_esm2}, {"gpt2", convert_gpt2}}); }

}  // namespace wensu::app
