#include "wensu/io/jsonl.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "wensu/core/check.h"

namespace wensu::io {

JsonLines read_json_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  WENSU_CHECK(in.is_open(), "cannot open ", path, ": ", std::strerror(errno));
  JsonLines out;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    const bool last_without_newline = in.eof();  // getline hit the end before a '\n'
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      if (last_without_newline) {
        out.truncated_tail = true;
        break;
      }
      // The parser counts lines within the one line it saw; keep its column and reason.
      std::string why = e.what();
      if (auto at = why.find("column "); at != std::string::npos) why = "at " + why.substr(at);
      WENSU_CHECK(false, path, ":", number, ": not valid JSON ", why);
    }
    WENSU_CHECK(j.is_object(), path, ":", number, ": expected a JSON object ({...}), got a JSON ", j.type_name());
    out.objects.push_back(std::move(j));
    out.line_numbers.push_back(number);
  }
  WENSU_CHECK(!in.bad(), "cannot read ", path, ": ", std::strerror(errno));
  return out;
}

nlohmann::json parse_json(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat(what, ": not valid JSON (", e.what(), ")"));
  }
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  WENSU_CHECK(in, "cannot read ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json(ss.str(), path);
}

}  // namespace wensu::io
