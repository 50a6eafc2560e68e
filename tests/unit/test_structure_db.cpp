// ProMod3 StructureDB reader and fold training shards: a small structure_db.dat written here in
// the documented layout reads back exactly (shift subtracted, dihedrals and profiles scaled,
// end placeholders masked); every truncation and header fault is a clear error naming the file
// and byte; the ideal CB matches real CB atoms (tests/data/fold/1zaa1.pdb) in position and
// chirality; shards round-trip bit for bit. With the real database in
// ${WENSU_DATA:-~/.cache/wensu}/promod3/ (scripts/data/make-structure-data.sh), its geometry and
// dihedrals are checked too; without it that test is skipped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/core/check.h"
#include "wensu/fold/fold_data.h"
#include "wensu/fold/structure_db.h"

using namespace wensu;
using namespace wensu::fold;
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------- a structure_db.dat writer

// One chain's raw file contents (what ProMod3 stores, before decoding).
struct RawChain {
  std::string pdb, chain;
  uint16_t start = 1;
  std::array<float, 3> shift{};
  std::string seq;
  std::vector<int16_t> bb, dih, prof, sprof;  // [L*12], [L*2], [L*20], [L*20]
  std::vector<uint16_t> acc, depth;           // [L]
  std::string dssp;                           // [L]
};

class Bytes {
 public:
  template <typename T>
  void put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof v);
    s_.append(b, sizeof b);
  }
  void put_string(const std::string& v) {
    put<uint32_t>(uint32_t(v.size()));
    s_ += v;
  }
  template <typename T>
  void put_array(const std::vector<T>& v, size_t count) {
    put<uint64_t>(count);
    for (const T& x : v) put<T>(x);
  }
  void put_chars(const std::string& v) {
    put<uint64_t>(v.size());
    s_ += v;
  }
  std::string& str() { return s_; }

 private:
  std::string s_;
};

// The layout of promod3-structure-db.md §2. `with_optional` = false writes the six optional
// arrays with count 0 (and clears their flags).
std::string encode_db(const std::vector<RawChain>& chains, bool with_optional = true) {
  Bytes b;
  b.put<uint32_t>(kStructureDbMagic);
  b.put<uint32_t>(kStructureDbVersion);
  for (uint32_t s : kStructureDbTypeSizes) b.put<uint32_t>(s);
  b.put<float>(1.0f);
  b.put<uint8_t>(1);
  b.put<int16_t>(1);
  b.put<uint64_t>(1);
  b.put<uint16_t>(1);
  b.put<uint32_t>(with_optional ? 0xFFFFFFFFu : 0u);
  b.put<uint64_t>(chains.size());
  uint32_t offset = 0;
  for (const RawChain& c : chains) {
    b.put_string(c.pdb);
    b.put_string(c.chain);
    b.put<uint32_t>(offset);
    b.put<uint16_t>(uint16_t(c.seq.size()));
    b.put<uint16_t>(c.start);
    for (float s : c.shift) b.put<float>(s);
    offset += uint32_t(c.seq.size());
  }
  RawChain all;
  for (const RawChain& c : chains) {
    all.seq += c.seq;
    all.dssp += c.dssp;
    for (auto [dst, src] : {std::pair{&all.bb, &c.bb}, {&all.dih, &c.dih}, {&all.prof, &c.prof}, {&all.sprof, &c.sprof}})
      dst->insert(dst->end(), src->begin(), src->end());
    all.acc.insert(all.acc.end(), c.acc.begin(), c.acc.end());
    all.depth.insert(all.depth.end(), c.depth.begin(), c.depth.end());
  }
  const size_t n = all.seq.size();
  b.put_chars(all.seq);
  b.put_array(all.bb, n);
  if (!with_optional) {
    for (int k = 0; k < 6; ++k) b.put<uint64_t>(0);
    return b.str();
  }
  b.put_array(all.dih, n);
  b.put_array(all.acc, n);
  b.put_array(all.depth, n);
  b.put_chars(all.dssp);
  b.put_array(all.prof, n);
  b.put_array(all.sprof, n);
  return b.str();
}

