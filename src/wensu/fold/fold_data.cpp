// Fold training shards in HDF5, written with the HDF5 C API like io/checkpoint.cpp: failures come
// back as return codes, which become one-line wensu::Errors naming the file. The layout is in
// fold_data.h and docs/fold.md; keep the three in step.
#include "wensu/fold/fold_data.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "wensu/core/check.h"
#include "wensu/io/hdf5.h"
#include "wensu/version.h"

namespace wensu::fold {
namespace {

namespace fs = std::filesystem;

using io::QuietHdf5;
using Id = io::Hdf5Handle;

template <typename... A>
[[noreturn]] void fail(const std::string& path, const A&... a) {
  throw Error(detail::concat("fold shard ", path, ": ", a...));
}

// Per-residue datasets: name, trailing dims (after N), file type, memory type.
struct Field {
  const char* name;
  std::vector<hsize_t> tail;
  hid_t file_type;
  hid_t mem_type;
};

const std::vector<Field>& residue_fields() {
  static const std::vector<Field> f = {
      {"sequence", {}, H5T_STD_U8LE, H5T_NATIVE_UINT8},
      {"backbone", {kBackboneAtoms, 3}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT},
      {"cb", {3}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT},
      {"phi_psi", {2}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT},
      {"phi_psi_mask", {2}, H5T_STD_U8LE, H5T_NATIVE_UINT8},
      {"dssp", {}, H5T_STD_U8LE, H5T_NATIVE_UINT8},
      {"profile", {kProfileSize}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT},
  };
  return f;
}

// ---------------------------------------------------------------- writing

void write_string_attr(const std::string& path, hid_t obj, const std::string& key, const std::string& value) {
  try {
    io::write_string_attribute(obj, key.c_str(), value, key);
  } catch (const Error& e) {
    fail(path, e.what());
  }
}

void write_dataset(const std::string& path, hid_t file, const char* name, const std::vector<hsize_t>& dims,
                   hid_t file_type, hid_t mem_type, const void* data) {
  Id space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
  if (!space.ok()) fail(path, "cannot make the dataspace of '", name, "'");
  Id d(H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (!d.ok()) fail(path, "cannot create dataset '", name, "'");
  hsize_t n = 1;
  for (hsize_t x : dims) n *= x;
  if (n > 0 && H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail(path, "cannot write dataset '", name, "' (disk full?)");
}

void fsync_file(const std::string& path, const std::string& tmp) {
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd < 0) fail(path, "cannot reopen ", tmp, " to sync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(path, "cannot sync ", tmp, ": ", std::strerror(err));
}

// ---------------------------------------------------------------- reading

std::vector<hsize_t> dims_of(const std::string& path, hid_t d, const char* name) {
  Id space(H5Dget_space(d), H5Sclose);
  const int rank = space.ok() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0) fail(path, "cannot read the shape of '", name, "'");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0)
    fail(path, "cannot read the shape of '", name, "'");
  return dims;
}

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string read_string_attr(const std::string& path, hid_t obj, const char* key) {
  try {
    return io::read_string_attribute(obj, key, key);
  } catch (const Error& e) {
    fail(path, e.what());
  }
}

herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* names) {
  static_cast<std::vector<std::string>*>(names)->push_back(name);
  return 0;
}

}  // namespace

// ---------------------------------------------------------------- FoldShardWriter

FoldShardWriter::FoldShardWriter(std::string path) : path_(std::move(path)) {}

void FoldShardWriter::add(const ChainData& c) {
  const size_t L = c.sequence.size();
  auto check = [&](size_t have, size_t per_residue, const char* what) {
    if (have != L * per_residue)
      fail(path_, "chain ", c.id, ": ", what, " holds ", have, " values, expected ", L * per_residue, " (length ", L,
           " x ", per_residue, ")");
  };
  if (c.id.empty()) fail(path_, "a chain has an empty id");
  if (L == 0) fail(path_, "chain ", c.id, " has no residues");
  check(c.backbone.size(), size_t(kBackboneAtoms) * 3, "backbone");
  check(c.cb.size(), 3, "cb");
  check(c.phi_psi.size(), 2, "phi_psi");
  check(c.phi_psi_mask.size(), 2, "phi_psi_mask");
  check(c.dssp.size(), 1, "dssp (the database has no DSSP array?)");
  check(c.profile.size(), kProfileSize, "profile (the database has no sequence profile?)");
  if (!seen_.insert(c.id).second) fail(path_, "chain ", c.id, " is added twice");
  ids_.push_back(c.id);
  offsets_.push_back(offsets_.back() + int64_t(L));
  sequence_ += c.sequence;
  dssp_ += c.dssp;
  backbone_.insert(backbone_.end(), c.backbone.begin(), c.backbone.end());
  cb_.insert(cb_.end(), c.cb.begin(), c.cb.end());
  phi_psi_.insert(phi_psi_.end(), c.phi_psi.begin(), c.phi_psi.end());
  phi_psi_mask_.insert(phi_psi_mask_.end(), c.phi_psi_mask.begin(), c.phi_psi_mask.end());
  profile_.insert(profile_.end(), c.profile.begin(), c.profile.end());
}

