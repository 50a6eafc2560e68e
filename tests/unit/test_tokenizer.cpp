// Text tokenizers (src/wensu/text/). GPT-2 BPE against Hugging Face: tests/data/text/ holds a
// vocabulary, 2,400 sample lines and the ids transformers.GPT2TokenizerFast gives them
// (scripts/text/make_bpe_fixture.py). SentencePiece against the library's own encoder and
// decoder, on a tiny model trained here. Streaming (Utf8Stream) against decode() everywhere.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/core/check.h"
#include "wensu/text/bpe.h"
#include "wensu/text/sentencepiece.h"
#include "wensu/text/tokenizer.h"

namespace fs = std::filesystem;
using wensu::text::BpeTokenizer;
using wensu::text::SentencePieceTokenizer;
using wensu::text::Tokenizer;
using wensu::text::Utf8Stream;

namespace {

std::string text_dir() { return wensu::test::test_data_dir() + "/text"; }

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::vector<int64_t> parse_ids(const std::string& line) {
  std::vector<int64_t> ids;
  std::istringstream in(line);
  for (int64_t id; in >> id;) ids.push_back(id);
  return ids;
}

std::string streamed(const Tokenizer& t, const std::vector<int64_t>& ids) {
  Utf8Stream stream(t);
  std::string out;
  for (int64_t id : ids) out += stream.push(id);
  return out + stream.flush();
}

std::string concat_bytes(const Tokenizer& t, const std::vector<int64_t>& ids) {
  std::string out;
  for (int64_t id : ids) out += t.token_bytes(id);
  return out;
}

using wensu::test::error_of;

uint32_t fresh_seed() { return std::random_device{}(); }

void append_utf8(std::string& s, char32_t c) {
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6)), s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12)), s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18)), s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F)), s += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Random valid UTF-8 drawn from ASCII, whitespace, Latin, Greek, combining marks, CJK, emoji and
// the "<|" of special tokens.
std::string random_text(std::mt19937& rng, int n) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E}, {0x09, 0x0A}, {0xA0, 0x17F}, {0x300, 0x36F}, {0x391, 0x3C9},
      {0x3000, 0x303F}, {0x4E00, 0x9FFF}, {0xFF01, 0xFF5E}, {0x1F300, 0x1F64F}, {0x20000, 0x2A6DF}};
  std::string s;
  for (int i = 0; i < n; ++i) {
    const auto& r = ranges[rng() % ranges.size()];
    char32_t c = r.first + static_cast<char32_t>(rng() % (r.second - r.first + 1));
    if (rng() % 40 == 0) s += rng() % 2 ? "<|" : "<|endoftext|>";
    append_utf8(s, c);
  }
  return s;
}

// A scratch directory per test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("wensu_tok_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

const BpeTokenizer& fixture_bpe() {
  static const auto t = BpeTokenizer::from_files(text_dir() + "/bpe/vocab.json", text_dir() + "/bpe/merges.txt");
  return *t;
}

// --- UTF-8 ----------------------------------------------------------------------------------

// A tokenizer whose token i is the byte i: Utf8Stream and decode over arbitrary bytes.
class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int64_t> encode(std::string_view text) const override {
    std::vector<int64_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string token_bytes(int64_t id) const override { return std::string(1, static_cast<char>(id)); }
  bool is_special(int64_t) const override { return false; }
  int64_t vocab_size() const override { return 256; }
  int64_t eos_id() const override { return -1; }
  std::string kind() const override { return "bytes"; }
  std::vector<std::pair<std::string, std::string>> files() const override { return {}; }
};