// Random but well-formed chains: raw coordinates in ProMod3's stored range, dihedrals within
// +-pi, profile rows of any int16 values (the reader does not normalise them).
RawChain random_chain(std::mt19937& rng, const std::string& pdb, const std::string& chain, int length) {
  std::uniform_int_distribution<int> coord(0, 24350), angle(-3141, 3141), freq(0, 10000), letter(0, 19),
      ss(0, 7), small(0, 400);
  std::uniform_real_distribution<float> shift(-80.0f, 80.0f);
  RawChain c;
  c.pdb = pdb;
  c.chain = chain;
  c.start = uint16_t(1 + small(rng));
  for (float& s : c.shift) s = shift(rng);
  for (int k = 0; k < length; ++k) {
    c.seq += kProfileAlphabet[letter(rng)];
    c.dssp += "HECTSGBI"[ss(rng)];
    for (int j = 0; j < 12; ++j) c.bb.push_back(int16_t(coord(rng)));
    for (int j = 0; j < 2; ++j) c.dih.push_back(int16_t(angle(rng)));
    for (int j = 0; j < 20; ++j) c.prof.push_back(int16_t(freq(rng)));
    for (int j = 0; j < 20; ++j) c.sprof.push_back(int16_t(freq(rng)));
    c.acc.push_back(uint16_t(small(rng)));
    c.depth.push_back(uint16_t(small(rng)));
  }
  return c;
}

// The plain reference of ideal_cb (the trRosetta / AlphaFold formula), in double.
std::array<double, 3> reference_cb(const double* n, const double* ca, const double* c) {
  double b[3], cc[3], a[3], out[3];
  for (int d = 0; d < 3; ++d) b[d] = ca[d] - n[d], cc[d] = c[d] - ca[d];
  a[0] = b[1] * cc[2] - b[2] * cc[1];
  a[1] = b[2] * cc[0] - b[0] * cc[2];
  a[2] = b[0] * cc[1] - b[1] * cc[0];
  for (int d = 0; d < 3; ++d) out[d] = -0.58273431 * a[d] + 0.56802827 * b[d] - 0.54067466 * cc[d] + ca[d];
  return {out[0], out[1], out[2]};
}

// Dihedral angle p0-p1-p2-p3 in radians (IUPAC sign), plain double arithmetic.
template <typename P0, typename P1, typename P2, typename P3>
double dihedral(const P0& p0, const P1& p1, const P2& p2, const P3& p3) {
  double b1[3], b2[3], b3[3];
  for (int d = 0; d < 3; ++d) {
    b1[d] = double(p1[d]) - double(p0[d]);
    b2[d] = double(p2[d]) - double(p1[d]);
    b3[d] = double(p3[d]) - double(p2[d]);
  }
  auto cross = [](const double* u, const double* v, double* w) {
    w[0] = u[1] * v[2] - u[2] * v[1];
    w[1] = u[2] * v[0] - u[0] * v[2];
    w[2] = u[0] * v[1] - u[1] * v[0];
  };
  // atan2(|b2| b1 . (b2 x b3), (b1 x b2) . (b2 x b3)), the IUPAC convention of phi and psi.
  double n1[3], n2[3];
  cross(b1, b2, n1);
  cross(b2, b3, n2);
  const double nb2 = std::sqrt(b2[0] * b2[0] + b2[1] * b2[1] + b2[2] * b2[2]);
  const double y = nb2 * (b1[0] * n2[0] + b1[1] * n2[1] + b1[2] * n2[2]);
  const double x = n1[0] * n2[0] + n1[1] * n2[1] + n1[2] * n2[2];
  return std::atan2(y, x);
}

template <typename P, typename Q>
double distance(const P& p, const Q& q) {
  double s = 0;
  for (int d = 0; d < 3; ++d) s += (double(p[d]) - double(q[d])) * (double(p[d]) - double(q[d]));
  return std::sqrt(s);
}

