// wensu bench: benchmarks as a program, never as tests. Each case (apps/wensu/bench/) prints
// one JSON line with medians; where a peer exists (PyTorch CPU via scripts/bench/) it runs in the
// same call so the ratio compares like with like on the same machine state.
#include <cstdio>
#include <string>

#include "bench/cases.h"
#include "commands.h"

namespace wensu::app {

int cmd_bench(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf("usage: wensu bench CASE [options]\n\ncases:\n  layer       one pre-LN transformer layer against PyTorch CPU\n"
                "  attention   block-sparse attention at long sequence lengths\n"
                "  moe         a mixture-of-experts layer against the loop-over-experts PyTorch layer\n"
                "  pretrain    masked-LM training steps of an ESM-2 shape against fair-esm in PyTorch\n"
                "  generate    text generation with the KV cache against transformers (GPT-2 shape)\n\n"
                "'wensu bench CASE --help' describes each case.\n");
    return args.empty() ? 2 : 0;
  }
  Args rest(args.begin() + 1, args.end());
  if (args[0] == "layer") return bench::bench_layer(rest);
  if (args[0] == "attention") return bench::bench_attention(rest);
  if (args[0] == "moe") return bench::bench_moe(rest);
  if (args[0] == "pretrain") return bench::bench_pretrain(rest);
  if (args[0] == "generate") return bench::bench_generate(rest);
  std::fprintf(stderr, "wensu bench: unknown case '%s' (available: layer, attention, moe, pretrain, generate)\n", args[0].c_str());
  return 2;
}

}  // namespace wensu::app