TEST(Utf8, ReplacesMaximalIllFormedSubparts) {
  using wensu::text::to_valid_utf8;
  const std::string r = "\xEF\xBF\xBD";
  // Unicode's examples (and Python's bytes.decode(errors="replace")): a truncated sequence is
  // one replacement, a byte that cannot continue it starts anew.
  EXPECT_EQ(to_valid_utf8("a\xE4\xB8" "b"), "a" + r + "b");
  EXPECT_EQ(to_valid_utf8("\xF0\x80\x80"), r + r + r);   // F0 needs 90..BF next
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), r + r + r);   // a surrogate
  EXPECT_EQ(to_valid_utf8("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(to_valid_utf8("\xC0\xAF\xFF"), r + r + r);
  EXPECT_EQ(to_valid_utf8("\xE4\xB8\xAD\xF0\x9F\x98"), "\xE4\xB8\xAD" + r);
  EXPECT_EQ(wensu::text::utf8_settled_prefix("ab\xE4\xB8"), 2u);
  EXPECT_EQ(wensu::text::utf8_settled_prefix("ab\xE4\x41"), 4u);
}

TEST(Utf8, StreamEqualsDecodeOnRandomBytes) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  ByteTokenizer t;
  for (int trial = 0; trial < 300; ++trial) {
    // Mostly valid text with some bytes flipped, so that every kind of ill-formed run occurs.
    std::string bytes = random_text(rng, 1 + static_cast<int>(rng() % 30));
    for (auto& b : bytes)
      if (rng() % 8 == 0) b = static_cast<char>(rng());
    const auto ids = t.encode(bytes);
    const std::string whole = t.decode(ids);
    EXPECT_EQ(streamed(t, ids), whole);
    EXPECT_EQ(wensu::text::to_valid_utf8(whole), whole);  // the output is valid UTF-8
  }
}

// --- GPT-2 BPE ------------------------------------------------------------------------------

TEST(GptBpe, MatchesHuggingFaceOnEverySampleLine) {
  const auto& t = fixture_bpe();
  const auto lines = split_lines(wensu::test::read_text(text_dir() + "/bpe_sample.txt"));
  const auto refs = split_lines(wensu::test::read_text(text_dir() + "/bpe_sample_ids.txt"));
  ASSERT_GE(lines.size(), 2000u) << "tests/data/text/bpe_sample.txt is missing or short";
  ASSERT_EQ(lines.size(), refs.size());
  int bad = 0;
  for (size_t i = 0; i < lines.size() && bad < 5; ++i) {
    const auto ids = t.encode(lines[i]);
    const auto ref = parse_ids(refs[i]);
    if (ids != ref) ++bad;
    EXPECT_EQ(ids, ref) << "sample line " << i + 1 << ": " << lines[i];
    EXPECT_EQ(t.decode(ref), lines[i]) << "line " << i + 1;
    EXPECT_EQ(streamed(t, ref), lines[i]) << "line " << i + 1;
  }
}

TEST(GptBpe, MatchesHuggingFaceOnMultiLineTexts) {
  const auto& t = fixture_bpe();
  std::ifstream in(text_dir() + "/bpe_multiline.json");
  ASSERT_TRUE(in.good()) << "tests/data/text/bpe_multiline.json is missing";
  const auto cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 5u);
  for (const auto& c : cases) {
    const auto text = c.at("text").get<std::string>();
    const auto ref = c.at("ids").get<std::vector<int64_t>>();
    EXPECT_EQ(t.encode(text), ref) << text;
    EXPECT_EQ(t.decode(ref), text);
    EXPECT_EQ(streamed(t, ref), text);
  }
}

TEST(GptBpe, SpecialTokensAndProperties) {
  const auto& t = fixture_bpe();
  EXPECT_EQ(t.kind(), "gpt2-bpe");
  EXPECT_EQ(t.vocab_size(), 3000);
  const int64_t eot = t.token_id("<|endoftext|>");
  ASSERT_GE(eot, 0);
  EXPECT_EQ(t.eos_id(), eot);
  EXPECT_TRUE(t.is_special(eot));
  EXPECT_FALSE(t.is_special(t.token_id("a")));
  EXPECT_EQ(t.token_bytes(eot), "<|endoftext|>");
  EXPECT_EQ(t.encode("<|endoftext|>"), std::vector<int64_t>{eot});
  EXPECT_EQ(t.token_bytes(t.token_id("\xC4\xA0")), " ");  // "Ġ" stands for the space byte
  const auto ids = t.encode("a<|endoftext|>b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], eot);
  EXPECT_THROW(t.token_bytes(t.vocab_size()), wensu::Error);
  EXPECT_THROW(t.decode({-1}), wensu::Error);
  EXPECT_EQ(wensu::text::gpt2_byte_to_unicode()[' '], U'\u0120');
}

TEST(GptBpe, RoundTripsRandomTextAndKeepsInvalidBytes) {
  const auto& t = fixture_bpe();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string text = random_text(rng, 1 + static_cast<int>(rng() % 60));
    const auto ids = t.encode(text);
    EXPECT_EQ(t.decode(ids), text);
    EXPECT_EQ(streamed(t, ids), text);
    // Invalid UTF-8 does not throw; the bytes survive in the ids and decode shows U+FFFD.
    std::string broken = text;
    for (auto& b : broken)
      if (rng() % 6 == 0) b = static_cast<char>(rng());
    std::vector<int64_t> bids;
    ASSERT_NO_THROW(bids = t.encode(broken));
    EXPECT_EQ(concat_bytes(t, bids), broken);
    EXPECT_EQ(t.decode(bids), wensu::text::to_valid_utf8(broken));
  }
}