class StructureDbTest : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::mt19937 rng(20240611);
    chains_ = {random_chain(rng, "12AS", "A", 7), random_chain(rng, "1ABC", "n", 1),
               random_chain(rng, "9XYZ", "B", 12)};
  }
  // The message of the wensu::Error that opening `bytes` throws ("" when it opens). Each call
  // writes a new file, bad_path_: rewriting one file costs milliseconds on ext4 with discard.
  std::string open_error(const std::string& bytes) {
    const std::string p = write("bad-" + std::to_string(++written_) + ".dat", bytes);
    bad_path_ = p;
    try {
      StructureDb::open(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  std::vector<RawChain> chains_;
  int written_ = 0;
  std::string bad_path_;
};

// ---------------------------------------------------------------- reading

TEST_F(StructureDbTest, ReadsBackExactlyWhatWasWritten) {
  const StructureDb db = StructureDb::open(write("db.dat", encode_db(chains_)));
  ASSERT_EQ(db.size(), 3);
  EXPECT_EQ(db.residues(), 20);
  EXPECT_EQ(db.data_flags(), 0xFFFFFFFFu);
  for (StructureDbArray a : {kDihedrals, kSolventAccess, kResidueDepth, kDssp, kSequenceProfile, kStructureProfile})
    EXPECT_TRUE(db.has(a));
  int64_t offset = 0;
  for (int64_t i = 0; i < db.size(); ++i) {
    const RawChain& raw = chains_[size_t(i)];
    const ChainInfo& info = db.info(i);
    const int64_t L = int64_t(raw.seq.size());
    EXPECT_EQ(info.pdb_id, raw.pdb);
    EXPECT_EQ(info.chain, raw.chain);
    EXPECT_EQ(info.id(), raw.pdb + "_" + raw.chain);
    EXPECT_EQ(info.offset, offset);
    EXPECT_EQ(info.length, L);
    EXPECT_EQ(info.start_resnum, raw.start);
    EXPECT_EQ(info.shift, raw.shift);
    EXPECT_EQ(db.find(info.id()), i);
    offset += L;

    const ChainData c = db.chain(i);
    EXPECT_EQ(c.id, info.id());
    EXPECT_EQ(c.length(), L);
    EXPECT_EQ(c.sequence, raw.seq);
    EXPECT_EQ(db.sequence(i), raw.seq);
    EXPECT_EQ(c.dssp, raw.dssp);
    ASSERT_EQ(c.backbone.size(), size_t(L * 12));
    ASSERT_EQ(c.cb.size(), size_t(L * 3));
    ASSERT_EQ(c.phi_psi.size(), size_t(L * 2));
    ASSERT_EQ(c.phi_psi_mask.size(), size_t(L * 2));
    ASSERT_EQ(c.profile.size(), size_t(L * 20));
    for (int64_t k = 0; k < L; ++k) {
      // Angstrom = raw * 0.01 - shift: the shift is subtracted (adding it would move the chain
      // by twice the shift, which the random shifts here would expose).
      double bb[12];
      for (int j = 0; j < 12; ++j) {
        bb[j] = raw.bb[size_t(k * 12 + j)] * 0.01 - double(raw.shift[size_t(j % 3)]);
        EXPECT_EQ(c.backbone[size_t(k * 12 + j)], float(bb[j])) << info.id() << " residue " << k << " value " << j;
      }
      // CB from the decoded (float) atoms; random backbones put it far away, hence the relative
      // tolerance of float rounding.
      double atoms[9];
      for (int j = 0; j < 9; ++j) atoms[j] = c.backbone[size_t(k * 12 + j)];
      const auto cb = reference_cb(atoms, atoms + 3, atoms + 6);
      for (int d = 0; d < 3; ++d)
        EXPECT_NEAR(c.cb[size_t(k * 3 + d)], cb[size_t(d)], 1e-6 * (1 + std::abs(cb[size_t(d)])));
      for (int j = 0; j < 2; ++j)
        EXPECT_EQ(c.phi_psi[size_t(k * 2 + j)], float(raw.dih[size_t(k * 2 + j)] / 1000.0));
      // Placeholders: the first residue's phi and the last residue's psi.
      EXPECT_EQ(c.phi_psi_mask[size_t(k * 2)], k == 0 ? 0 : 1);
      EXPECT_EQ(c.phi_psi_mask[size_t(k * 2 + 1)], k == L - 1 ? 0 : 1);
      for (int j = 0; j < 20; ++j)
        EXPECT_EQ(c.profile[size_t(k * 20 + j)], float(raw.prof[size_t(k * 20 + j)] / 10000.0));
    }
  }
  EXPECT_EQ(db.find("12AS_B"), -1);
  EXPECT_EQ(db.find("12as_A"), -1);
  EXPECT_THROW(db.info(3), Error);
  EXPECT_THROW(db.chain(-1), Error);
}

TEST_F(StructureDbTest, IdealCbMatchesTheFormula) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-50.0f, 50.0f);
  for (int t = 0; t < 100; ++t) {
    float p[9];
    double q[9];
    for (int j = 0; j < 9; ++j) q[j] = p[j] = u(rng);
    const auto cb = ideal_cb(p, p + 3, p + 6);
    const auto ref = reference_cb(q, q + 3, q + 6);
    for (int d = 0; d < 3; ++d) EXPECT_NEAR(cb[size_t(d)], ref[size_t(d)], 1e-4 * (1 + std::abs(ref[size_t(d)])));
  }
}

