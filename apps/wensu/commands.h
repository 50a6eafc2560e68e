// The `wensu` subcommands. Each lives in its own file and parses its own options; the work
// itself is in the library.
#pragma once
#include <boost/program_options.hpp>
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