void FoldShardWriter::set_attribute(const std::string& key, const std::string& value) {
  if (key.empty() || key == "format" || key == "format_version")
    fail(path_, "attribute name '", key, "' is reserved or empty");
  attrs_[key] = value;
}

void FoldShardWriter::close() {
  QuietHdf5 quiet;
  fs::path dir = fs::path(path_).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(path_, "directory '", dir.string(), "' does not exist");
  const std::string tmp = path_ + ".tmp." + std::to_string(::getpid());
  try {
    {
      Id fapl = io::file_access_properties();
      if (!fapl.ok() || H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_SEMI) < 0)
        fail(path_, "cannot set up file access properties");
      Id file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
      if (!file.ok()) fail(path_, "cannot create ", tmp);
      const hid_t f = file.get();
      write_string_attr(path_, f, "format", kFoldShardFormatName);
      {
        Id space(H5Screate(H5S_SCALAR), H5Sclose);
        Id attr(H5Acreate2(f, "format_version", H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
        const int32_t v = kFoldShardFormatVersion;
        if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT32, &v) < 0)
          fail(path_, "cannot write attribute 'format_version'");
      }
      std::map<std::string, std::string> attrs = attrs_;
      attrs.emplace("wensu_version", WENSU_VERSION);
      attrs.emplace("created", io::utc_timestamp());
      for (const auto& [k, v] : attrs) write_string_attr(path_, f, k, v);

      // Ids as fixed-length strings padded with NULs: h5py and the reader get them in one read.
      size_t width = 1;
      for (const std::string& id : ids_) width = std::max(width, id.size());
      std::string packed(ids_.size() * width, '\0');
      for (size_t i = 0; i < ids_.size(); ++i) std::memcpy(&packed[i * width], ids_[i].data(), ids_[i].size());
      Id stype(H5Tcopy(H5T_C_S1), H5Tclose);
      if (!stype.ok() || H5Tset_size(stype.get(), width) < 0 || H5Tset_strpad(stype.get(), H5T_STR_NULLPAD) < 0)
        fail(path_, "cannot make the string type of 'ids'");
      write_dataset(path_, f, "ids", {hsize_t(ids_.size())}, stype.get(), stype.get(), packed.data());
      write_dataset(path_, f, "offsets", {hsize_t(offsets_.size())}, H5T_STD_I64LE, H5T_NATIVE_INT64,
                    offsets_.data());

      const hsize_t n = hsize_t(sequence_.size());
      const void* data[] = {sequence_.data(), backbone_.data(),     cb_.data(),     phi_psi_.data(),
                            phi_psi_mask_.data(), dssp_.data(), profile_.data()};
      const auto& fields = residue_fields();
      for (size_t k = 0; k < fields.size(); ++k) {
        std::vector<hsize_t> dims{n};
        dims.insert(dims.end(), fields[k].tail.begin(), fields[k].tail.end());
        write_dataset(path_, f, fields[k].name, dims, fields[k].file_type, fields[k].mem_type, data[k]);
      }
      if (file.reset() < 0) fail(path_, "cannot close ", tmp, " (disk full?)");
    }
    fsync_file(path_, tmp);
    if (std::rename(tmp.c_str(), path_.c_str()) != 0)
      fail(path_, "cannot rename ", tmp, " to ", path_, ": ", std::strerror(errno));
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

// ---------------------------------------------------------------- FoldShard

struct FoldShard::Impl {
  std::string path;
  Id file{-1, H5Fclose};
  std::vector<std::string> ids;
  std::vector<int64_t> offsets;
  std::unordered_map<std::string, int64_t> by_id;
  std::map<std::string, std::string> attrs;
  std::vector<Id> datasets;  // residue_fields() order
};

FoldShard::FoldShard(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FoldShard::FoldShard(FoldShard&&) noexcept = default;
FoldShard& FoldShard::operator=(FoldShard&&) noexcept = default;
FoldShard::~FoldShard() = default;

FoldShard FoldShard::open(const std::string& path) {
  QuietHdf5 quiet;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error("fold shard " + path + " not found (or not a file)");
  auto m = std::make_unique<Impl>();
  m->path = path;
  {
    Id fapl = io::file_access_properties();
    m->file = Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
  }
  if (!m->file.ok()) fail(path, "not a readable HDF5 file (corrupt or truncated?)");
  const hid_t f = m->file.get();
  if (H5Aexists(f, "format") <= 0) fail(path, "not a wensu fold shard (no 'format' attribute)");
  const std::string format = read_string_attr(path, f, "format");
  if (format != kFoldShardFormatName)
    fail(path, "not a wensu fold shard (format is '", format, "', expected '", kFoldShardFormatName, "')");
  {
    Id attr(H5Aopen(f, "format_version", H5P_DEFAULT), H5Aclose);
    int64_t v = 0;
    if (!attr.ok() || H5Aread(attr.get(), H5T_NATIVE_INT64, &v) < 0) fail(path, "cannot read 'format_version'");
    if (v > kFoldShardFormatVersion)
      fail(path, "written by a newer wensu: format version ", v, ", this build reads up to ", kFoldShardFormatVersion);
    if (v < 1) fail(path, "invalid format version ", v);
  }
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr_name, &names) < 0)
    fail(path, "cannot list the root attributes");
  for (const std::string& n : names)
    if (n != "format" && n != "format_version") m->attrs[n] = read_string_attr(path, f, n.c_str());

  auto open_dataset = [&](const char* name) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) fail(path, "dataset '", name, "' is missing");
    Id d(H5Dopen2(f, name, H5P_DEFAULT), H5Dclose);
    if (!d.ok()) fail(path, "'", name, "' is not a dataset");
    return d;
  };

  // ids and offsets, whole.
  {
    Id d = open_dataset("ids");
    const auto dims = dims_of(path, d.get(), "ids");
    Id ftype(H5Dget_type(d.get()), H5Tclose);
    if (dims.size() != 1 || !ftype.ok() || H5Tget_class(ftype.get()) != H5T_STRING || H5Tis_variable_str(ftype.get()) > 0)
      fail(path, "'ids' must be a 1-D dataset of fixed-length strings");
    const size_t width = H5Tget_size(ftype.get());
    std::string packed(size_t(dims[0]) * width, '\0');
    if (!packed.empty() && H5Dread(d.get(), ftype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, packed.data()) < 0)
      fail(path, "cannot read 'ids' (corrupt or truncated?)");
    for (size_t i = 0; i < dims[0]; ++i) {
      std::string id = packed.substr(i * width, width);
      id.resize(std::min(id.size(), id.find('\0')));
      if (!m->by_id.emplace(id, int64_t(i)).second) fail(path, "chain id '", id, "' appears twice");
      m->ids.push_back(std::move(id));
    }
  }
  {
    Id d = open_dataset("offsets");
    const auto dims = dims_of(path, d.get(), "offsets");
    if (dims.size() != 1 || dims[0] != m->ids.size() + 1)
      fail(path, "'offsets' has shape ", shape_text(dims), ", expected [", m->ids.size() + 1, "] (chains + 1)");
    m->offsets.resize(dims[0]);
    if (H5Dread(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->offsets.data()) < 0)
      fail(path, "cannot read 'offsets' (corrupt or truncated?)");
    if (m->offsets[0] != 0) fail(path, "'offsets' must start at 0, not ", m->offsets[0]);
    for (size_t i = 0; i + 1 < m->offsets.size(); ++i)
      if (m->offsets[i + 1] <= m->offsets[i])
        fail(path, "'offsets' must increase: chain ", i, " (", m->ids[i], ") spans [", m->offsets[i], ", ",
             m->offsets[i + 1], ")");
  }
  const hsize_t n = hsize_t(m->offsets.back());
  for (const Field& fd : residue_fields()) {
    Id d = open_dataset(fd.name);
    std::vector<hsize_t> want{n};
    want.insert(want.end(), fd.tail.begin(), fd.tail.end());
    const auto dims = dims_of(path, d.get(), fd.name);
    if (dims != want)
      fail(path, "dataset '", fd.name, "' has shape ", shape_text(dims), ", expected ", shape_text(want),
           " (offsets end at ", n, " residues)");
    m->datasets.push_back(std::move(d));
  }
  return FoldShard(std::move(m));
}