TEST_F(StructureDbTest, AbsentOptionalArraysAreEmptyAndMasked) {
  const StructureDb db = StructureDb::open(write("db.dat", encode_db(chains_, false)));
  EXPECT_EQ(db.data_flags(), 0u);
  for (StructureDbArray a : {kDihedrals, kSolventAccess, kResidueDepth, kDssp, kSequenceProfile, kStructureProfile})
    EXPECT_FALSE(db.has(a));
  const ChainData c = db.chain(2);
  EXPECT_EQ(c.sequence, chains_[2].seq);
  EXPECT_EQ(c.backbone.size(), chains_[2].seq.size() * 12);
  EXPECT_TRUE(c.dssp.empty());
  EXPECT_TRUE(c.profile.empty());
  EXPECT_EQ(c.phi_psi, std::vector<float>(c.sequence.size() * 2, 0.0f));
  EXPECT_EQ(c.phi_psi_mask, std::vector<uint8_t>(c.sequence.size() * 2, 0));
  // A shard needs every field.
  FoldShardWriter w(path("s.h5"));
  EXPECT_THROW(w.add(c), Error);
}

TEST_F(StructureDbTest, EveryTruncationIsAClearError) {
  const std::string bytes = encode_db(chains_);
  ASSERT_EQ(open_error(bytes), "");
  const std::string empty = open_error("");
  EXPECT_EQ(empty, "structure db " + bad_path_ + ": the file is empty");
  for (size_t n = 1; n < bytes.size(); ++n) {
    const std::string msg = open_error(bytes.substr(0, n));
    ASSERT_NE(msg, "") << "a file cut to " << n << " of " << bytes.size() << " bytes opened";
    EXPECT_EQ(msg.rfind("structure db " + bad_path_ + ": byte ", 0), 0u) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }
  // Cut inside the last array: the message names it and where its elements start.
  const size_t last = bytes.size() - 20 * 40 - 8;  // the structure profile's count
  const std::string cut = open_error(bytes.substr(0, bytes.size() - 1));
  EXPECT_EQ(cut, "structure db " + bad_path_ + ": byte " + std::to_string(last + 8) +
                     ": the file ends inside the structure profile array (20 x 40 bytes needed, 799 left): truncated "
                     "download or unpack?");
  const std::string extra = open_error(bytes + "x");
  EXPECT_NE(extra.find("byte " + std::to_string(bytes.size()) + ": 1 bytes after the last array"), std::string::npos)
      << extra;
}

TEST_F(StructureDbTest, HeaderFaultsNameTheField) {
  const std::string good = encode_db(chains_);
  auto patched = [&](size_t at, uint32_t v) {
    std::string b = good;
    std::memcpy(&b[at], &v, 4);
    return open_error(b);
  };
  EXPECT_NE(patched(0, 4321).find("byte 0: magic number is 4321, expected 1234"), std::string::npos);
  EXPECT_NE(patched(4, 3).find("byte 4: format version 3"), std::string::npos);
  EXPECT_NE(patched(8 + 4 * 6, 96).find("byte 32: type-size check 6 is 96, expected 88"), std::string::npos);
  EXPECT_NE(patched(0x38, 0).find("byte 56: the check values"), std::string::npos);
  // Chain 1's offset: after the header (0x55), chain 0's 33-byte record and chain 1's two
  // strings ("1ABC", "n").
  const size_t off1 = 0x55 + 33 + (4 + 4) + (4 + 1);
  const std::string msg = patched(off1, 5);
  EXPECT_NE(msg.find("chain record 1 (1ABC_n) starts at residue 5, expected 7"), std::string::npos) << msg;
  // A duplicate id.
  std::vector<RawChain> dup = chains_;
  dup[2].pdb = "12AS";
  dup[2].chain = "A";
  EXPECT_NE(open_error(encode_db(dup)).find("chain id 12AS_A appears twice"), std::string::npos);
  // A non-letter residue.
  std::vector<RawChain> bad = chains_;
  bad[2].seq[3] = '-';
  EXPECT_NE(open_error(encode_db(bad)).find("residue 3 of chain 9XYZ_B is byte 45"), std::string::npos);
  EXPECT_THROW(StructureDb::open(path("missing.dat")), Error);
}

