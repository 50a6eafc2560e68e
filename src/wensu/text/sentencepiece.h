// SentencePiece (Debian's libsentencepiece): loading a .model, encoding and decoding through the
// common Tokenizer interface, and training a model on text files.
//
// Encoding is SentencePiece's own (EncodeAsIds), run on the text between special tokens: the
// model's control pieces (<s>, </s>, ...) written in the text map to their ids, as Hugging
// Face's SentencePiece-based tokenizers do. Decoding follows SentencePiece's rule piece by piece
// ("▁" is a space; the first piece of a text, and here also the first after a special token,
// loses the space of the dummy prefix the encoder added; byte pieces <0xNN> are bytes), so
// Utf8Stream gives the same text as decode(). With the models train_sentencepiece() writes
// (identity normalisation, whitespace kept) decode(encode(x)) == x for valid UTF-8 x; models
// that normalise (NFKC, collapsing spaces) give back the normalised text.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wensu/text/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace wensu::text {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  static std::unique_ptr<SentencePieceTokenizer> from_file(const std::string& model_path);
  // `serialized`: the bytes of a .model file; `name` names it in errors.
  static std::unique_ptr<SentencePieceTokenizer> from_serialized(const std::string& serialized,
                                                                 const std::string& name = "tokenizer.model");
  ~SentencePieceTokenizer() override;

  std::vector<int64_t> encode(std::string_view text) const override;
  std::string token_bytes(int64_t id) const override;
  std::string decoded_bytes(int64_t id, bool at_start) const override;
  bool is_special(int64_t id) const override;
  int64_t vocab_size() const override;
  int64_t eos_id() const override;
  std::string kind() const override { return "sentencepiece"; }
  std::vector<std::pair<std::string, std::string>> files() const override;  // {"tokenizer.model", bytes}

  // The piece as the model spells it ("▁the", "<0xE4>", "</s>").
  std::string piece(int64_t id) const;
  bool is_byte(int64_t id) const;
  // The dummy prefix: encode() starts each text with "▁" (SentencePiece's add_dummy_prefix),
  // which decoding drops again.
  bool adds_dummy_prefix() const { return strip_leading_space_; }

 private:
  explicit SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp);
  void check_id(int64_t id) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::vector<std::pair<std::string, int64_t>> specials_;  // control pieces (text, id), longest first
  bool strip_leading_space_ = false;
};

struct SentencePieceTrainOptions {
  // UTF-8 text files. Each document (text between blank lines, as scripts/data/make-text-data.sh
  // writes them) is one training sentence with its line breaks kept, so pieces learn "\n"
  // (e.g. "。\n"); documents longer than max_sentence_length bytes are cut at line breaks.
  std::vector<std::string> inputs;
  std::string model_prefix;  // writes PREFIX.model and PREFIX.vocab (piece TAB score; "\n" written as \n)
  int64_t vocab_size = 8000;
  std::string model_type = "unigram";  // unigram | bpe | char | word
  // The share of characters the vocabulary must cover; rarer characters become byte pieces
  // when byte_fallback is set (else <unk>).
  double character_coverage = 0.9995;
  bool byte_fallback = true;
  int64_t max_sentence_length = 16384;  // bytes
  // Pieces that are never split, e.g. "<|endoftext|>" (kept as text by encode and decode).
  std::vector<std::string> user_defined_symbols;
  bool split_digits = false;  // every digit its own piece
  // Determinism: the same inputs and options give the same model bytes. SentencePiece's EM sums
  // expected counts per thread, so `threads` is part of the recipe (a different count gives
  // slightly different scores); `seed` seeds SentencePiece's generator (used when sampling).
  uint64_t seed = 20240601;
  int threads = 4;
  bool verbose = false;  // SentencePiece's progress log on stderr; quiet (errors only) otherwise
};

// Trains a SentencePiece model (identity normalisation, whitespace kept as written, dummy prefix,
// ids <unk> 0, <s> 1, </s> 2) and writes PREFIX.model and PREFIX.vocab. Throws wensu::Error
// for missing inputs, inputs without text ("... has no text"), an impossible vocabulary size
// (SentencePiece's message, with what to change), or an unwritable prefix.
void train_sentencepiece(const SentencePieceTrainOptions& options);

}  // namespace wensu::text
