// FASTA reader: records and UniRef fields from the fixtures in tests/data/fasta/, gzip and plain
// giving the same records, one-line errors that name the file, record and line, skip_invalid,
// glob expansion, and a generated multi-MB stream whose records cross read-chunk boundaries.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/core/check.h"
#include "wensu/io/fasta.h"

using namespace wensu;
using namespace wensu::io;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) { return wensu::test::test_data_dir() + "/fasta/" + name; }

std::vector<FastaRecord> read_all(const std::string& path, FastaOptions opt = {}, int64_t* skipped = nullptr) {
  FastaReader reader(path, opt);
  std::vector<FastaRecord> out;
  FastaRecord rec;
  while (reader.next(rec)) out.push_back(rec);
  EXPECT_EQ(reader.records(), static_cast<int64_t>(out.size()));
  EXPECT_EQ(reader.path(), path);
  if (skipped) *skipped = reader.skipped();
  return out;
}

// The message of the wensu::Error that reading `path` to the end throws ("" when none).
std::string read_error(const std::string& path, FastaOptions opt = {}) {
  try {
    read_all(path, opt);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_one_line_with(const std::string& msg, const std::vector<std::string>& parts) {
  ASSERT_FALSE(msg.empty()) << "expected an error";
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "missing \"" << p << "\" in: " << msg;
}

// A fresh folder per test, removed afterwards.
class FastaDir : public test::TempDirTest {};

// Writes each string of `members` as its own gzip member of `path`.
void write_gzip(const std::string& path, const std::vector<std::string>& members) {
  for (size_t m = 0; m < members.size(); ++m) {
    gzFile f = gzopen(path.c_str(), m == 0 ? "wb1" : "ab1");  // "ab" starts a new member
    ASSERT_NE(f, nullptr) << path;
    if (!members[m].empty()) {
      ASSERT_EQ(gzwrite(f, members[m].data(), static_cast<unsigned>(members[m].size())), static_cast<int>(members[m].size()));
    }
    ASSERT_EQ(gzclose(f), Z_OK);
  }
}

const std::string kSeq1 =
    "MSATDLASLEKIIEAAFDNRDNVNTSTKGEVRDAVESALDLLDAGKARVAERSSDGAWTVNQWLKKAVLLSFRLNDMDVVKGSLEHLEEARKEIEAIRKGQVRNVLFKDLG";
const std::string kSeq2 =
    "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHVDDMPNALSALSDLHAHKLRVDPVNFKLLSHCLLVTLAAHL"
    "PAEFTPAVHASLDKFLASVSTVLTSKYR";

TEST(Fasta, ReadsRecordsAndUniRefFields) {
  const auto recs = read_all(fixture("good.fasta"));
  ASSERT_EQ(recs.size(), 5u);

  EXPECT_EQ(recs[0].id, "UniRef50_A0A5A9P0L4");
  EXPECT_EQ(recs[0].description, "Peptidase S41 n=1 Tax=Acipenser ruthenus TaxID=7906 RepID=A0A5A9P0L4_ACIRU");
  EXPECT_EQ(recs[0].sequence, kSeq1);  // wrapped at 60
  EXPECT_EQ(recs[0].line, 1);
  EXPECT_EQ(recs[0].name, "Peptidase S41");
  EXPECT_EQ(recs[0].members, 1);
  EXPECT_EQ(recs[0].tax, "Acipenser ruthenus");
  EXPECT_EQ(recs[0].tax_id, "7906");
  EXPECT_EQ(recs[0].rep_id, "A0A5A9P0L4_ACIRU");

  // Lower case, CRLF, after a blank line.
  EXPECT_EQ(recs[1].id, "UniRef50_P69905");
  EXPECT_EQ(recs[1].description, "Hemoglobin subunit alpha n=2317 Tax=Mammalia TaxID=40674 RepID=HBA_HUMAN");
  EXPECT_EQ(recs[1].sequence, kSeq2);
  EXPECT_EQ(recs[1].line, 5);
  EXPECT_EQ(recs[1].name, "Hemoglobin subunit alpha");
  EXPECT_EQ(recs[1].members, 2317);
  EXPECT_EQ(recs[1].tax, "Mammalia");
  EXPECT_EQ(recs[1].tax_id, "40674");
  EXPECT_EQ(recs[1].rep_id, "HBA_HUMAN");

  // Tab after the id, blanks inside the sequence, mixed case, X B U Z O, a final '*' stop.
  EXPECT_EQ(recs[2].id, "UniRef90_Q9XYZ1");
  EXPECT_EQ(recs[2].description, "Uncharacterized protein n=3 Tax=root TaxID=1 RepID=Q9XYZ1_9ZZZZ");
  EXPECT_EQ(recs[2].sequence, "MKVXBUZOACDEFGHIKLMN");
  EXPECT_EQ(recs[2].line, 9);
  EXPECT_EQ(recs[2].members, 3);

  // Not UniRef: no fields.
  EXPECT_EQ(recs[3].id, "sp|P12345|AATM_RABIT");
  EXPECT_EQ(recs[3].line, 12);
  EXPECT_EQ(recs[3].name, "");
  EXPECT_EQ(recs[3].members, -1);
  EXPECT_EQ(recs[3].tax, "");
  EXPECT_EQ(recs[3].tax_id, "");
  EXPECT_EQ(recs[3].rep_id, "");
  EXPECT_EQ(recs[3].sequence.size(), 118u);

  // No description, no newline at the end of the file.
  EXPECT_EQ(recs[4].id, "plain_id");
  EXPECT_EQ(recs[4].description, "");
  EXPECT_EQ(recs[4].sequence, "ACDEFGHIKLMNPQRSTVWY");
  EXPECT_EQ(recs[4].line, 14);
}

TEST(Fasta, GzipAndPlainGiveIdenticalRecords) {
  const auto plain = read_all(fixture("good.fasta"));
  const auto gz = read_all(fixture("good.fasta.gz"));
  ASSERT_EQ(plain.size(), gz.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    SCOPED_TRACE(plain[i].id);
    EXPECT_EQ(gz[i].id, plain[i].id);
    EXPECT_EQ(gz[i].description, plain[i].description);
    EXPECT_EQ(gz[i].sequence, plain[i].sequence);
    EXPECT_EQ(gz[i].line, plain[i].line);
    EXPECT_EQ(gz[i].name, plain[i].name);
    EXPECT_EQ(gz[i].members, plain[i].members);
    EXPECT_EQ(gz[i].tax, plain[i].tax);
    EXPECT_EQ(gz[i].tax_id, plain[i].tax_id);
    EXPECT_EQ(gz[i].rep_id, plain[i].rep_id);
  }
}

TEST(Fasta, UniRefFieldsParseFromTheBack) {
  FastaRecord r;
  r.description = "Protein with n=5 in its name n=12 Tax=Homo sapiens (Human) TaxID=9606 RepID=P1_HUMAN";
  parse_uniref_fields(r);
  EXPECT_EQ(r.name, "Protein with n=5 in its name");
  EXPECT_EQ(r.members, 12);
  EXPECT_EQ(r.tax, "Homo sapiens (Human)");
  EXPECT_EQ(r.tax_id, "9606");
  EXPECT_EQ(r.rep_id, "P1_HUMAN");
  r.description = "Cluster: Unknown";
  parse_uniref_fields(r);
  EXPECT_EQ(r.name, "");
  EXPECT_EQ(r.members, -1);
  EXPECT_EQ(r.rep_id, "");
}

TEST(Fasta, InvalidCharacterNamesFileRecordLineAndColumn) {
  FastaReader reader(fixture("bad_char.fasta"));
  FastaRecord rec;
  ASSERT_TRUE(reader.next(rec));
  EXPECT_EQ(rec.id, "ok1");
  std::string msg;
  try {
    reader.next(rec);
  } catch (const Error& e) {
    msg = e.what();
  }
  expect_one_line_with(msg, {"bad_char.fasta", "record 'seq2'", "line 5", "column 3", "'1'", "--skip-invalid"});
}

TEST(Fasta, SkipInvalidCountsSkippedRecords) {
  int64_t skipped = 0;
  const auto recs = read_all(fixture("bad_char.fasta"), {.skip_invalid = true}, &skipped);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].id, "ok1");
  EXPECT_EQ(recs[1].id, "ok3");
  EXPECT_EQ(recs[2].id, "ok6");
  EXPECT_EQ(recs[2].sequence, "WWWW");
  EXPECT_EQ(recs[2].line, 12);
  EXPECT_EQ(skipped, 3);  // seq2 (digit), gapped, stop_inside

  const auto rest = read_all(fixture("no_sequence.fasta"), {.skip_invalid = true}, &skipped);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].id, "a");
  EXPECT_EQ(rest[1].id, "c");
  EXPECT_EQ(rest[1].sequence, "MKL");
  EXPECT_EQ(skipped, 2);  // b, d
}

