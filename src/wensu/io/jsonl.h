// JSON files and JSON lines (one JSON object per line, the format of a run's metrics.jsonl),
// read with one-line errors that name the file. Metrics are read at the edge (`wensu plot`) into
// plain records; nothing in the library reads metrics by string key.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace wensu::io {

struct JsonLines {
  std::vector<nlohmann::json> objects;  // one per non-blank line, in file order
  std::vector<int64_t> line_numbers;    // 1-based line of each object, for messages
  // The last line had no newline and did not parse: a record the writer was still writing
  // when the file was read (a run in progress). It is left out, not an error.
  bool truncated_tail = false;
};

// Reads every line of `path`. Blank lines are skipped. A line that is not valid JSON, or is
// valid JSON but not an object, throws a wensu::Error naming the file and the line, e.g.
//   run/metrics.jsonl:17: not a JSON object: [json.exception.parse_error.101] ...
JsonLines read_json_lines(const std::string& path);

// `text` parsed; a syntax error is a wensu::Error "WHAT: not valid JSON (...)".
nlohmann::json parse_json(const std::string& text, const std::string& what);
// The JSON document in `path` ("cannot read PATH" or "PATH: not valid JSON (...)").
nlohmann::json read_json_file(const std::string& path);

}  // namespace wensu::io