TEST(GptBpe, FilesRebuildTheSameTokenizer) {
  const auto& t = fixture_bpe();
  const auto files = t.files();
  ASSERT_EQ(files.size(), 2u);
  const auto copy = wensu::text::load_tokenizer_from_files(files);
  const auto dir = wensu::text::load_tokenizer(text_dir() + "/bpe");
  EXPECT_EQ(copy->kind(), "gpt2-bpe");
  const auto lines = split_lines(wensu::test::read_text(text_dir() + "/bpe_sample.txt"));
  for (size_t i = 0; i < lines.size(); i += 7) {
    EXPECT_EQ(copy->encode(lines[i]), t.encode(lines[i]));
    EXPECT_EQ(dir->encode(lines[i]), t.encode(lines[i]));
  }
}

TEST(GptBpe, ClearErrorsForMissingAndCorruptFiles) {
  TempDir tmp;
  const std::string vocab = wensu::test::read_text(text_dir() + "/bpe/vocab.json");
  const std::string merges = wensu::test::read_text(text_dir() + "/bpe/merges.txt");
  auto from = [](const std::string& v, const std::string& m) {
    return [v, m] { BpeTokenizer::from_strings(v, m); };
  };
  EXPECT_NE(error_of([&] { BpeTokenizer::from_files(tmp / "vocab.json", tmp / "merges.txt"); })
                .find(tmp / "vocab.json"), std::string::npos);
  EXPECT_NE(error_of(from(vocab.substr(0, vocab.size() / 2), merges)).find("vocab.json is not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(from("[1, 2]", merges)).find("JSON object"), std::string::npos);
  EXPECT_NE(error_of(from(R"({"a": "x"})", merges)).find("non-negative integers"), std::string::npos);
  EXPECT_NE(error_of(from(R"({"a": 0, "b": 0})", merges)).find("used by two tokens"), std::string::npos);
  EXPECT_NE(error_of(from(R"({"a": 0, "b": 99999999})", merges)).find("ids run up to 99999999"), std::string::npos);
  EXPECT_NE(error_of(from(R"({"a": 0, "b": 1})", merges)).find("no token for byte 0x00"), std::string::npos);
  EXPECT_NE(error_of(from(vocab, "#version: 0.2\nĠ Ġ\nâ Ķ x\n")).find("merges.txt line 3: expected two tokens"),
            std::string::npos);
  EXPECT_NE(error_of(from(vocab, "#version: 0.2\nĠ zzzzzz\n")).find("merges.txt line 2: token \"zzzzzz\" is not in vocab.json"),
            std::string::npos);
  EXPECT_NE(error_of(from(vocab, "#version: 0.2\nq z\n")).find("\"qz\", is not in vocab.json"), std::string::npos);

  // The loader says what it expects.
  EXPECT_NE(error_of([&] { wensu::text::load_tokenizer(tmp / "nothing"); }).find("does not exist"), std::string::npos);
  EXPECT_NE(error_of([&] { wensu::text::load_tokenizer(tmp.str()); }).find("holds neither"), std::string::npos);
  write_file(tmp / "vocab.json", vocab);
  EXPECT_NE(error_of([&] { wensu::text::load_tokenizer(tmp.str()); }).find("only one of vocab.json and merges.txt"),
            std::string::npos);
  write_file(tmp / "merges.txt", "#version: 0.2\nĠ Ġ\nnot-a-pair\n");
  EXPECT_NE(error_of([&] { wensu::text::load_tokenizer(tmp.str()); }).find(tmp / "merges.txt" + " line 3"),
            std::string::npos);
  EXPECT_NE(error_of([&] { wensu::text::load_tokenizer_from_files({{"x.txt", ""}}); }).find("[x.txt]"), std::string::npos);
}

// --- SentencePiece --------------------------------------------------------------------------

// A tiny model trained once for the suite on a few hundred mixed lines of the BPE sample, each
// line a document.
class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string((fs::temp_directory_path() / ("wensu_spm_" + std::to_string(::getpid()))).string());
    fs::create_directories(*dir_);
    write_file(*dir_ + "/corpus.txt", corpus());
    wensu::text::train_sentencepiece(options(*dir_ + "/tiny"));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string corpus() {
    const auto lines = split_lines(wensu::test::read_text(text_dir() + "/bpe_sample.txt"));
    std::string text;
    for (size_t i = 0; i < lines.size(); i += 6) text += lines[i] + "\n\n";
    return text;
  }
  static wensu::text::SentencePieceTrainOptions options(const std::string& prefix) {
    wensu::text::SentencePieceTrainOptions o;
    o.inputs = {*dir_ + "/corpus.txt"};
    o.model_prefix = prefix;
    o.vocab_size = 1000;
    o.character_coverage = 0.98;  // rarer characters go to byte pieces
    o.threads = 1;
    return o;
  }
  static std::string model_path() { return *dir_ + "/tiny.model"; }
  static std::string* dir_;
};
std::string* SentencePieceTest::dir_ = nullptr;

const std::vector<std::string> kMixedTexts = {
    "《静夜思》\n作者：李白\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。",
    "Hello, world! It's a GPT-style model; it writes 诗 and prose.",
    "  two leading spaces, two  inside and trailing  ",
    "\ttabs\tand\nnew lines\n\n",
    "outside the training set: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀👍🏽 Ελληνικά 龘 ﷺ",
    "x",
    " ",
    "",
};

TEST_F(SentencePieceTest, RoundTripsMixedTextWithByteFallback) {
  const auto t = SentencePieceTokenizer::from_file(model_path());
  EXPECT_EQ(t->kind(), "sentencepiece");
  EXPECT_EQ(t->vocab_size(), 1000);
  EXPECT_TRUE(t->adds_dummy_prefix());
  bool used_bytes = false;
  for (const auto& text : kMixedTexts) {
    const auto ids = t->encode(text);
    for (int64_t id : ids) used_bytes |= t->is_byte(id);
    EXPECT_EQ(t->decode(ids), text);
    EXPECT_EQ(streamed(*t, ids), text) << text;
  }
  EXPECT_TRUE(used_bytes) << "characters outside the training set should become byte pieces";
  // Invalid UTF-8 does not throw; SentencePiece reads its bad bytes as U+FFFD.
  std::vector<int64_t> bad;
  ASSERT_NO_THROW(bad = t->encode("a\xFF\xFE b\xE4\xB8"));
  const std::string back = t->decode(bad);
  EXPECT_EQ(wensu::text::to_valid_utf8(back), back);
  EXPECT_EQ(back.substr(0, 1), "a");
  const auto lines = split_lines(wensu::test::read_text(text_dir() + "/bpe_sample.txt"));
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto ids = t->encode(lines[i]);
    ASSERT_EQ(t->decode(ids), lines[i]) << "sample line " << i + 1;
    ASSERT_EQ(streamed(*t, ids), lines[i]) << "sample line " << i + 1;
  }
}

