// wensu embed: per-sequence (and per-residue) embeddings of FASTA files to HDF5, like esm-extract.
#include <boost/program_options.hpp>
#include <cstdio>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/core/parallel.h"
#include "wensu/models/esm2_tools.h"

namespace po = boost::program_options;

namespace wensu::app {

int cmd_embed(const Args& args) {
  std::string checkpoint, out;
  std::vector<std::string> files;
  models::EmbedOptions opt;
  int threads = 0;
  po::options_description desc(
      "usage: wensu embed --checkpoint CKPT.h5 FILE.fasta[.gz] ... -o OUT.h5 [--per-residue]\n\n"
      "Final-layer representations of every sequence: /mean [N, D] (mean over residues) and\n"
      "/ids [N]; with --per-residue also /per_residue/<n> [L, D]. Sequences are embedded whole;\n"
      "very long ones need a block-sparse attention config. OUT.h5 appears only when complete.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("checkpoint,c", po::value(&checkpoint), "model checkpoint (wensu pretrain / wensu convert esm2)")
      ("files", po::value(&files)->multitoken(), "FASTA files or globs")
      ("out,o", po::value(&out), "output HDF5 file")
      ("per-residue", po::bool_switch(&opt.per_residue), "also write per-residue representations")
      ("tokens-per-batch", po::value(&opt.tokens_per_batch)->default_value(opt.tokens_per_batch), "padded tokens per forward")
      ("skip-invalid", po::bool_switch(&opt.skip_invalid), "skip invalid FASTA records instead of stopping")
      ("threads", po::value(&threads)->default_value(threads), "CPU threads (0 = all cores)");
  po::positional_options_description pos;
  pos.add("files", -1);
  if (!parse_options(desc, args, &pos)) return 0;
  WENSU_CHECK(!checkpoint.empty() && !out.empty() && !files.empty(),
              "embed: give --checkpoint CKPT.h5, at least one FASTA file and -o OUT.h5");
  set_num_threads(threads);
  auto model = models::load_esm2(checkpoint);
  models::EmbedSummary s = models::embed_fasta(*model, files, out, opt);
  std::printf("embedded %lld sequences (%lld residues, dim %lld) -> %s\n", (long long)s.sequences,
              (long long)s.residues, (long long)s.dim, out.c_str());
  return 0;
}

}  // namespace wensu::app
