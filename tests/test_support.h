// Shared test helpers: where tests find their fixtures and the wensu binary (the paths baked in
// at build time, unless the environment says otherwise: scripts/gpu-check.sh runs the suite on
// another machine from a packed copy), and running the binary with its output captured.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace wensu::test {

inline std::string test_data_dir() {
  const char* e = std::getenv("WENSU_TEST_DATA");
  return e ? e : WENSU_TEST_DATA;
}

inline std::string wensu_binary() {
  const char* e = std::getenv("WENSU_BINARY");
  return e ? e : WENSU_BINARY;
}

inline std::string read_text(const std::string& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `wensu ARGS` with stdout and stderr captured in files; returns the exit status.
inline int run_wensu(const std::string& args, const std::string& out, const std::string& err) {
  const std::string cmd = "'" + wensu_binary() + "' " + args + " >'" + out + "' 2>'" + err + "'";
  int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace wensu::test