TEST_F(StructureDbTest, DescribeAndFasta) {
  const StructureDb db = StructureDb::open(write("db.dat", encode_db(chains_)));
  const std::string text = describe_structure_db(db);
  EXPECT_NE(text.find("chains      3 (3 PDB entries)"), std::string::npos) << text;
  EXPECT_NE(text.find("residues    20"), std::string::npos) << text;
  EXPECT_NE(text.find("min 1, median 7, mean 7, max 12"), std::string::npos) << text;
  EXPECT_NE(text.find("< 30"), std::string::npos) << text;

  std::string want;
  for (const RawChain& c : chains_) want += ">" + c.pdb + "_" + c.chain + "\n" + c.seq + "\n";
  EXPECT_EQ(write_structure_db_fasta(db, path("all.fasta")), 3);
  EXPECT_EQ(test::read_text(path("all.fasta")), want);
  // Long sequences wrap at 60 letters.
  std::mt19937 rng(3);
  const RawChain long_chain = random_chain(rng, "2XYZ", "C", 130);
  const StructureDb db2 = StructureDb::open(write("db2.dat", encode_db({long_chain})));
  write_structure_db_fasta(db2, path("long.fasta"));
  EXPECT_EQ(test::read_text(path("long.fasta")), ">2XYZ_C\n" + long_chain.seq.substr(0, 60) + "\n" +
                                                     long_chain.seq.substr(60, 60) + "\n" + long_chain.seq.substr(120) + "\n");
}

// ---------------------------------------------------------------- ideal CB against real atoms

struct PdbResidue {
  std::string name;
  std::map<std::string, std::array<double, 3>> atoms;
};

// ATOM records of a PDB file, residue by residue (the fixture has no alternate locations).
std::vector<PdbResidue> read_pdb(const std::string& file) {
  std::ifstream in(file);
  std::vector<PdbResidue> out;
  std::string last_key;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("ATOM", 0) != 0 || line.size() < 54) continue;
    const std::string key = line.substr(21, 6);  // chain, residue number, insertion code
    if (key != last_key) {
      out.push_back({line.substr(17, 3), {}});
      last_key = key;
    }
    std::string atom = line.substr(12, 4);
    atom.erase(0, atom.find_first_not_of(' '));
    atom.erase(atom.find_last_not_of(' ') + 1);
    out.back().atoms[atom] = {std::stod(line.substr(30, 8)), std::stod(line.substr(38, 8)), std::stod(line.substr(46, 8))};
  }
  return out;
}

// A rotation from three uniform angles, applied to p and shifted by t.
std::array<double, 3> place(const std::array<double, 3>& p, const double* angles, const double* t) {
  std::array<double, 3> q = p;
  for (int axis = 0; axis < 3; ++axis) {
    const double c = std::cos(angles[axis]), s = std::sin(angles[axis]);
    const int i = (axis + 1) % 3, j = (axis + 2) % 3;
    const double qi = c * q[size_t(i)] - s * q[size_t(j)], qj = s * q[size_t(i)] + c * q[size_t(j)];
    q[size_t(i)] = qi;
    q[size_t(j)] = qj;
  }
  for (int d = 0; d < 3; ++d) q[size_t(d)] += t[d];
  return q;
}

double angle_deg(const std::array<double, 3>& a, const std::array<double, 3>& center, const std::array<double, 3>& b) {
  double dot = 0, na = 0, nb = 0;
  for (int d = 0; d < 3; ++d) {
    const double u = a[size_t(d)] - center[size_t(d)], v = b[size_t(d)] - center[size_t(d)];
    dot += u * v, na += u * u, nb += v * v;
  }
  return std::acos(dot / std::sqrt(na * nb)) * 180.0 / M_PI;
}

TEST_F(StructureDbTest, IdealCbOnIdealBackbone) {
  // Engh & Huber backbone (N-CA 1.458, CA-C 1.525 Angstrom, N-CA-C 111.2 deg) in random poses:
  // the built CB sits 1.52-1.53 Angstrom from CA at the tetrahedral angles N-CA-CB 110.5 and
  // C-CA-CB 110.1 deg (within a degree).
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> turn(-M_PI, M_PI), shift(-60, 60);
  const double theta = 111.2 * M_PI / 180.0;
  for (int t = 0; t < 20; ++t) {
    const double angles[3] = {turn(rng), turn(rng), turn(rng)}, at[3] = {shift(rng), shift(rng), shift(rng)};
    const auto n = place({1.458, 0, 0}, angles, at), ca = place({0, 0, 0}, angles, at),
               c = place({1.525 * std::cos(theta), 1.525 * std::sin(theta), 0}, angles, at);
    float nf[3], caf[3], cf[3];
    for (int d = 0; d < 3; ++d) nf[d] = float(n[size_t(d)]), caf[d] = float(ca[size_t(d)]), cf[d] = float(c[size_t(d)]);
    const std::array<float, 3> cbf = ideal_cb(nf, caf, cf);
    const std::array<double, 3> cb = {cbf[0], cbf[1], cbf[2]};
    const double bond = distance(cb, ca);
    EXPECT_GT(bond, 1.52);
    EXPECT_LT(bond, 1.53);
    EXPECT_NEAR(angle_deg(n, ca, cb), 110.5, 1.0);
    EXPECT_NEAR(angle_deg(c, ca, cb), 110.1, 1.0);
  }
}

