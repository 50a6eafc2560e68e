// ProMod3 StructureDB reader. The layout is in /work/shared/docs/promod3-structure-db.md (the
// section numbers below refer to it); docs/fold.md summarises it.
#include "wensu/fold/structure_db.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "wensu/core/check.h"

namespace wensu::fold {

// The file is little-endian and read with memcpy into native integers.
static_assert(std::endian::native == std::endian::little, "the StructureDB reader assumes a little-endian host");

namespace {

// Per-residue arrays in file order (§2): the sequence and the backbone, then the optional ones
// in the order of their data-type bits.
enum ArrayIndex { kSeq, kBackbone, kDih, kAcc, kDepth, kDsspArr, kProf, kStructProf, kNumArrays };
constexpr const char* kArrayNames[kNumArrays] = {"sequence",   "backbone", "dihedral",   "solvent accessibility",
                                                 "depth",      "DSSP",     "sequence profile", "structure profile"};
constexpr uint64_t kElementBytes[kNumArrays] = {1, 24, 4, 2, 2, 1, 40, 40};

// Smallest chain record: two empty strings (4 + 4), offset 4, size 2, start 2, shift 12.
constexpr uint64_t kMinChainRecord = 28;

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Sequential reads with bounds checks; every error names the file and the byte offset.
struct Cursor {
  const std::string& path;
  const uint8_t* data;
  uint64_t size;
  uint64_t pos = 0;

  template <typename... A>
  [[noreturn]] void fail_at(uint64_t at, const A&... a) const {
    throw Error(detail::concat("structure db ", path, ": byte ", at, ": ", a...));
  }
  void need(uint64_t n, const std::string& what) const {
    if (size - pos < n)
      fail_at(pos, "the file ends inside ", what, " (", n, " bytes needed, ", size - pos,
              " left): truncated download or unpack?");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v = load<T>(data + pos);
    pos += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    const uint64_t at = pos;
    const uint32_t n = read<uint32_t>(what + " length");
    // PDB codes and chain names are a few characters; a huge length means we are lost.
    if (n > 64) fail_at(at, what, " claims ", n, " characters (at most 64 expected): not a StructureDB or corrupt");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data + pos), n);
    pos += n;
    return s;
  }
};

// A read-only mapping of the whole file, unmapped with the last StructureDb that uses it.
struct Mapping {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (data) ::munmap(const_cast<uint8_t*>(data), size);
  }
};

}  // namespace

struct StructureDb::Impl {
  std::string path;
  Mapping map;
  uint32_t flags = 0;
  int64_t residues = 0;
  std::vector<ChainInfo> chains;
  std::unordered_map<std::string, int64_t> by_id;
  std::array<int64_t, kNumArrays> start{};  // byte offset of each array's first element; -1 absent
};

std::array<float, 3> ideal_cb(const float* n, const float* ca, const float* c) {
  double b[3], cc[3];
  for (int d = 0; d < 3; ++d) {
    b[d] = double(ca[d]) - double(n[d]);
    cc[d] = double(c[d]) - double(ca[d]);
  }
  const double a[3] = {b[1] * cc[2] - b[2] * cc[1], b[2] * cc[0] - b[0] * cc[2], b[0] * cc[1] - b[1] * cc[0]};
  std::array<float, 3> cb;
  for (int d = 0; d < 3; ++d)
    cb[d] = float(-0.58273431 * a[d] + 0.56802827 * b[d] - 0.54067466 * cc[d] + double(ca[d]));
  return cb;
}

