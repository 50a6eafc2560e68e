// ESM-2 alphabet against fair-esm: the token table and BatchConverter ids in
// tests/data/esm_alphabet.json (scripts/make_esm_alphabet_fixture.py).
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/core/check.h"
#include "wensu/io/esm_alphabet.h"

using wensu::io::EsmAlphabet;

namespace {

nlohmann::json load_fixture() {
  std::ifstream in(wensu::test::test_data_dir() + "/esm_alphabet.json");
  EXPECT_TRUE(in.good()) << "tests/data/esm_alphabet.json is missing";
  return nlohmann::json::parse(in);
}

TEST(EsmAlphabet, TableMatchesFairEsm) {
  const auto fx = load_fixture();
  const auto& a = EsmAlphabet::get();
  const auto toks = fx.at("all_toks").get<std::vector<std::string>>();
  ASSERT_EQ(a.size(), static_cast<int64_t>(toks.size()));
  for (size_t i = 0; i < toks.size(); ++i) EXPECT_EQ(a.token_text(static_cast<int64_t>(i)), toks[i]) << "id " << i;
  EXPECT_EQ(a.cls(), fx.at("cls").get<int64_t>());
  EXPECT_EQ(a.pad(), fx.at("pad").get<int64_t>());
  EXPECT_EQ(a.eos(), fx.at("eos").get<int64_t>());
  EXPECT_EQ(a.unk(), fx.at("unk").get<int64_t>());
  EXPECT_EQ(a.mask(), fx.at("mask").get<int64_t>());
  EXPECT_TRUE(fx.at("prepend_bos").get<bool>());
  EXPECT_TRUE(fx.at("append_eos").get<bool>());
  EXPECT_THROW(a.token_text(a.size()), wensu::Error);
  EXPECT_THROW(a.token_text(-1), wensu::Error);

  // Every single-character token maps back to its id; residues are the letters among them.
  int residues = 0;
  for (size_t i = 0; i < toks.size(); ++i) {
    const auto id = static_cast<int64_t>(i);
    const bool one_char = toks[i].size() == 1;
    if (one_char) {
      EXPECT_EQ(a.token(toks[i][0]), id) << toks[i];
    }
    const bool letter = one_char && std::isupper(static_cast<unsigned char>(toks[i][0]));
    EXPECT_EQ(a.is_residue(id), letter) << toks[i];
    residues += letter;
  }
  EXPECT_EQ(residues, 25);  // 20 standard + X B U Z O
}

TEST(EsmAlphabet, EncodeMatchesFairEsmBatchConverter) {
  const auto fx = load_fixture();
  const auto& a = EsmAlphabet::get();
  const auto seqs = fx.at("sequences").get<std::vector<std::string>>();
  const auto batch = fx.at("batch_tokens").get<std::vector<std::vector<int64_t>>>();
  ASSERT_EQ(seqs.size(), batch.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    SCOPED_TRACE(seqs[i]);
    const std::vector<int64_t> ids = a.encode(seqs[i]);
    ASSERT_LE(ids.size(), batch[i].size());
    // fair-esm right-pads the batch to its longest row.
    std::vector<int64_t> padded = ids;
    padded.resize(batch[i].size(), a.pad());
    EXPECT_EQ(padded, batch[i]);
    const std::vector<int64_t> bare = a.encode(seqs[i], false);
    EXPECT_EQ(bare, std::vector<int64_t>(ids.begin() + 1, ids.end() - 1));
  }
}

TEST(EsmAlphabet, LowerCaseAndUnknownCharacters) {
  const auto& a = EsmAlphabet::get();
  for (char c = 'a'; c <= 'z'; ++c) EXPECT_EQ(a.token(c), a.token(static_cast<char>(c - 32))) << c;
  for (char c : {'J', '*', '1', ' ', '<', '\0'}) EXPECT_EQ(a.token(c), a.unk()) << int(c);
  EXPECT_EQ(a.encode("").size(), 2u);
}

}  // namespace
