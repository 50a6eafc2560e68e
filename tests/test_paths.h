// Where tests find their fixtures and the wensu binary: the paths baked in at build time,
// unless the environment says otherwise (scripts/gpu-check.sh runs the suite on another
// machine, from a packed copy).
#pragma once
#include <cstdlib>
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
}  // namespace wensu::test
