// Text corpora and causal-LM batches (train/text_data.h): documents, UTF-8 errors, row
// sampling, exact restore, and data streams giving one process the batches of several ranks.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "byte_tokenizer.h"
#include "test_support.h"
#include "wensu/core/check.h"
#include "wensu/text/tokenizer.h"
#include "wensu/train/text_data.h"

namespace wensu::train {
namespace {

using test::ByteTokenizer;

class TextData : public test::CliTest {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }
};

TEST_F(TextData, DocumentsAreSeparatedByBlankLines) {
  const auto f = write("a.txt", "床前明月光\n疑是地上霜\n\n\n  \nSecond doc\r\nline two\n\nthird");
  const auto docs = read_documents({f});
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0], "床前明月光\n疑是地上霜");
  EXPECT_EQ(docs[1], "Second doc\nline two");
  EXPECT_EQ(docs[2], "third");
}

TEST_F(TextData, GzippedFilesReadLikePlainOnes) {
  const std::string text = "one\ntwo\n\nthree\n";
  gzFile g = gzopen(path("a.txt.gz").c_str(), "wb");
  gzwrite(g, text.data(), unsigned(text.size()));
  gzclose(g);
  EXPECT_EQ(read_documents({path("a.txt.gz")}), read_documents({write("a.txt", text)}));
}

TEST_F(TextData, InvalidUtf8NamesFileLineAndByte) {
  const auto f = write("bad.txt", "fine\nab\xff" "cd\n");
  try {
    read_documents({f});
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("bad.txt"), std::string::npos) << m;
    EXPECT_NE(m.find("line 2, byte 3"), std::string::npos) << m;
  }
  // A lone continuation byte, an overlong form and a surrogate are invalid too.
  for (const char* s : {"\x80", "\xc0\xaf", "\xed\xa0\x80"}) EXPECT_THROW(read_documents({write("b.txt", s)}), Error);
}

TEST_F(TextData, EmptyCorpusIsAnError) {
  ByteTokenizer tok;
  const auto f = write("empty.txt", "\n\n   \n");
  try {
    tokenize_corpus({f}, tok, "training text", false);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no text"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tokenize_corpus({path("missing.txt")}, tok, "training text", false), Error);
}

TEST_F(TextData, CorpusIsDocumentsEachEndedByEos) {
  ByteTokenizer tok;
  const auto c = tokenize_corpus({write("a.txt", "ab\n\ncd\ne\n")}, tok, "t", false);
  EXPECT_EQ(c.documents, 2);
  EXPECT_EQ(c.ids, (std::vector<int32_t>{'a', 'b', 256, 'c', 'd', '\n', 'e', 256}));
}

TokenCorpus counting_corpus(int64_t n) {
  TokenCorpus c;
  for (int64_t i = 0; i < n; ++i) c.ids.push_back(int32_t(i));
  c.documents = 1;
  return c;
}

TEST(TextShare, RowsAreConsecutiveTokensAndTargetsAreShiftedByOne) {
  const auto c = counting_corpus(1000);
  TextDataConfig cfg;
  cfg.seq_len = 16;
  cfg.batch_rows = 4;
  TextShare s(c, cfg, 0, 1);
  for (int b = 0; b < 5; ++b) {
    LmBatch batch = s.next();
    ASSERT_EQ(batch.tokens.shape(), (Shape{4, 16}));
    EXPECT_EQ(batch.targets_count, 64);
    const auto t = batch.tokens.to_vector<int64_t>(), y = batch.targets.to_vector<int64_t>();
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(t[r * 16 + j], t[r * 16] + j);
        EXPECT_EQ(y[r * 16 + j], t[r * 16 + j] + 1);
        EXPECT_LT(y[r * 16 + j], 1000);
      }
  }
}

TEST(TextShare, RestoredCursorContinuesExactly) {
  const auto c = counting_corpus(5000);
  TextDataConfig cfg;
  cfg.seq_len = 8;
  cfg.batch_rows = 6;
  cfg.seed = 7;
  TextShare a(c, cfg, 0, 1);
  for (int i = 0; i < 3; ++i) a.next();
  TextShare b(c, cfg, 0, 1);
  b.restore(a.cursors());
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(a.next().tokens.to_vector<int64_t>(), b.next().tokens.to_vector<int64_t>()) << "batch " << i;
  EXPECT_THROW(b.restore(Tensor::zeros({3, 1}, DType::i64)), Error);  // another stream count
}

TEST(TextShare, TwoSharesGiveTheRowsOfOneProcessWithTwoStreams) {
  const auto c = counting_corpus(5000);
  TextDataConfig cfg;
  cfg.seq_len = 8;
  cfg.batch_rows = 6;
  cfg.streams = 2;
  TextShare whole(c, cfg, 0, 2), r0(c, cfg, 0, 1), r1(c, cfg, 1, 1);
  for (int i = 0; i < 3; ++i) {
    auto w = whole.next().tokens.to_vector<int64_t>();
    auto a = r0.next().tokens.to_vector<int64_t>(), b = r1.next().tokens.to_vector<int64_t>();
    a.insert(a.end(), b.begin(), b.end());
    EXPECT_EQ(w, a);
  }
  // The cursors of the two shares add up to the whole's.
  auto sum = r0.cursors().to_vector<int64_t>();
  const auto c1 = r1.cursors().to_vector<int64_t>();
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += c1[i];
  EXPECT_EQ(sum, whole.cursors().to_vector<int64_t>());
}

TEST(TextShare, TooShortCorpusSaysWhatToDo) {
  const auto c = counting_corpus(10);
  TextDataConfig cfg;
  cfg.seq_len = 16;
  try {
    TextShare s(c, cfg, 0, 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--seq-len"), std::string::npos) << e.what();
  }
}

TEST(CausalLmLoss, AveragesEveryWindowsTargets) {
  // A "model" whose logits put all mass on token (input + 1): zero loss on a counting corpus,
  // ln V on a constant one.
  const int64_t V = 64;
  auto forward = [&](const Tensor& t) {
    const auto ids = t.to_vector<int64_t>();
    Tensor logits = Tensor::full({t.size(0), t.size(1), V}, -30.0);
    float* p = logits.data<float>();
    for (size_t i = 0; i < ids.size(); ++i) p[i * V + size_t((ids[i] + 1) % V)] = 30.0f;
    return logits;
  };
  auto [loss, windows] = causal_lm_loss(forward, counting_corpus(60), 8, 3, 0);
  EXPECT_EQ(windows, 7);  // (60 - 1) / 8
  EXPECT_LT(loss, 1e-6);
}

}  // namespace
}  // namespace wensu::train