const std::string& FoldShard::path() const { return impl_->path; }
int64_t FoldShard::size() const { return int64_t(impl_->ids.size()); }
int64_t FoldShard::residues() const { return impl_->offsets.back(); }
const std::vector<std::string>& FoldShard::ids() const { return impl_->ids; }
const std::map<std::string, std::string>& FoldShard::attributes() const { return impl_->attrs; }

int64_t FoldShard::length(int64_t i) const {
  WENSU_CHECK(i >= 0 && i < size(), "fold shard ", impl_->path, ": chain index ", i, " out of range [0, ", size(), ")");
  return impl_->offsets[size_t(i) + 1] - impl_->offsets[size_t(i)];
}

int64_t FoldShard::find(const std::string& id) const {
  auto it = impl_->by_id.find(id);
  return it == impl_->by_id.end() ? -1 : it->second;
}

ChainData FoldShard::chain(const std::string& id) const {
  const int64_t i = find(id);
  WENSU_CHECK(i >= 0, "fold shard ", impl_->path, " has no chain '", id, "'");
  return chain(i);
}

ChainData FoldShard::chain(int64_t i) const {
  QuietHdf5 quiet;
  const hsize_t L = hsize_t(length(i));
  const hsize_t row0 = hsize_t(impl_->offsets[size_t(i)]);
  ChainData c;
  c.id = impl_->ids[size_t(i)];
  c.sequence.resize(L);
  c.backbone.resize(L * kBackboneAtoms * 3);
  c.cb.resize(L * 3);
  c.phi_psi.resize(L * 2);
  c.phi_psi_mask.resize(L * 2);
  c.dssp.resize(L);
  c.profile.resize(L * kProfileSize);
  void* out[] = {c.sequence.data(), c.backbone.data(),     c.cb.data(),   c.phi_psi.data(),
                 c.phi_psi_mask.data(), c.dssp.data(), c.profile.data()};
  const auto& fields = residue_fields();
  for (size_t k = 0; k < fields.size(); ++k) {
    // One hyperslab of L rows (and every trailing element) per dataset.
    const hid_t d = impl_->datasets[k].get();
    std::vector<hsize_t> start(1 + fields[k].tail.size(), 0), count{L};
    start[0] = row0;
    count.insert(count.end(), fields[k].tail.begin(), fields[k].tail.end());
    Id fspace(H5Dget_space(d), H5Sclose);
    Id mspace(H5Screate_simple(int(count.size()), count.data(), nullptr), H5Sclose);
    if (!fspace.ok() || !mspace.ok() ||
        H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0 ||
        H5Dread(d, fields[k].mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, out[k]) < 0)
      fail(impl_->path, "cannot read '", fields[k].name, "' of chain ", c.id, " (corrupt or truncated?)");
  }
  return c;
}