TEST_F(SentencePieceTest, AgreesWithTheLibrarysEncoderAndDecoder) {
  const auto t = SentencePieceTokenizer::from_file(model_path());
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(model_path()).ok());
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::vector<std::string> texts = kMixedTexts;
  for (int i = 0; i < 100; ++i) texts.push_back(random_text(rng, 1 + static_cast<int>(rng() % 40)));
  for (const auto& text : texts) {
    if (text.find("</s>") != std::string::npos || text.find("<s>") != std::string::npos) continue;
    const auto ids = t->encode(text);
    const std::vector<int> lib = sp.EncodeAsIds(text);
    EXPECT_EQ(ids, std::vector<int64_t>(lib.begin(), lib.end())) << text;
    EXPECT_EQ(t->decode(ids), sp.DecodeIds(lib)) << text;
  }
}

TEST_F(SentencePieceTest, ControlPiecesInTextAreSpecialTokens) {
  const auto t = SentencePieceTokenizer::from_file(model_path());
  ASSERT_GE(t->eos_id(), 0);
  EXPECT_EQ(t->piece(t->eos_id()), "</s>");
  EXPECT_TRUE(t->is_special(t->eos_id()));
  for (const std::string text : {"第一首</s>第二首", "</s>", "a </s> b</s></s>", " </s>  lead", "<s>bos"}) {
    const auto ids = t->encode(text);
    EXPECT_EQ(t->decode(ids), text);
    EXPECT_EQ(streamed(*t, ids), text);
  }
  const auto ids = t->encode("a</s>b");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), t->eos_id()), 1);
  EXPECT_THROW(t->token_bytes(-1), wensu::Error);
}