StructureDb StructureDb::open(const std::string& path) {
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw Error(detail::concat("structure db ", path, ": cannot open: ", std::strerror(errno),
                                 " (get it with scripts/data/make-structure-data.sh)"));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw Error(detail::concat("structure db ", path, ": not a regular file"));
    }
    if (st.st_size == 0) {
      ::close(fd);
      throw Error(detail::concat("structure db ", path, ": the file is empty"));
    }
    void* p = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);  // the mapping keeps the file open
    if (p == MAP_FAILED) throw Error(detail::concat("structure db ", path, ": cannot map: ", std::strerror(err)));
    impl->map.data = static_cast<const uint8_t*>(p);
    impl->map.size = uint64_t(st.st_size);
  }
  Cursor cur{path, impl->map.data, impl->map.size};

  // §2 header: magic, version, type sizes and check values, then the data-type bits.
  const uint32_t magic = cur.read<uint32_t>("the header");
  if (magic != kStructureDbMagic)
    cur.fail_at(0, "magic number is ", magic, ", expected ", kStructureDbMagic, ": not a ProMod3 StructureDB");
  const uint32_t version = cur.read<uint32_t>("the header");
  if (version != kStructureDbVersion)
    cur.fail_at(4, "format version ", version, ", this reader knows version ", kStructureDbVersion, " only");
  for (size_t k = 0; k < kStructureDbTypeSizes.size(); ++k) {
    const uint64_t at = cur.pos;
    const uint32_t v = cur.read<uint32_t>("the header");
    if (v != kStructureDbTypeSizes[k])
      cur.fail_at(at, "type-size check ", k, " is ", v, ", expected ", kStructureDbTypeSizes[k],
                  ": written for another platform or by another ProMod3 version");
  }
  {
    const uint64_t at = cur.pos;
    const float f = cur.read<float>("the header");
    const uint8_t u8 = cur.read<uint8_t>("the header");
    const int16_t i16 = cur.read<int16_t>("the header");
    const uint64_t u64 = cur.read<uint64_t>("the header");
    const uint16_t u16 = cur.read<uint16_t>("the header");
    if (f != 1.0f || u8 != 1 || i16 != 1 || u64 != 1 || u16 != 1)
      cur.fail_at(at, "the check values (float, u8, i16, u64, u16) are not all 1: wrong byte order or corrupt header");
  }
  impl->flags = cur.read<uint32_t>("the header");
  const uint64_t count_at = cur.pos;
  const uint64_t n_chains = cur.read<uint64_t>("the header");
  if (n_chains > (cur.size - cur.pos) / kMinChainRecord)
    cur.fail_at(count_at, "the header claims ", n_chains, " chains, more than the file can hold: truncated or corrupt");

  // §2.1 chain table. The chains tile the residue arrays in table order.
  impl->chains.reserve(n_chains);
  int64_t next_offset = 0;
  for (uint64_t i = 0; i < n_chains; ++i) {
    const uint64_t at = cur.pos;
    const std::string what = detail::concat("chain record ", i);
    ChainInfo c;
    c.pdb_id = cur.read_string(what);
    c.chain = cur.read_string(what);
    c.offset = cur.read<uint32_t>(what);
    c.length = cur.read<uint16_t>(what);
    c.start_resnum = cur.read<uint16_t>(what);
    for (float& s : c.shift) s = cur.read<float>(what);
    if (c.pdb_id.empty() || c.chain.empty()) cur.fail_at(at, what, " has an empty PDB id or chain name");
    if (c.offset != next_offset)
      cur.fail_at(at, what, " (", c.id(), ") starts at residue ", c.offset, ", expected ", next_offset,
                  " (chains must follow each other in the residue arrays)");
    if (c.length == 0) cur.fail_at(at, what, " (", c.id(), ") has no residues");
    next_offset += c.length;
    if (!impl->by_id.emplace(c.id(), int64_t(i)).second)
      cur.fail_at(at, what, ": chain id ", c.id(), " appears twice");
    impl->chains.push_back(std::move(c));
  }
  impl->residues = next_offset;
  const uint64_t n = uint64_t(next_offset);

  // §2 per-residue arrays: u64 count, then count fixed-size elements. The sequence and the
  // backbone must cover every residue; the optional arrays are complete or empty (§2.3).
  for (int a = 0; a < kNumArrays; ++a) {
    const uint64_t at = cur.pos;
    const std::string what = detail::concat("the ", kArrayNames[a], " array");
    const uint64_t count = cur.read<uint64_t>(what + " count");
    const bool optional = a >= kDih;
    if (count != n && !(optional && count == 0))
      cur.fail_at(at, kArrayNames[a], " array holds ", count, " residues, but the chain table needs ", n,
                  optional ? " (or 0 when absent)" : "", ": truncated or not a StructureDB?");
    if (count > (cur.size - cur.pos) / kElementBytes[a])
      cur.fail_at(cur.pos, "the file ends inside ", what, " (", count, " x ", kElementBytes[a], " bytes needed, ",
                  cur.size - cur.pos, " left): truncated download or unpack?");
    impl->start[a] = count == 0 ? -1 : int64_t(cur.pos);
    cur.pos += count * kElementBytes[a];
  }
  if (cur.pos != cur.size)
    cur.fail_at(cur.pos, cur.size - cur.pos, " bytes after the last array (expected the end of the file): not a StructureDB of this version, or two files concatenated");

  // Every residue must be a letter: the sequence is what tokenizers and FASTA see.
  const uint8_t* seq = impl->map.data + impl->start[kSeq];
  for (const ChainInfo& c : impl->chains)
    for (int64_t k = 0; k < c.length; ++k) {
      const uint8_t ch = seq[c.offset + k];
      if (ch < 'A' || ch > 'Z')
        cur.fail_at(uint64_t(impl->start[kSeq] + c.offset + k), "residue ", k, " of chain ", c.id(),
                    " is byte ", int(ch), ", not an upper-case letter: corrupt sequence array");
    }
  return StructureDb(std::move(impl));
}

