// Text tokenizers for the text models: one interface over GPT-2's byte-level BPE (text/bpe.h,
// compatible with Hugging Face's GPT2Tokenizer) and SentencePiece (text/sentencepiece.h).
//
// Decoding is defined once, here, for every tokenizer: a token contributes the bytes
// decoded_bytes(id, at_start) gives, the bytes are joined, and any ill-formed UTF-8 is replaced
// by U+FFFD (one per maximal ill-formed subpart, as Python's errors="replace" and Rust's
// from_utf8_lossy do). decode() and Utf8Stream both use it, so streaming a sequence token by
// token gives exactly decode() of the whole sequence.
//
// Special tokens ("<|endoftext|>", "</s>") written in the text passed to encode() map to their
// ids, as Hugging Face's tokenizers do; decode() writes them back as their text, so
// decode(encode(x)) == x for any valid UTF-8 x.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wensu::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // [n tokens]. Never fails on invalid UTF-8: GPT-2 BPE keeps the bytes (decode then shows
  // U+FFFD for them); SentencePiece replaces them by U+FFFD before encoding. Safe to call from
  // several threads at once.
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  // The exact inverse of encode() for valid UTF-8 text. Throws wensu::Error for an id outside
  // [0, vocab_size()).
  virtual std::string decode(const std::vector<int64_t>& ids) const;

  // The raw bytes this token stands for (may be part of a UTF-8 sequence; a special token's
  // text; SentencePiece's "▁" as a space).
  virtual std::string token_bytes(int64_t id) const = 0;
  // The bytes `id` adds to a decoded text. `at_start`: it is the first token of the text or the
  // first after a special token, where SentencePiece drops the space of the dummy prefix its
  // encoder added. GPT-2 BPE: token_bytes(id) always.
  virtual std::string decoded_bytes(int64_t id, bool /*at_start*/) const { return token_bytes(id); }
  // "<|endoftext|>" and the other <|...|> entries of a GPT-2 vocabulary; SentencePiece's control
  // pieces (<s>, </s>, ...).
  virtual bool is_special(int64_t id) const = 0;

  virtual int64_t vocab_size() const = 0;
  // End of text: GPT-2's "<|endoftext|>", SentencePiece's </s>; -1 when the vocabulary has none.
  virtual int64_t eos_id() const = 0;
  virtual std::string kind() const = 0;  // "gpt2-bpe" or "sentencepiece"

  // The files that fully describe the tokenizer, as (file name, contents): vocab.json and
  // merges.txt, or tokenizer.model. A checkpoint embeds them; load_tokenizer_from_files()
  // rebuilds the same tokenizer from them.
  virtual std::vector<std::pair<std::string, std::string>> files() const = 0;
};

// `path` is a directory holding vocab.json and merges.txt (GPT-2 BPE), a SentencePiece .model
// file, or a directory holding tokenizer.model or exactly one *.model file. Throws wensu::Error
// saying what was found and what is expected otherwise.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

// The inverse of Tokenizer::files(): {vocab.json, merges.txt} or {one *.model}.
std::unique_ptr<Tokenizer> load_tokenizer_from_files(const std::vector<std::pair<std::string, std::string>>& files);

// Streaming detokenisation (text generation): push token ids one at a time; each push returns
// the text that is complete UTF-8 so far. The bytes of a character split across tokens are held
// until the rest arrives; bytes that can no longer become a character come out as U+FFFD.
// The concatenation of all pushes and flush() equals tokenizer.decode(ids). The tokenizer must
// outlive the stream.
class Utf8Stream {
 public:
  // at_start = false: the tokens continue a text already shown (generation after a prompt), so
  // a SentencePiece token keeps its leading space.
  explicit Utf8Stream(const Tokenizer& tokenizer, bool at_start = true) : tokenizer_(&tokenizer), at_start_(at_start) {}
  std::string push(int64_t id);
  // What is held back (an incomplete character, as U+FFFD); the stream then starts a new text.
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;  // bytes not yet returned: an incomplete UTF-8 sequence at the end
  bool at_start_ = true;
};

// UTF-8 helpers (Unicode's well-formed byte sequences, Table 3-7).
// `bytes` with every maximal ill-formed subpart replaced by U+FFFD.
std::string to_valid_utf8(std::string_view bytes);
// The length of the longest prefix of `bytes` that does not end inside a character that the
// next bytes could still complete (what a stream can pass on now).
size_t utf8_settled_prefix(std::string_view bytes);

}  // namespace wensu::text