TEST_F(StructureDbTest, IdealCbSitsOnRealCbAtoms) {
  // The formula scales with the backbone it is given, so its CA-CB length follows the N-CA-C
  // angle (1.31-1.60 Angstrom on this 2.1 Angstrom structure, whose N-CA-C spans 106-125 deg);
  // the deposited CBs are the reference for position and handedness.
  const auto residues = read_pdb(test::test_data_dir() + "/fold/1zaa1.pdb");
  std::vector<double> dist;
  for (const PdbResidue& r : residues) {
    if (!r.atoms.count("N") || !r.atoms.count("CA") || !r.atoms.count("C") || !r.atoms.count("CB")) continue;
    float n[3], ca[3], c[3];
    for (int d = 0; d < 3; ++d) {
      n[d] = float(r.atoms.at("N")[size_t(d)]);
      ca[d] = float(r.atoms.at("CA")[size_t(d)]);
      c[d] = float(r.atoms.at("C")[size_t(d)]);
    }
    const std::array<float, 3> cb = ideal_cb(n, ca, c);
    const auto& real = r.atoms.at("CB");
    dist.push_back(distance(cb, real));
    EXPECT_LT(dist.back(), 0.7) << r.name << " residue " << dist.size();
    // Chirality: the improper dihedral N-CA-C-CB of the built CB has the deposited CB's sign (an
    // L-amino acid); a mirror image would flip it.
    const double ideal_chi = dihedral(n, ca, c, cb);
    const double real_chi = dihedral(r.atoms.at("N"), r.atoms.at("CA"), r.atoms.at("C"), real);
    EXPECT_GT(ideal_chi * real_chi, 0.0) << r.name << ": built " << ideal_chi << " rad, deposited " << real_chi;
  }
  ASSERT_GE(dist.size(), 25u);  // 31 residues, a few glycines
  std::sort(dist.begin(), dist.end());
  EXPECT_LT(dist[dist.size() / 2], 0.15) << "median distance to the deposited CB";
}

// ---------------------------------------------------------------- the real database

std::string real_db_path() {
  const char* data = std::getenv("WENSU_DATA");
  const char* home = std::getenv("HOME");
  const std::string root = data ? data : std::string(home ? home : "") + "/.cache/wensu";
  return root + "/promod3/structure_db.dat";
}

TEST(StructureDbReal, BackboneGeometryAndDihedrals) {
  const std::string p = real_db_path();
  if (!fs::exists(p)) GTEST_SKIP() << p << " not present (scripts/data/make-structure-data.sh fetches it)";
  const StructureDb db = StructureDb::open(p);
  ASSERT_GT(db.size(), 1000);
  // The sign of N-CA-C-CB on real L-amino acids, from the fixture's deposited atoms.
  const auto fixture = read_pdb(test::test_data_dir() + "/fold/1zaa1.pdb");
  size_t r = 0;
  while (!fixture.at(r).atoms.count("CB")) ++r;
  const auto& a = fixture.at(r).atoms;
  const double l_sign = dihedral(a.at("N"), a.at("CA"), a.at("C"), a.at("CB")) > 0 ? 1.0 : -1.0;

  int64_t residues = 0, bad_bonds = 0, bad_chirality = 0, angles = 0, bad_angles = 0;
  std::vector<double> ca_cb;
  for (int64_t i = 0; i < db.size(); i += db.size() / 25) {
    const ChainData c = db.chain(i);
    const int64_t L = c.length();
    auto atom = [&](int64_t k, int j) { return &c.backbone[size_t(k * 12 + j * 3)]; };
    for (int64_t k = 0; k < L; ++k) {
      ++residues;
      const double n_ca = distance(atom(k, 0), atom(k, 1)), ca_c = distance(atom(k, 1), atom(k, 2));
      if (std::abs(n_ca - 1.46) > 0.1 || std::abs(ca_c - 1.525) > 0.1) ++bad_bonds;
      const float* cb = &c.cb[size_t(k * 3)];
      ca_cb.push_back(distance(atom(k, 1), cb));
      if (dihedral(atom(k, 0), atom(k, 1), atom(k, 2), cb) * l_sign <= 0) ++bad_chirality;
      // Stored phi/psi against the coordinates: phi = C(k-1)-N-CA-C, psi = N-CA-C-N(k+1).
      auto wrap = [](double x) { return std::remainder(x, 2 * M_PI); };
      if (c.phi_psi_mask[size_t(k * 2)]) {
        ++angles;
        if (std::abs(wrap(dihedral(atom(k - 1, 2), atom(k, 0), atom(k, 1), atom(k, 2)) - c.phi_psi[size_t(k * 2)])) > 0.1)
          ++bad_angles;
      }
      if (c.phi_psi_mask[size_t(k * 2 + 1)]) {
        ++angles;
        if (std::abs(wrap(dihedral(atom(k, 0), atom(k, 1), atom(k, 2), atom(k + 1, 0)) - c.phi_psi[size_t(k * 2 + 1)])) >
            0.1)
          ++bad_angles;
      }
    }
  }
  ASSERT_GT(residues, 1000);
  EXPECT_LT(double(bad_bonds), 0.01 * double(residues)) << bad_bonds << " of " << residues;
  EXPECT_EQ(bad_chirality, 0);
  // The CB's distance follows the backbone's geometry: about 1.53 Angstrom, rarely 0.1 off.
  std::sort(ca_cb.begin(), ca_cb.end());
  EXPECT_GT(ca_cb[ca_cb.size() / 2], 1.52);
  EXPECT_LT(ca_cb[ca_cb.size() / 2], 1.535);
  const auto near = std::count_if(ca_cb.begin(), ca_cb.end(), [](double d) { return std::abs(d - 1.525) < 0.1; });
  EXPECT_GT(double(near), 0.95 * double(ca_cb.size()));
  EXPECT_LT(double(bad_angles), 0.001 * double(angles)) << bad_angles << " of " << angles;
}