int64_t StructureDb::size() const { return int64_t(impl_->chains.size()); }
int64_t StructureDb::residues() const { return impl_->residues; }
const std::string& StructureDb::path() const { return impl_->path; }
uint32_t StructureDb::data_flags() const { return impl_->flags; }

bool StructureDb::has(StructureDbArray a) const {
  for (int k = 0; k < 6; ++k)
    if (uint32_t(a) == (1u << k)) return impl_->start[kDih + k] >= 0;
  throw Error(detail::concat("StructureDb::has: ", uint32_t(a), " is not one StructureDbArray bit"));
}

const ChainInfo& StructureDb::info(int64_t i) const {
  WENSU_CHECK(i >= 0 && i < size(), "structure db ", impl_->path, ": chain index ", i, " out of range [0, ", size(), ")");
  return impl_->chains[size_t(i)];
}

int64_t StructureDb::find(const std::string& id) const {
  auto it = impl_->by_id.find(id);
  return it == impl_->by_id.end() ? -1 : it->second;
}

std::string StructureDb::sequence(int64_t i) const {
  const ChainInfo& c = info(i);
  return std::string(reinterpret_cast<const char*>(impl_->map.data + impl_->start[kSeq] + c.offset), size_t(c.length));
}

ChainData StructureDb::chain(int64_t i) const {
  const ChainInfo& c = info(i);
  const Impl& m = *impl_;
  const size_t L = size_t(c.length);
  auto at = [&](int a, size_t k) { return m.map.data + m.start[a] + (uint64_t(c.offset) + k) * kElementBytes[a]; };
  ChainData out;
  out.id = c.id();
  out.sequence.assign(reinterpret_cast<const char*>(at(kSeq, 0)), L);

  // §2.2: 12 int16 per residue at 0.01 Angstrom, N CA C O; the shift is subtracted.
  out.backbone.resize(L * 12);
  for (size_t k = 0; k < L; ++k) {
    const uint8_t* p = at(kBackbone, k);
    for (int j = 0; j < 12; ++j)
      out.backbone[k * 12 + j] = float(double(load<int16_t>(p + 2 * j)) * 0.01 - double(c.shift[j % 3]));
  }
  out.cb.resize(L * 3);
  for (size_t k = 0; k < L; ++k) {
    const float* r = &out.backbone[k * 12];
    const std::array<float, 3> cb = ideal_cb(r, r + 3, r + 6);
    std::copy(cb.begin(), cb.end(), &out.cb[k * 3]);
  }

  // §2.3: radians = value / 1000; the first phi and the last psi are placeholders.
  out.phi_psi.assign(L * 2, 0.0f);
  out.phi_psi_mask.assign(L * 2, 0);
  if (m.start[kDih] >= 0) {
    for (size_t k = 0; k < L; ++k) {
      const uint8_t* p = at(kDih, k);
      for (int j = 0; j < 2; ++j) out.phi_psi[k * 2 + j] = float(double(load<int16_t>(p + 2 * j)) / 1000.0);
      out.phi_psi_mask[k * 2] = k > 0;
      out.phi_psi_mask[k * 2 + 1] = k + 1 < L;
    }
  }
  if (m.start[kDsspArr] >= 0) out.dssp.assign(reinterpret_cast<const char*>(at(kDsspArr, 0)), L);
  if (m.start[kProf] >= 0) {
    out.profile.resize(L * kProfileSize);
    for (size_t k = 0; k < L; ++k) {
      const uint8_t* p = at(kProf, k);
      for (int j = 0; j < kProfileSize; ++j)
        out.profile[k * kProfileSize + j] = float(double(load<int16_t>(p + 2 * j)) / 10000.0);
    }
  }
  return out;
}