TEST_F(SentencePieceTest, FilesRebuildTheSameTokenizer) {
  const auto t = wensu::text::load_tokenizer(model_path());
  const auto copy = wensu::text::load_tokenizer_from_files(t->files());
  EXPECT_EQ(copy->kind(), "sentencepiece");
  for (const auto& text : kMixedTexts) EXPECT_EQ(copy->encode(text), t->encode(text));
  // A directory with one .model file loads it.
  TempDir tmp;
  fs::copy_file(model_path(), tmp / "poems.model");
  EXPECT_EQ(wensu::text::load_tokenizer(tmp.str())->encode(kMixedTexts[0]), t->encode(kMixedTexts[0]));
  fs::copy_file(model_path(), tmp / "other.model");
  EXPECT_NE(error_of([&] { wensu::text::load_tokenizer(tmp.str()); }).find("several .model files"), std::string::npos);
}

TEST_F(SentencePieceTest, TrainingIsDeterministic) {
  TempDir tmp;
  fs::create_directories(tmp / "again");
  wensu::text::train_sentencepiece(options(tmp / "again/tiny"));
  EXPECT_EQ(wensu::test::read_text(tmp / "again/tiny.model"), wensu::test::read_text(model_path()));
  EXPECT_EQ(wensu::test::read_text(tmp / "again/tiny.vocab"), wensu::test::read_text(*dir_ + "/tiny.vocab"));
  // One line per piece in the .vocab, even for pieces holding a line break.
  EXPECT_EQ(split_lines(wensu::test::read_text(tmp / "again/tiny.vocab")).size(), 1000u);
}

TEST_F(SentencePieceTest, ClearErrors) {
  TempDir tmp;
  write_file(tmp / "empty.txt", "\n  \n\n");
  auto o = options(tmp / "m");
  o.inputs = {tmp / "empty.txt"};
  EXPECT_NE(error_of([&] { wensu::text::train_sentencepiece(o); }).find(tmp / "empty.txt" + " has no text"),
            std::string::npos);
  o.inputs = {tmp / "missing.txt"};
  EXPECT_NE(error_of([&] { wensu::text::train_sentencepiece(o); }).find("cannot open input"), std::string::npos);
  o = options(tmp / "m");
  o.vocab_size = 100000;
  EXPECT_NE(error_of([&] { wensu::text::train_sentencepiece(o); }).find("Vocabulary size"), std::string::npos);
  o = options(tmp / "no/such/dir/m");
  EXPECT_NE(error_of([&] { wensu::text::train_sentencepiece(o); }).find("does not exist"), std::string::npos);

  write_file(tmp / "broken.model", "this is not a protobuf");
  EXPECT_NE(error_of([&] { SentencePieceTokenizer::from_file(tmp / "broken.model"); }).find("not a SentencePiece model"),
            std::string::npos);
  EXPECT_NE(error_of([&] { SentencePieceTokenizer::from_file(tmp / "missing.model"); }).find("cannot open"),
            std::string::npos);
}

}  // namespace
