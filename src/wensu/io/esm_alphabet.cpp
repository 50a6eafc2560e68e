// The ESM-2 alphabet table, built the way fair-esm builds it (esm/data.py, Alphabet.__init__):
// prepend tokens, the standard tokens of esm/constants.py in their order, <null_k> fillers up
// to a multiple of 8, then the append tokens. Building rather than listing ids keeps the
// derivation visible; the test checks the result against fair-esm's own output.
#include "wensu/io/esm_alphabet.h"

#include <cctype>

#include "wensu/core/check.h"

namespace wensu::io {
namespace {

// esm/constants.py proteinseq_toks["toks"]: 20 standard amino acids ordered by frequency, then
// X (unknown), B (D/N), U (selenocysteine), Z (E/Q), O (pyrrolysine), and the gaps '.' and '-'.
constexpr std::string_view kStandardToks = "LAGVSERTIDPKQNFYMHWCXBUZO.-";
constexpr int64_t kResidueCount = 25;  // the leading letters of kStandardToks

}  // namespace

EsmAlphabet::EsmAlphabet() {
  tokens_ = {"<cls>", "<pad>", "<eos>", "<unk>"};  // "ESM-1b" prepend_toks
  for (char c : kStandardToks) tokens_.emplace_back(1, c);
  for (int i = 1; tokens_.size() % 8 != 0; ++i) tokens_.push_back("<null_" + std::to_string(i) + ">");
  tokens_.push_back("<mask>");  // "ESM-1b" append_toks
  WENSU_CHECK(size() == 33 && tokens_[static_cast<size_t>(mask())] == "<mask>",
              "internal error: the ESM alphabet table does not have fair-esm's layout");

  by_char_.fill(unk());
  for (size_t i = 0; i < kStandardToks.size(); ++i) {
    const char c = kStandardToks[i];
    const auto id = static_cast<int64_t>(4 + i);
    by_char_[static_cast<unsigned char>(c)] = id;
    if (std::isupper(static_cast<unsigned char>(c)))
      by_char_[static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(c)))] = id;
  }
}

const EsmAlphabet& EsmAlphabet::get() {
  static const EsmAlphabet alphabet;
  return alphabet;
}

std::vector<int64_t> EsmAlphabet::encode(std::string_view seq, bool add_cls_eos) const {
  std::vector<int64_t> ids;
  ids.reserve(seq.size() + (add_cls_eos ? 2 : 0));
  if (add_cls_eos) ids.push_back(cls());
  for (char c : seq) ids.push_back(token(c));
  if (add_cls_eos) ids.push_back(eos());
  return ids;
}

std::string EsmAlphabet::token_text(int64_t id) const {
  WENSU_CHECK(id >= 0 && id < size(), "ESM alphabet: token id ", id, " is out of range [0, ", size(),
              "); the vocabulary has ", size(), " tokens");
  return tokens_[static_cast<size_t>(id)];
}

bool EsmAlphabet::is_residue(int64_t id) const { return id >= 4 && id < 4 + kResidueCount; }

}  // namespace wensu::io