TEST_F(FastaDir, GapsAndInnerStopsAreErrors) {
  expect_one_line_with(read_error(write("gap.fasta", ">x\nMKV\n>aln desc\nMK\nLV.A\n")),
                       {"gap.fasta", "record 'aln'", "line 5", "column 3", "gap", "'.'", "--skip-invalid"});
  expect_one_line_with(read_error(write("stop.fasta", ">s1\nMK*\nLV\n")),
                       {"stop.fasta", "record 's1'", "line 2", "column 3", "'*'", "--skip-invalid"});
  expect_one_line_with(read_error(write("nul.fasta", std::string(">z\nMK\0V\n", 9))),
                       {"nul.fasta", "record 'z'", "line 2", "column 3", "byte 0x00"});
  // A stop at the very end, followed only by blanks and line breaks, is fine.
  const auto ok = read_all(write("end.fasta", ">e\nMKV*  \r\n\n>f\nA\n"));
  ASSERT_EQ(ok.size(), 2u);
  EXPECT_EQ(ok[0].sequence, "MKV");
}

TEST(Fasta, StructuralErrorsNameFileAndLine) {
  expect_one_line_with(read_error(fixture("no_sequence.fasta")),
                       {"no_sequence.fasta", "record 'b'", "line 3", "no sequence", "--skip-invalid"});
  expect_one_line_with(read_error(fixture("no_id.fasta")), {"no_id.fasta", "line 3", "no id"});
  expect_one_line_with(read_error(fixture("text_before_header.fasta")),
                       {"text_before_header.fasta", "line 1", "before the first record", "This is not FASTA"});
  expect_one_line_with(read_error(fixture("empty.fasta")), {"empty.fasta", "no records", "empty"});
  // Structural errors stay errors with skip_invalid.
  EXPECT_NE(read_error(fixture("text_before_header.fasta"), {.skip_invalid = true}), "");
  EXPECT_NE(read_error(fixture("empty.fasta"), {.skip_invalid = true}), "");
  expect_one_line_with(read_error(fixture("does_not_exist.fasta")), {"does_not_exist.fasta", "cannot open"});
}

