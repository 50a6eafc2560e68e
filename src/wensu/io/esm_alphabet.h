// The ESM-2 token alphabet: exactly fair-esm's "ESM-1b" alphabet (esm/data.py,
// Alphabet.from_architecture("ESM-1b"), used by ESM-2), so that token ids, embeddings and logits
// line up with fair-esm's models and fixtures. 33 tokens:
//   0 <cls>  1 <pad>  2 <eos>  3 <unk>
//   4..30    L A G V S E R T I D P K Q N F Y M H W C X B U Z O . -   (fair-esm's order)
//   31 <null_1> (pads the table to a multiple of 8)   32 <mask>
// A sequence encodes as <cls> residues... <eos> (prepend_bos and append_eos, as fair-esm's
// BatchConverter does); tests/data/esm_alphabet.json, written by fair-esm through
// scripts/make_esm_alphabet_fixture.py, pins the ids.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wensu::io {

class EsmAlphabet {
 public:
  // The one instance (the table is constant).
  static const EsmAlphabet& get();

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }  // 33
  int64_t cls() const { return 0; }
  int64_t pad() const { return 1; }
  int64_t eos() const { return 2; }
  int64_t unk() const { return 3; }
  int64_t mask() const { return 32; }

  // The id of one residue character. Lower-case letters map like their upper-case forms (fair-esm
  // itself only knows upper case; the FASTA reader upper-cases anyway). Anything else that is not
  // a token ('J', '*', digits, ...) gives unk().
  int64_t token(char residue) const { return by_char_[static_cast<unsigned char>(residue)]; }

  // [len(seq) + 2] with add_cls_eos: <cls> tokens <eos>; [len(seq)] without. One token per
  // character: special tokens are never parsed out of `seq`.
  std::vector<int64_t> encode(std::string_view seq, bool add_cls_eos = true) const;

  // The token's text ("<cls>", "L", ...). Throws wensu::Error for an id outside [0, size()).
  std::string token_text(int64_t id) const;

  // True for the 25 residue letters (the 20 standard amino acids and X B U Z O); false for
  // special tokens, the gap tokens '.' and '-', and ids outside the table.
  bool is_residue(int64_t id) const;

 private:
  EsmAlphabet();
  std::vector<std::string> tokens_;
  std::array<int64_t, 256> by_char_{};
};

}  // namespace wensu::io