// ---------------------------------------------------------------- shards

ChainData random_chain_data(std::mt19937& rng, const std::string& id, int L) {
  std::uniform_real_distribution<float> u(-100.0f, 100.0f);
  std::uniform_int_distribution<int> bit(0, 1), letter(0, 19);
  ChainData c;
  c.id = id;
  for (int k = 0; k < L; ++k) {
    c.sequence += kProfileAlphabet[letter(rng)];
    c.dssp += "HECTSGBI"[letter(rng) % 8];
  }
  auto fill = [&](std::vector<float>& v, size_t n) {
    v.resize(n);
    for (float& x : v) x = u(rng);
  };
  fill(c.backbone, size_t(L) * 12);
  fill(c.cb, size_t(L) * 3);
  fill(c.phi_psi, size_t(L) * 2);
  fill(c.profile, size_t(L) * 20);
  c.phi_psi_mask.resize(size_t(L) * 2);
  for (uint8_t& m : c.phi_psi_mask) m = uint8_t(bit(rng));
  return c;
}

void expect_same_chain(const ChainData& a, const ChainData& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.sequence, b.sequence);
  EXPECT_EQ(a.backbone, b.backbone);  // float vectors compare bit for bit (no NaNs here)
  EXPECT_EQ(a.cb, b.cb);
  EXPECT_EQ(a.phi_psi, b.phi_psi);
  EXPECT_EQ(a.phi_psi_mask, b.phi_psi_mask);
  EXPECT_EQ(a.dssp, b.dssp);
  EXPECT_EQ(a.profile, b.profile);
}

TEST_F(StructureDbTest, ShardRoundTrip) {
  std::mt19937 rng(11);
  std::vector<ChainData> chains = {random_chain_data(rng, "1ABC_A", 5), random_chain_data(rng, "1ABC_B", 1),
                                   random_chain_data(rng, "2LONGID_xy", 37), random_chain_data(rng, "3DEF_n", 9)};
  FoldShardWriter w(path("shard.h5"));
  w.set_attribute("split", "train");
  for (const ChainData& c : chains) w.add(c);
  EXPECT_EQ(w.size(), 4);
  EXPECT_EQ(w.residues(), 52);
  EXPECT_THROW(w.add(chains[0]), Error);  // duplicate id
  EXPECT_THROW(w.set_attribute("format", "x"), Error);
  w.close();
  EXPECT_EQ(files(), std::vector<std::string>{"shard.h5"});  // no temporary left behind

  const FoldShard s = FoldShard::open(path("shard.h5"));
  EXPECT_EQ(s.size(), 4);
  EXPECT_EQ(s.residues(), 52);
  const std::vector<std::string> ids = {"1ABC_A", "1ABC_B", "2LONGID_xy", "3DEF_n"};
  EXPECT_EQ(s.ids(), ids);
  EXPECT_EQ(list_fold_shard_ids(path("shard.h5")), ids);
  EXPECT_EQ(s.attributes().at("split"), "train");
  EXPECT_EQ(s.attributes().count("created"), 1u);
  for (size_t i = 0; i < chains.size(); ++i) {
    EXPECT_EQ(s.length(int64_t(i)), chains[i].length());
    expect_same_chain(s.chain(int64_t(i)), chains[i]);
  }
  // By id, in any order.
  expect_same_chain(s.chain("3DEF_n"), chains[3]);
  expect_same_chain(s.chain("1ABC_A"), chains[0]);
  EXPECT_EQ(s.find("nope"), -1);
  EXPECT_THROW(s.chain("nope"), Error);
  EXPECT_THROW(s.chain(int64_t(4)), Error);
}

