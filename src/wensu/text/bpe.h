// GPT-2's byte-level BPE, giving the ids Hugging Face's GPT2Tokenizer / GPT2TokenizerFast give for
// the same vocab.json and merges.txt (tests/data/text/bpe_sample_ids.txt, written by
// transformers through scripts/text/make_bpe_fixture.py, pins this).
//
// encode(text):
//   1. Special tokens: "<|endoftext|>" and every other vocabulary entry of the form <|...|> are
//      cut out of the text where they occur (leftmost, then longest) and map to their ids.
//   2. The rest is split by GPT-2's pre-tokenisation regex
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      (PCRE2 with Unicode properties). Bytes of invalid UTF-8, which no alternative matches,
//      form pieces of their own, so every byte is kept.
//   3. Each piece's bytes become GPT-2's printable stand-ins (bytes_to_unicode: printable
//      Latin-1 bytes stand for themselves, the others for U+0100 onwards) and are merged pairwise
//      by merges.txt rank, lowest first, leftmost first among equals. Pieces already encoded are
//      cached.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wensu/text/tokenizer.h"

namespace wensu::text {

class BpeTokenizer final : public Tokenizer {
 public:
  // From the two files; errors name the file and the line (merges.txt) or what to fix.
  static std::unique_ptr<BpeTokenizer> from_files(const std::string& vocab_json_path, const std::string& merges_txt_path);
  // From their contents; errors name them "vocab.json" and "merges.txt".
  static std::unique_ptr<BpeTokenizer> from_strings(const std::string& vocab_json, const std::string& merges_txt);
  ~BpeTokenizer() override;

  std::vector<int64_t> encode(std::string_view text) const override;
  std::string token_bytes(int64_t id) const override;
  bool is_special(int64_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(bytes_.size()); }
  int64_t eos_id() const override { return eos_id_; }
  std::string kind() const override { return "gpt2-bpe"; }
  std::vector<std::pair<std::string, std::string>> files() const override;

  // The vocabulary entry of `id` as vocab.json spells it ("Ġthe" for " the").
  const std::string& token_text(int64_t id) const;
  // -1 when `text` (spelled as in vocab.json) is not in the vocabulary.
  int64_t token_id(std::string_view text) const;
  int64_t merge_count() const { return static_cast<int64_t>(merges_.size()); }

 private:
  BpeTokenizer(std::string vocab_json, std::string merges_txt, const std::string& vocab_name, const std::string& merges_name);
  void encode_piece(std::string_view piece, std::vector<int64_t>& out) const;
  std::vector<int64_t> merge(std::string_view piece) const;

  std::string vocab_json_, merges_txt_;  // as given, for files()
  std::vector<std::string> texts_;       // id -> vocab.json spelling ("" for ids no entry uses)
  std::vector<std::string> bytes_;       // id -> the bytes it stands for
  std::vector<bool> special_;            // id -> a <|...|> token
  std::unordered_map<std::string, int64_t> ids_;  // vocab.json spelling -> id
  std::vector<std::pair<std::string, int64_t>> specials_;  // (text, id), longest first
  int64_t byte_ids_[256];                // byte -> id of its one-byte token
  struct Merge {
    int64_t rank, id;  // rank: line order in merges.txt; id: the merged token
  };
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  int64_t eos_id_ = -1;

  struct Regex;  // the compiled pre-tokenisation pattern (PCRE2 stays out of this header)
  std::unique_ptr<Regex> regex_;

  // Pieces already encoded. Bounded: cleared when it reaches kCacheLimit entries.
  static constexpr size_t kCacheLimit = 1 << 16;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

// GPT-2's bytes_to_unicode(): byte -> the code point that stands for it in vocab.json and
// merges.txt. Printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves, the other 68 to
// U+0100.. in byte order.
const std::vector<char32_t>& gpt2_byte_to_unicode();

}  // namespace wensu::text
