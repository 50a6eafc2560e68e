// wensu eval-ppl: masked-LM perplexity of a checkpoint on FASTA files.
#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/core/parallel.h"
#include "wensu/models/esm2_tools.h"
#include "wensu/train/pretrain.h"

namespace po = boost::program_options;

namespace wensu::app {

int cmd_eval_ppl(const Args& args) {
  std::string checkpoint;
  std::vector<std::string> files;
  int64_t max_len = 1024, tokens = 8192, batches = 0;
  uint64_t seed = 1234;
  int threads = 0;
  po::options_description desc(
      "usage: wensu eval-ppl --checkpoint CKPT.h5 FILE.fasta[.gz] ... [options]\n\n"
      "Masked-LM perplexity: 15% of the residues masked as in training (80/10/10, a fixed seed,\n"
      "so numbers are comparable between checkpoints), exp of the mean cross-entropy over the\n"
      "masked positions. Sequences longer than --max-len are cut to their first residues.\n"
      "Prints one JSON line.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("checkpoint,c", po::value(&checkpoint), "model checkpoint (wensu pretrain / wensu convert esm2)")
      ("files", po::value(&files)->multitoken(), "FASTA files or globs")
      ("max-len", po::value(&max_len)->default_value(max_len), "tokens per sequence with <cls> and <eos>")
      ("tokens-per-batch", po::value(&tokens)->default_value(tokens), "padded tokens per forward")
      ("max-batches", po::value(&batches)->default_value(batches), "stop after this many batches (0 = all)")
      ("seed", po::value(&seed)->default_value(seed), "masking seed")
      ("threads", po::value(&threads)->default_value(threads), "CPU threads (0 = all cores)");
  po::positional_options_description pos;
  pos.add("files", -1);
  if (!parse_options(desc, args, &pos)) return 0;
  WENSU_CHECK(!checkpoint.empty(), "eval-ppl: --checkpoint is required");
  WENSU_CHECK(!files.empty(), "eval-ppl: give at least one FASTA file");
  set_num_threads(threads);
  auto model = models::load_esm2(checkpoint);
  auto [loss, sequences] = train::masked_lm_loss(*model, files, max_len, tokens, batches, seed);
  std::printf("%s\n", nlohmann::json{{"checkpoint", checkpoint}, {"sequences", sequences}, {"loss", loss},
                                     {"perplexity", std::exp(loss)}}
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace wensu::app
