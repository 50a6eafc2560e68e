// Reader for ProMod3's portable StructureDB (`structure_db.dat`, Debian package promod3-data):
// 21,119 non-redundant PDB chains with backbone coordinates, phi/psi, DSSP and sequence profiles,
// the training data of `wensu fold`. The binary layout (worked out from the bytes; ProMod3's
// source was not available) is specified in /work/shared/docs/promod3-structure-db.md and
// summarised in docs/fold.md.
//
// The file (520 MB) is memory-mapped. open() walks the header, the chain table and the eight
// per-residue arrays once, checks every size and that the walk ends exactly at EOF, and keeps
// where each array starts; chain(i) then decodes one chain in O(length). Every format problem is
// a one-line wensu::Error naming the file and the byte offset, e.g.
//   structure db x.dat: byte 5258253: the file ends inside the backbone array (4561225 x 24 bytes
//   needed, 1000 left): truncated download or unpack?
//
// Decoding (the pitfalls the spec lists):
//   - coordinates are raw * 0.01 - shift: the chain's shift is SUBTRACTED, which puts the atoms
//     in the deposited PDB frame;
//   - there is no CB: ChainData::cb is built from N, CA, C with ideal geometry (ideal_cb);
//   - phi of the first residue and psi of the last are placeholders (-60 deg / -45 deg), masked;
//   - profiles are stored as value / 10000 in the column order ACDEFGHIKLMNPQRSTVWY;
//   - start_resnum is not the PDB author number: match external data by sequence or coordinates.
//
// A StructureDb is cheap to copy (the mapping is shared) and safe to read from many threads.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wensu::fold {

// Column order of the profiles: profile[k * 20 + j] is the frequency of kProfileAlphabet[j].
constexpr const char* kProfileAlphabet = "ACDEFGHIKLMNPQRSTVWY";
constexpr int kProfileSize = 20;
constexpr int kBackboneAtoms = 4;  // N, CA, C, O

// The fields of the file's header that this reader checks (exposed so tests can write files).
constexpr uint32_t kStructureDbMagic = 1234;
constexpr uint32_t kStructureDbVersion = 2;
constexpr std::array<uint32_t, 12> kStructureDbTypeSizes = {4, 4, 2, 8, 2, 6, 88, 40, 24, 6, 4, 1};

// Bits of the header's data-type field: which optional per-residue arrays the writer meant to
// store. The reader trusts the arrays' counts instead (N = present, 0 = absent).
enum StructureDbArray : uint32_t {
  kDihedrals = 1,
  kSolventAccess = 2,
  kResidueDepth = 4,
  kDssp = 8,
  kSequenceProfile = 16,
  kStructureProfile = 32,
};

struct ChainInfo {
  std::string pdb_id;         // 4-character PDB code, upper case ("12AS")
  std::string chain;          // chain name ("A")
  int64_t offset = 0;         // index of the chain's first residue in the per-residue arrays
  int64_t length = 0;         // residues
  int64_t start_resnum = 0;   // SEQRES-like number of the first residue, not the author number
  std::array<float, 3> shift{};  // coordinates are raw * 0.01 - shift
  std::string id() const { return pdb_id + "_" + chain; }  // "12AS_A", unique in the DB
};

// One chain, decoded. L = length(). Optional fields that the file lacks are empty (phi_psi is
// then all zero and fully masked).
struct ChainData {
  std::string id;                     // "PDBID_CHAIN"
  std::string sequence;               // [L] one-letter codes
  std::vector<float> backbone;        // [L, 4, 3] N, CA, C, O in Angstrom, PDB frame
  std::vector<float> cb;              // [L, 3] ideal CB from N, CA, C (also for glycine)
  std::vector<float> phi_psi;         // [L, 2] radians
  std::vector<uint8_t> phi_psi_mask;  // [L, 2] 1 = measured, 0 = end placeholder or absent
  std::string dssp;                   // [L] 8-state DSSP: H E C T S G B I (C = coil)
  std::vector<float> profile;         // [L, 20] sequence profile, columns kProfileAlphabet
  int64_t length() const { return int64_t(sequence.size()); }
};

// The CB that ideal geometry puts on a residue with backbone N, CA, C (the construction of
// trRosetta and AlphaFold): b = CA - N, c = C - CA, a = b x c,
// CB = -0.58273431 a + 0.56802827 b - 0.54067466 c + CA. It gives an L-amino acid's CB, about
// 1.52 Angstrom from CA; computed in double precision.
std::array<float, 3> ideal_cb(const float* n, const float* ca, const float* c);  // each [3]

class StructureDb {
 public:
  // Maps `path` and validates the whole layout (see above). Throws wensu::Error.
  static StructureDb open(const std::string& path);

  int64_t size() const;      // chains
  int64_t residues() const;  // N, over all chains
  const std::string& path() const;
  uint32_t data_flags() const;        // the header's data-type field (StructureDbArray bits)
  bool has(StructureDbArray a) const;  // whether that optional array is stored (count N)

  const ChainInfo& info(int64_t i) const;  // 0 <= i < size()
  ChainData chain(int64_t i) const;
  std::string sequence(int64_t i) const;  // chain(i).sequence without decoding the rest
  // Index of the chain with id "PDBID_CHAIN" (exact case), or -1.
  int64_t find(const std::string& id) const;

  struct Impl;

 private:
  explicit StructureDb(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// `wensu structdb info`: chains, residues, the optional arrays present and a histogram of
// chain lengths.
std::string describe_structure_db(const StructureDb& db);

// Every chain's sequence as FASTA (">PDBID_CHAIN", 60 letters a line), written atomically
// (PATH.tmp.<pid>, then rename), in table order. Returns the number of records.
int64_t write_structure_db_fasta(const StructureDb& db, const std::string& path);

}  // namespace wensu::fold
