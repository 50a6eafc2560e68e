#include "wensu/io/bundled.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace fs = std::filesystem;

namespace wensu::io {

std::string bundled_model_path(const std::string& rel) {
  if (const char* env = std::getenv("WENSU_MODELS")) return (fs::path(env) / rel).string();
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path())
      if (fs::exists(dir / "data/models" / rel)) return (dir / "data/models" / rel).string();
#ifdef WENSU_SOURCE_DIR
  return (fs::path(WENSU_SOURCE_DIR) / "data/models" / rel).string();
#else
  return (fs::path("data/models") / rel).string();
#endif
}

}  // namespace wensu::io