TEST(Fasta, TruncatedGzipIsAnErrorEvenWhenSkipping) {
  for (bool skip : {false, true}) {
    SCOPED_TRACE(skip);
    // The text decoded before the cut is read first, so the message points into the file.
    expect_one_line_with(read_error(fixture("truncated.fasta.gz"), {.skip_invalid = skip}),
                         {"truncated.fasta.gz", "truncated gzip", "line ", "record '", "download it again"});
  }
}

TEST_F(FastaDir, CorruptGzipIsAnError) {
  std::ifstream in(fixture("good.fasta.gz"), std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(good.size(), 8u);
  std::string bad_crc = good;
  bad_crc[bad_crc.size() - 8] ^= 0x5a;  // the CRC-32 in the trailer
  expect_one_line_with(read_error(write("crc.fasta.gz", bad_crc)), {"crc.fasta.gz", "corrupt gzip", "line "});
  expect_one_line_with(read_error(write("tail.fasta.gz", good + "junk")), {"tail.fasta.gz", "after the end of the gzip data"});
  // Members are read one after another (bgzip, `cat a.gz b.gz`); an empty member is allowed.
  const std::string two = (dir_ / "two.fasta.gz").string();
  write_gzip(two, {">a\nMK", "V\n>b\n", "", "LL\n"});
  const auto recs = read_all(two);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].sequence, "MKV");
  EXPECT_EQ(recs[1].sequence, "LL");
  // Other compressors are named, not read as text.
  expect_one_line_with(read_error(write("x.fasta.zst", std::string("\x28\xb5\x2f\xfd\0\0", 6))), {"x.fasta.zst", "zstd"});
}