TEST_F(StructureDbTest, ShardErrors) {
  std::mt19937 rng(5);
  ChainData c = random_chain_data(rng, "1ABC_A", 4);
  c.profile.pop_back();
  FoldShardWriter w(path("s.h5"));
  try {
    w.add(c);
    FAIL() << "a short profile was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chain 1ABC_A: profile"), std::string::npos) << e.what();
  }
  FoldShardWriter nowhere(path("no/such/dir/s.h5"));
  nowhere.add(random_chain_data(rng, "1ABC_A", 3));
  EXPECT_THROW(nowhere.close(), Error);

  // Not HDF5, truncated HDF5, and an HDF5 file of another kind.
  write("text.h5", "not hdf5");
  EXPECT_THROW(FoldShard::open(path("text.h5")), Error);
  FoldShardWriter ok(path("ok.h5"));
  for (int i = 0; i < 3; ++i) ok.add(random_chain_data(rng, "X" + std::to_string(i), 50));
  ok.close();
  const std::string bytes = test::read_text(path("ok.h5"));
  write("cut.h5", bytes.substr(0, bytes.size() / 2));
  try {
    FoldShard s = FoldShard::open(path("cut.h5"));
    for (int64_t i = 0; i < s.size(); ++i) s.chain(i);
    FAIL() << "a truncated shard read without error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path("cut.h5")), std::string::npos) << e.what();
  }
  EXPECT_THROW(FoldShard::open(path("missing.h5")), Error);
}

TEST_F(StructureDbTest, ExportFromTheDatabase) {
  // The chains have 7, 1 and 12 residues.
  const StructureDb db = StructureDb::open(write("db.dat", encode_db(chains_)));
  std::ofstream(path("ids.txt")) << "# a split file\n9XYZ_B\n\n  12AS_A \n1ABC_n\n";
  const std::vector<std::string> ids = read_chain_ids(path("ids.txt"));
  EXPECT_EQ(ids, (std::vector<std::string>{"9XYZ_B", "12AS_A", "1ABC_n"}));

  std::vector<int64_t> seen;
  ExportOptions opt;
  opt.min_length = 2;
  opt.max_length = 10;
  opt.attributes["split"] = "valid";
  const ExportReport rep = export_fold_shard(db, ids, path("out.h5"), opt, [&](int64_t done) { seen.push_back(done); });
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(rep.chains, 1);  // 12AS_A (7); 9XYZ_B (12) is too long, 1ABC_n (1) too short
  EXPECT_EQ(rep.residues, 7);
  EXPECT_EQ(rep.skipped_long, 1);
  EXPECT_EQ(rep.skipped_short, 1);
  const FoldShard s = FoldShard::open(path("out.h5"));
  EXPECT_EQ(s.ids(), std::vector<std::string>{"12AS_A"});
  EXPECT_EQ(s.attributes().at("source"), path("db.dat"));
  EXPECT_EQ(s.attributes().at("split"), "valid");
  expect_same_chain(s.chain(0), db.chain(0));

  // Export keeps the order of the list.
  opt.min_length = 1;
  opt.max_length = 100;
  export_fold_shard(db, ids, path("all.h5"), opt);
  EXPECT_EQ(list_fold_shard_ids(path("all.h5")), ids);

  try {
    export_fold_shard(db, {"12AS_A", "0000_Z", "0000_Y"}, path("x.h5"));
    FAIL() << "an unknown id was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chain 0000_Z is not in " + path("db.dat") + " (nor are 1 more)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(path("x.h5")));
  EXPECT_THROW(export_fold_shard(db, {"12AS_A", "12AS_A"}, path("x.h5")), Error);
}

}  // namespace