std::string describe_structure_db(const StructureDb& db) {
  std::ostringstream os;
  std::vector<int64_t> lengths;
  std::set<std::string> entries;
  lengths.reserve(size_t(db.size()));
  for (int64_t i = 0; i < db.size(); ++i) {
    lengths.push_back(db.info(i).length);
    entries.insert(db.info(i).pdb_id);
  }
  std::sort(lengths.begin(), lengths.end());
  os << "structure db " << db.path() << "\n";
  os << "  chains      " << with_commas(db.size()) << " (" << with_commas(int64_t(entries.size()))
     << " PDB entries)\n";
  os << "  residues    " << with_commas(db.residues()) << "\n";
  os << "  arrays      sequence, backbone";
  static const std::pair<StructureDbArray, const char*> kOptional[] = {
      {kDihedrals, "phi/psi"}, {kSolventAccess, "solvent accessibility"}, {kResidueDepth, "depth"},
      {kDssp, "DSSP"},         {kSequenceProfile, "sequence profile"},    {kStructureProfile, "structure profile"}};
  for (const auto& [bit, name] : kOptional)
    if (db.has(bit)) os << ", " << name;
  os << "\n";
  if (lengths.empty()) return os.str();
  double mean = 0;
  for (int64_t l : lengths) mean += double(l);
  mean /= double(lengths.size());
  char buf[160];
  std::snprintf(buf, sizeof buf, "  length      min %lld, median %lld, mean %.0f, max %lld\n", (long long)lengths.front(),
                (long long)lengths[lengths.size() / 2], mean, (long long)lengths.back());
  os << buf << "  length histogram\n";
  const int64_t edges[] = {0, 30, 50, 100, 150, 200, 300, 400, 500, 750, 1000, INT64_MAX};
  for (size_t b = 0; b + 1 < std::size(edges); ++b) {
    const auto lo = std::lower_bound(lengths.begin(), lengths.end(), edges[b]);
    const auto hi = std::lower_bound(lengths.begin(), lengths.end(), edges[b + 1]);
    const int64_t count = hi - lo;
    const double pct = 100.0 * double(count) / double(lengths.size());
    const std::string label = edges[b + 1] == INT64_MAX ? detail::concat(">= ", edges[b])
                              : edges[b] == 0           ? detail::concat("< ", edges[b + 1])
                                                        : detail::concat(edges[b], "-", edges[b + 1] - 1);
    std::snprintf(buf, sizeof buf, "    %-10s %8s %5.1f%%  %s\n", label.c_str(), with_commas(count).c_str(), pct,
                  std::string(size_t(pct * 2 + 0.5), '#').c_str());
    os << buf;
  }
  return os.str();
}

int64_t write_structure_db_fasta(const StructureDb& db, const std::string& path) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    WENSU_CHECK(out, "cannot write ", path, ": cannot create ", tmp, ": ", std::strerror(errno));
    for (int64_t i = 0; i < db.size(); ++i) {
      const ChainInfo& c = db.info(i);
      const std::string seq = db.sequence(i);
      out << '>' << c.id() << '\n';
      for (size_t k = 0; k < seq.size(); k += 60) out << std::string_view(seq).substr(k, 60) << '\n';
    }
    out.flush();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw Error(detail::concat("cannot write ", path, ": write to ", tmp, " failed (disk full?)"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw Error(detail::concat("cannot write ", path, ": cannot rename ", tmp, ": ", std::strerror(err)));
  }
  return db.size();
}

}  // namespace wensu::fold