// ---------------------------------------------------------------- helpers

std::vector<std::string> list_fold_shard_ids(const std::string& path) { return FoldShard::open(path).ids(); }

std::vector<std::string> read_chain_ids(const std::string& path) {
  std::ifstream in(path);
  WENSU_CHECK(in, "cannot read chain id list ", path, ": ", std::strerror(errno));
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find_first_not_of(" \t\r");
    if (a == std::string::npos || line[a] == '#') continue;
    const size_t b = line.find_last_not_of(" \t\r");
    ids.push_back(line.substr(a, b - a + 1));
  }
  return ids;
}

ExportReport export_fold_shard(const StructureDb& db, const std::vector<std::string>& ids, const std::string& out,
                               const ExportOptions& opt, const std::function<void(int64_t done)>& progress) {
  WENSU_CHECK(opt.min_length >= 1 && opt.min_length <= opt.max_length, "export: need 1 <= min length (",
              opt.min_length, ") <= max length (", opt.max_length, ")");
  // Resolve every id first: a typo should fail before minutes of work.
  std::vector<int64_t> index(ids.size());
  std::vector<std::string> missing;
  std::unordered_set<std::string> seen;
  for (size_t k = 0; k < ids.size(); ++k) {
    index[k] = db.find(ids[k]);
    if (index[k] < 0) missing.push_back(ids[k]);
    WENSU_CHECK(seen.insert(ids[k]).second, "export: chain ", ids[k], " is listed twice");
  }
  if (!missing.empty())
    throw Error(detail::concat("export: chain ", missing.front(), " is not in ", db.path(),
                               missing.size() > 1 ? detail::concat(" (nor are ", missing.size() - 1, " more)") : "",
                               "; ids are PDBID_CHAIN as in `wensu structdb fasta`"));
  FoldShardWriter w(out);
  for (const auto& [k, v] : opt.attributes) w.set_attribute(k, v);
  w.set_attribute("source", db.path());
  ExportReport rep;
  for (size_t k = 0; k < ids.size(); ++k) {
    const int64_t L = db.info(index[k]).length;
    if (L < opt.min_length)
      ++rep.skipped_short;
    else if (L > opt.max_length)
      ++rep.skipped_long;
    else
      w.add(db.chain(index[k]));
    if (progress) progress(int64_t(k) + 1);
  }
  w.close();
  rep.chains = w.size();
  rep.residues = w.residues();
  return rep;
}

}  // namespace wensu::fold
