// A tokenizer for tests: bytes as tokens, 256 = end of text. Enough to test data and generation
// paths without a trained tokenizer (and it fits small fixture vocabularies).
#pragma once
#include "wensu/text/tokenizer.h"

namespace wensu::test {

class ByteTokenizer : public text::Tokenizer {
 public:
  std::vector<int64_t> encode(std::string_view s) const override {
    std::vector<int64_t> ids;
    for (unsigned char c : s) ids.push_back(c);
    return ids;
  }
  std::string token_bytes(int64_t id) const override { return id < 256 ? std::string(1, char(id)) : ""; }
  bool is_special(int64_t id) const override { return id >= 256; }
  int64_t vocab_size() const override { return 257; }
  int64_t eos_id() const override { return 256; }
  std::string kind() const override { return "bytes"; }
  std::vector<std::pair<std::string, std::string>> files() const override { return {}; }
};

}  // namespace wensu::test
