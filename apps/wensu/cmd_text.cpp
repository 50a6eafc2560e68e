// wensu text: GPT-style text models on the shared engine. `train` is the causal-LM trainer
// (wensu/train/text_train.h, the loop of protein pretraining), `generate` samples with the KV
// cache (wensu/text/generate.h), `tokenizer-train` makes a SentencePiece model and `tokenize`
// shows how a tokenizer splits text.
#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/core/parallel.h"
#include "wensu/dist/comm.h"
#include "wensu/io/jsonl.h"
#include "wensu/text/generate.h"
#include "wensu/text/sentencepiece.h"
#include "wensu/text/text_model.h"
#include "wensu/train/text_data.h"
#include "wensu/train/text_train.h"

namespace po = boost::program_options;

namespace wensu::app {
namespace {

constexpr const char* kUsage =
    "usage: wensu text COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  train            train a GPT-style model on text files (resumable, MPI data parallel)\n"
    "  generate         generate text from a model (KV cache, sampling, streaming, --interactive)\n"
    "  tokenizer-train  train a SentencePiece tokenizer on text files\n"
    "  tokenize         print the tokens of a text\n"
    "  eval             next-token loss and perplexity of a model on text files\n"
    "\n"
    "'wensu text COMMAND --help' describes each.\n";

models::GptConfig read_gpt_config(const std::string& path) {
  nlohmann::json j = io::read_json_file(path);
  if (j.is_object()) j["vocab_size"] = j.value("vocab_size", int64_t(1));  // taken from the tokenizer
  try {
    return j.get<models::GptConfig>();
  } catch (const nlohmann::json::exception& e) {
    throw Error("text train: " + path + ": " + e.what());
  }
}

int text_train(const Args& args) {
  train::TextTrainOptions opt;
  std::string config, data, val;
  int threads = 0;
  bool quiet = false;
  po::options_description desc(
      "usage: wensu text train --config MODEL.json --tokenizer TOK --data corpus.txt --out RUN/ [options]\n"
      "       mpirun -np N wensu text train ...   (data parallel; MoE configs also expert parallel)\n\n"
      "Trains the GPT-style model of MODEL.json (e.g. data/configs/gpt_small.json) to predict the\n"
      "next token of UTF-8 text files (.txt or .txt.gz; documents separated by blank lines, each\n"
      "ended by the tokenizer's end-of-text token). TOK is a SentencePiece .model (from\n"
      "`wensu text tokenizer-train`) or a GPT-2 BPE folder (vocab.json + merges.txt); it is\n"
      "stored in the checkpoint. The trainer is protein pretraining's: RUN/metrics.jsonl (plot it\n"
      "with `wensu plot`), RUN/checkpoint.h5 every --ckpt-every steps, at the end and on Ctrl-C,\n"
      "and --resume continues exactly where it stopped.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("config", po::value(&config), "model config (JSON, models::GptConfig; vocab_size comes from the tokenizer)")
      ("tokenizer", po::value(&opt.tokenizer), "SentencePiece .model or GPT-2 BPE folder")
      ("data", po::value(&data), "training text files: globs, comma-separated")
      ("val-data", po::value(&val), "validation text files (loss and perplexity every --val-every steps and at the end)")
      ("out,o", po::value(&opt.out_dir)->default_value("wensu-text"), "run folder")
      ("seq-len", po::value(&opt.seq_len)->default_value(0), "tokens per row (0 = the model's context)")
      ("batch", po::value(&opt.batch_rows)->default_value(opt.batch_rows), "rows per micro-batch over all ranks")
      ("data-streams", po::value(&opt.data_streams)->default_value(0), "data streams (0 = one per rank); one process with N sees the global batches of N ranks")
      ("val-windows", po::value(&opt.val_windows)->default_value(opt.val_windows), "windows per validation (0 = all)")
      ("threads", po::value(&threads)->default_value(0), "CPU threads per rank (0 = all cores / ranks on this node)")
      ("quiet", po::bool_switch(&quiet), "no progress bar");
  add_trainer_options(desc, opt, 1e-3, 0.1, 0.1);
  if (!parse_options(desc, args)) return 0;
  MpiScope mpi;
  set_num_threads(threads);
  opt.progress = !quiet;
  opt.adamw.beta2 = 0.95;  // GPT-2/3 recipe
  if (!opt.resume) {
    WENSU_CHECK(!config.empty(), "text train: --config MODEL.json is required (e.g. data/configs/gpt_small.json)");
    WENSU_CHECK(!data.empty(), "text train: --data is required (text files or globs, comma-separated)");
    opt.model = read_gpt_config(config);
    opt.data = split_list(data);
    opt.val_data = split_list(val);
    if (opt.steps <= 0) opt.steps = 1000;
    opt.schedule.total_steps = opt.steps;
  }
  return report_training(train::run_text_train(opt), opt.out_dir);
}

int text_generate(const Args& args) {
  text::SamplingOptions o;
  std::string model_path, prompt, weights;
  std::vector<std::string> stop;
  int threads = 0;
  bool interactive = false, no_cache = false, quiet = false;
  po::options_description desc(
      "usage: wensu text generate [--model M.h5] --prompt TEXT [options]\n"
      "       wensu text generate --interactive\n\n"
      "Continues TEXT with a text model (default: the bundled data/models/wensu-text/model.h5, a\n"
      "small model trained here on Tang and Song poetry and English text), streaming the tokens\n"
      "as they come. The same --seed gives the same text. Speed goes to stderr.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("model,m", po::value(&model_path), "text model checkpoint (wensu text train / wensu convert gpt2)")
      ("prompt,p", po::value(&prompt), "text to continue (empty: start a new document)")
      ("max-tokens,n", po::value(&o.max_tokens)->default_value(o.max_tokens), "new tokens at most")
      ("temperature,t", po::value(&o.temperature)->default_value(o.temperature), "sampling temperature (0 = greedy)")
      ("top-k", po::value(&o.top_k)->default_value(o.top_k), "keep the k most likely tokens (0 = all)")
      ("top-p", po::value(&o.top_p)->default_value(o.top_p), "keep the most likely tokens up to this probability mass (1 = all)")
      ("repeat-penalty", po::value(&o.repetition_penalty)->default_value(o.repetition_penalty), "penalty for tokens already in the context (1 = none; 1.1-1.3 is typical)")
      ("stop", po::value(&stop), "stop when this text is generated (repeatable)")
      ("ignore-eos", po::bool_switch(), "do not stop at the end-of-text token")
      ("seed", po::value(&o.seed)->default_value(o.seed), "sampling seed")
      ("interactive,i", po::bool_switch(&interactive), "read prompts from stdin, one per line, keeping the conversation's context")
      ("weights", po::value(&weights)->default_value("bf16"), "bf16: matrices stored in bfloat16 for generation (half the memory traffic, float32 arithmetic); f32: exactly as trained")
      ("no-cache", po::bool_switch(&no_cache), "recompute the whole context for every token (no KV cache; slow, for comparison)")
      ("threads", po::value(&threads)->default_value(0), "CPU threads (0 = all cores)")
      ("quiet,q", po::bool_switch(&quiet), "no speed report on stderr");
  po::variables_map vm;
  {
    po::command_line_parser parser(args);
    parser.options(desc);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
  }
  o.stop = stop;
  o.stop_at_eos = !vm["ignore-eos"].as<bool>();
  o.use_cache = !no_cache;
  WENSU_CHECK(o.max_tokens > 0, "text generate: --max-tokens must be positive");
  WENSU_CHECK(o.top_p > 0 && o.top_p <= 1, "text generate: --top-p must be in (0, 1]");
  WENSU_CHECK(o.repetition_penalty > 0, "text generate: --repeat-penalty must be positive");
  set_num_threads(threads);
  if (model_path.empty()) model_path = text::default_text_model_path();
  WENSU_CHECK(weights == "bf16" || weights == "f32", "text generate: --weights is bf16 or f32, not '", weights, "'");
  text::TextModel tm = text::load_text_model(model_path);
  if (weights == "bf16") tm.model->convert_matrices_(DType::bf16);
  if (tm.model->config().attention.kind != "dense") o.use_cache = false;  // the KV cache is for dense attention
  text::GenerationSession session(*tm.model, *tm.tokenizer, o);
  auto print = [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  auto report = [&]() {
    if (quiet) return;
    const auto& s = session.stats();
    std::fprintf(stderr, "\n[%lld prompt tokens in %.0f ms; %lld new tokens in %.2f s, %.1f tokens/s; stop: %s]\n",
                 (long long)s.prompt_tokens, 1e3 * s.prefill_s, (long long)s.new_tokens, s.decode_s, s.tokens_per_s(),
                 s.stop_reason.c_str());
  };
  if (!interactive) {
    print(prompt);
    session.generate(prompt, print);
    std::printf("\n");
    report();
    return 0;
  }
  std::fprintf(stderr, "wensu text generate: %s; type a prompt and Enter (Ctrl-D ends)\n", model_path.c_str());
  std::string line;
  for (;;) {
    std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    try {
      session.generate(line + "\n", print);
    } catch (const Error& e) {
      std::fprintf(stderr, "\n%s\n", e.what());
      break;
    }
    std::printf("\n");
    report();
  }
  return 0;
}

int text_tokenizer_train(const Args& args) {
  text::SentencePieceTrainOptions o;
  std::string data;
  bool verbose = false;
  po::options_description desc(
      "usage: wensu text tokenizer-train --data corpus.txt --out PREFIX [options]\n\n"
      "Trains a SentencePiece tokenizer (Kudo & Richardson 2018, through libsentencepiece) on UTF-8\n"
      "text files and writes PREFIX.model and PREFIX.vocab, for `wensu text train --tokenizer\n"
      "PREFIX.model`. Byte fallback is on, so any text round-trips exactly.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("data", po::value(&data), "text files, comma-separated")
      ("out,o", po::value(&o.model_prefix), "output prefix (PREFIX.model, PREFIX.vocab)")
      ("vocab-size", po::value(&o.vocab_size)->default_value(o.vocab_size), "vocabulary size")
      ("model-type", po::value(&o.model_type)->default_value(o.model_type), "unigram or bpe")
      ("character-coverage", po::value(&o.character_coverage)->default_value(o.character_coverage), "share of characters covered by the vocabulary (the rest fall back to bytes)")
      ("verbose", po::bool_switch(&verbose), "SentencePiece's own log");
  if (!parse_options(desc, args)) return 0;
  WENSU_CHECK(!data.empty(), "text tokenizer-train: --data is required");
  WENSU_CHECK(!o.model_prefix.empty(), "text tokenizer-train: --out PREFIX is required");
  o.inputs = split_list(data);
  o.verbose = verbose;
  text::train_sentencepiece(o);
  auto tok = text::load_tokenizer(o.model_prefix + ".model");
  std::printf("wrote %s.model and %s.vocab: %lld tokens\n", o.model_prefix.c_str(), o.model_prefix.c_str(),
              (long long)tok->vocab_size());
  return 0;
}

int text_tokenize(const Args& args) {
  std::string tok_path, model_path, input;
  po::options_description desc(
      "usage: wensu text tokenize (--tokenizer TOK | --model M.h5) TEXT\n\n"
      "Prints the token ids of TEXT and, below, each token's text.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("tokenizer", po::value(&tok_path), "SentencePiece .model or GPT-2 BPE folder")
      ("model,m", po::value(&model_path), "a text model checkpoint (its tokenizer)")
      ("text", po::value(&input), "the text");
  po::positional_options_description pos;
  pos.add("text", 1);
  if (!parse_options(desc, args, &pos)) return 0;
  std::unique_ptr<text::Tokenizer> tok;
  text::TextModel tm;
  if (!tok_path.empty()) {
    tok = text::load_tokenizer(tok_path);
  } else {
    tm = text::load_text_model(model_path.empty() ? text::default_text_model_path() : model_path);
    tok = std::move(tm.tokenizer);
  }
  const auto ids = tok->encode(input);
  for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%lld", i ? " " : "", (long long)ids[i]);
  std::printf("\n");
  for (size_t i = 0; i < ids.size(); ++i) {
    nlohmann::json piece = tok->token_bytes(ids[i]);  // JSON escapes make spaces and bytes visible
    std::printf("%s%s", i ? " " : "", piece.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  std::printf("\n%zu tokens, %zu bytes\n", ids.size(), input.size());
  return 0;
}

int text_eval(const Args& args) {
  std::string model_path, data;
  int64_t seq_len = 0, batch = 8;
  int threads = 0;
  po::options_description desc(
      "usage: wensu text eval [--model M.h5] --data FILES [options]\n\n"
      "Mean next-token cross-entropy and perplexity of a text model on UTF-8 text files (read as\n"
      "training reads them: documents separated by blank lines, each ended by end-of-text), over\n"
      "consecutive windows of --seq-len tokens. Prints one JSON line.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("model,m", po::value(&model_path), "text model checkpoint (default: the bundled model)")
      ("data", po::value(&data), "text files, comma-separated")
      ("seq-len", po::value(&seq_len)->default_value(seq_len), "window length (0 = the model's context)")
      ("batch", po::value(&batch)->default_value(batch), "windows per forward")
      ("threads", po::value(&threads)->default_value(threads), "CPU threads (0 = all cores)");
  if (!parse_options(desc, args)) return 0;
  WENSU_CHECK(!data.empty(), "text eval: --data is required");
  set_num_threads(threads);
  text::TextModel tm = text::load_text_model(model_path.empty() ? text::default_text_model_path() : model_path);
  if (seq_len <= 0) seq_len = tm.model->config().max_positions;
  const train::TokenCorpus corpus = train::tokenize_corpus(split_list(data), *tm.tokenizer, "evaluation text", false);
  auto [loss, windows] = train::causal_lm_loss([&](const Tensor& t) { return tm.model->forward(t); }, corpus, seq_len,
                                               batch, 0);
  nlohmann::json line = {{"model", tm.path}, {"documents", corpus.documents}, {"tokens", corpus.ids.size()},
                         {"windows", windows}, {"seq_len", seq_len}, {"loss", loss}, {"ppl", std::exp(loss)}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

}  // namespace

int cmd_text(const Args& args) {
  return run_subcommand("text", "command", kUsage, args,
                        {{"train", text_train},
                         {"generate", text_generate},
                         {"tokenizer-train", text_tokenizer_train},
                         {"tokenize", text_tokenize},
                         {"eval", text_eval}});
}

}  // namespace wensu::app