TEST_F(FastaDir, ExpandPathsGlobsSortsAndDeduplicates) {
  for (const char* f : {"b.fasta.gz", "a.fasta", "c.txt"}) write(f, ">x\nA\n");
  fs::create_directories(dir_ / "sub.fasta");  // a folder the glob also matches
  const std::string d = dir_.string();
  const auto got = expand_paths({d + "/*.fasta*", d + "/a.fasta", d + "/./b.fasta.gz"});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], d + "/a.fasta");
  EXPECT_EQ(got[1], d + "/b.fasta.gz");
  EXPECT_EQ(expand_paths({d + "/c.txt", d + "/[ab].fasta"}), (std::vector<std::string>{d + "/a.fasta", d + "/c.txt"}));
  EXPECT_TRUE(expand_paths({}).empty());

  auto error_of = [](const std::vector<std::string>& p) {
    try {
      expand_paths(p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  expect_one_line_with(error_of({d + "/*.fasta", d + "/shards/*.fasta.gz"}), {d + "/shards/*.fasta.gz", "no file matches"});
  expect_one_line_with(error_of({d + "/missing.fasta"}), {d + "/missing.fasta", "does not exist"});
  expect_one_line_with(error_of({d + "/sub.fasta"}), {"sub.fasta", "folder"});
}

// Several MB of random records, written plain and as gzip in three members: every read chunk
// boundary falls inside some record, and one unwrapped line is longer than a chunk.
TEST_F(FastaDir, LargeStreamAcrossChunkBoundaries) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const std::string letters = "ACDEFGHIKLMNPQRSTVWYXBUZOacdefghiklmnpqrstvwy";

  struct Expected {
    std::string id, sequence;
    int64_t line;
  };
  std::vector<Expected> want;
  std::vector<std::string> parts(3);  // text of each gzip member
  int64_t line = 1, total = 0;
  for (int i = 0; total < (6 << 20); ++i) {
    const int64_t len = i == 7 ? 700000 : uniform(1, 6000);
    const bool crlf = uniform(0, 3) == 0;
    const int64_t width = uniform(0, 4) == 0 ? len : uniform(1, 120);
    const std::string eol = crlf ? "\r\n" : "\n";
    Expected e{"UniRef50_T" + std::to_string(i), "", line};
    std::string text = ">" + e.id + " Random n=" + std::to_string(i) + " Tax=Test TaxID=1 RepID=T" + eol;
    ++line;
    std::string raw;
    for (int64_t k = 0; k < len; ++k) raw += letters[static_cast<size_t>(uniform(0, int64_t(letters.size()) - 1))];
    for (int64_t k = 0; k < len; k += width) {
      text += raw.substr(static_cast<size_t>(k), static_cast<size_t>(width)) + eol;
      ++line;
    }
    for (char& c : raw) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    e.sequence = raw;
    want.push_back(std::move(e));
    total += static_cast<int64_t>(text.size());
    parts[static_cast<size_t>(std::min<int64_t>(2, total / (2 << 20)))] += text;
  }
  const std::string plain = write("big.fasta", parts[0] + parts[1] + parts[2]);
  const std::string gz = (dir_ / "big.fasta.gz").string();
  write_gzip(gz, parts);

  for (const std::string& path : {plain, gz}) {
    SCOPED_TRACE(path);
    const auto got = read_all(path);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got[i].id, want[i].id);
      ASSERT_EQ(got[i].line, want[i].line) << want[i].id;
      ASSERT_EQ(got[i].sequence, want[i].sequence) << want[i].id;
      ASSERT_EQ(got[i].members, static_cast<int64_t>(i));
    }
  }
}

}  // namespace
