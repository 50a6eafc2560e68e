// The `wensu` subcommands. Each lives in its own file and parses its own options; the work
// itself is in the library.
#pragma once
#include <string>
#include <vector>

namespace wensu::app {

using Args = std::vector<std::string>;  // arguments after the subcommand name

int cmd_ckpt(const Args& args);
int cmd_bench(const Args& args);
int cmd_demo(const Args& args);

}  // namespace wensu::app
