// HDF5 checkpoints, written with the HDF5 C API: it reports failures as return codes, which we
// turn into one-line wensu::Errors naming the file, and it is stable across HDF5 1.10 - 1.14.
// The layout is described in docs/checkpoint-format.md; keep the two in step.
#include "wensu/io/checkpoint.h"
#include "wensu/io/hdf5.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "wensu/core/check.h"
#include "wensu/version.h"

namespace wensu::io {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- HDF5 plumbing

using Handle = Hdf5Handle;

// Errors while writing: "cannot write checkpoint PATH: ...".
struct Writer {
  std::string path;
  template <typename... A>
  [[noreturn]] void fail(const A&... a) const {
    throw Error(detail::concat("cannot write checkpoint ", path, ": ", a...));
  }
};

// Errors while reading: "checkpoint PATH: ...".
struct Reader {
  std::string path;
  template <typename... A>
  [[noreturn]] void fail(const A&... a) const {
    throw Error(detail::concat("checkpoint ", path, ": ", a...));
  }
};

// File and memory types of each dtype. The half types have no HDF5 1.10 float type, so their
// bits are stored as uint16 and the `dtype` attribute says how to read them.
hid_t file_type(DType t) {
  switch (t) {
    case DType::f32: return H5T_IEEE_F32LE;
    case DType::f64: return H5T_IEEE_F64LE;
    case DType::bf16:
    case DType::f16: return H5T_STD_U16LE;
    case DType::i64: return H5T_STD_I64LE;
  }
  throw Error("checkpoint: unknown dtype");
}

hid_t memory_type(DType t) {
  switch (t) {
    case DType::f32: return H5T_NATIVE_FLOAT;
    case DType::f64: return H5T_NATIVE_DOUBLE;
    case DType::bf16:
    case DType::f16: return H5T_NATIVE_UINT16;
    case DType::i64: return H5T_NATIVE_INT64;
  }
  throw Error("checkpoint: unknown dtype");
}

// ---------------------------------------------------------------- small helpers

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string human_bytes(int64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

// fsync a file by path: H5Fclose hands the data to the kernel, this makes it durable before the
// rename publishes it (otherwise a power cut could leave a renamed but empty file).
void fsync_path(const Writer& w, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) w.fail("cannot reopen ", path, " to sync it: ", std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) w.fail("cannot sync ", path, ": ", std::strerror(err));
}

// Makes the rename itself durable. Best effort: the checkpoint is already complete and in place,
// and some filesystems refuse fsync on directories.
void fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// ---------------------------------------------------------------- writing

void write_string_attr(const Writer& w, hid_t obj, const std::string& name, const std::string& value,
                       const std::string& where) {
  try {
    write_string_attribute(obj, name.c_str(), value, where);
  } catch (const Error& e) {
    w.fail(e.what());
  }
}

void write_int_attr(const Writer& w, hid_t obj, const char* name, int64_t value, hid_t ftype) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate2(obj, name, ftype, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    w.fail("cannot write attribute '", name, "'");
}

// Groups track link creation order so a load returns tensors in the order they were saved.
Handle create_group(const Writer& w, hid_t parent, const char* name) {
  Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  if (!gcpl.ok() ||
      H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0)
    w.fail("cannot set up group '", name, "'");
  Handle g(H5Gcreate2(parent, name, H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) w.fail("cannot create group '", name, "'");
  return g;
}

// One dataset: the tensor's shape as the dataspace (scalar for shape []), its dtype as the HDF5
// type plus a `dtype` attribute, contiguous and uncompressed (checkpoints are written often).
void write_tensor(const Writer& w, hid_t group, hid_t lcpl, const std::string& section,
                  const NamedTensor& nt) {
  const std::string link = escape_tensor_name(nt.name);
  const std::string where = section + "/" + link;
  if (!nt.tensor.defined()) w.fail("tensor '", nt.name, "' in ", section, " is undefined");
  // detach(): the copy to a contiguous CPU tensor must not be recorded by autograd.
  Tensor t = nt.tensor.detach().to(Device::cpu).contiguous();
  std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                            : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
               H5Sclose);
  if (!space.ok()) w.fail("cannot make a dataspace of shape ", shape_str(t.shape()), " for '", where, "'");
  Handle d(H5Dcreate2(group, link.c_str(), file_type(t.dtype()), space.get(), lcpl, H5P_DEFAULT,
                      H5P_DEFAULT),
           H5Dclose);
  if (!d.ok()) w.fail("cannot create dataset '", where, "'");
  if (t.numel() > 0 &&
      H5Dwrite(d.get(), memory_type(t.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()) < 0)
    w.fail("cannot write dataset '", where, "' (disk full?)");
  write_string_attr(w, d.get(), "dtype", dtype_name(t.dtype()), where + ".dtype");
}

void write_section(const Writer& w, hid_t root, hid_t lcpl, const char* section,
                   const std::vector<NamedTensor>& tensors) {
  Handle g = create_group(w, root, section);
  for (const NamedTensor& nt : tensors) write_tensor(w, g.get(), lcpl, section, nt);
}

void write_rng(const Writer& w, hid_t root, hid_t lcpl,
               const std::map<std::string, GeneratorState>& rng) {
  Handle g = create_group(w, root, "rng");
  const hsize_t two = 2;
  for (const auto& [name, state] : rng) {
    const std::string link = escape_tensor_name(name);
    Handle space(H5Screate_simple(1, &two, nullptr), H5Sclose);
    Handle d(H5Dcreate2(g.get(), link.c_str(), H5T_STD_U64LE, space.get(), lcpl, H5P_DEFAULT,
                        H5P_DEFAULT),
             H5Dclose);
    const uint64_t v[2] = {state.seed, state.offset};
    if (!d.ok() || H5Dwrite(d.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
      w.fail("cannot write rng state '", name, "'");
  }
}

void write_file(const Writer& w, const std::string& tmp, const Checkpoint& ck) {
  // CLOSE_SEMI makes H5Fclose fail, instead of silently deferring, if an object is still open.
  Handle fapl = file_access_properties();
  if (!fapl.ok() || H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_SEMI) < 0)
    w.fail("cannot set up file access properties");
  Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
  if (!file.ok()) w.fail("cannot create ", tmp);
  {
    const hid_t root = file.get();
    Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);  // tensor names are UTF-8
    if (!lcpl.ok() || H5Pset_char_encoding(lcpl.get(), H5T_CSET_UTF8) < 0)
      w.fail("cannot set up link properties");

    write_string_attr(w, root, "format", kCheckpointFormatName, "format");
    write_int_attr(w, root, "format_version", kCheckpointFormatVersion, H5T_STD_I32LE);
    write_int_attr(w, root, "step", ck.step, H5T_STD_I64LE);
    write_string_attr(w, root, "model_config", ck.model_config, "model_config");
    write_string_attr(w, root, "train_config", ck.train_config, "train_config");

    std::map<std::string, std::string> meta = ck.meta;
    meta.emplace("wensu_version", WENSU_VERSION);  // emplace: a caller's value wins
    meta.emplace("created", utc_timestamp());
    Handle mg = create_group(w, root, "meta");
    for (const auto& [k, v] : meta) write_string_attr(w, mg.get(), k, v, "meta/" + k);

    write_section(w, root, lcpl.get(), "params", ck.params);
    write_section(w, root, lcpl.get(), "optimizer", ck.optimizer);
    write_section(w, root, lcpl.get(), "extra", ck.extra);
    write_rng(w, root, lcpl.get(), ck.rng);
  }
  if (H5Fflush(file.get(), H5F_SCOPE_LOCAL) < 0) w.fail("cannot flush ", tmp, " (disk full?)");
  if (file.reset() < 0) w.fail("cannot close ", tmp, " (disk full?)");
}

// Names become HDF5 link names: they must be non-empty and unique within their group.
void check_names(const Writer& w, const char* section, const std::vector<NamedTensor>& ts) {
  std::set<std::string> seen;
  for (const NamedTensor& nt : ts) {
    if (nt.name.empty()) w.fail("a tensor in ", section, " has an empty name");
    if (!seen.insert(nt.name).second) w.fail("tensor '", nt.name, "' appears twice in ", section);
  }
}

// ---------------------------------------------------------------- reading

std::string read_string_attr(const Reader& r, hid_t obj, const char* name, const std::string& where) {
  try {
    return read_string_attribute(obj, name, where);
  } catch (const Error& e) {
    r.fail(e.what());
  }
}

int64_t read_int_attr(const Reader& r, hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) r.fail("missing attribute '", name, "'");
  Handle attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  Handle ftype(H5Aget_type(attr.get()), H5Tclose);
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (!ftype.ok() || H5Tget_class(ftype.get()) != H5T_INTEGER ||
      H5Sget_simple_extent_npoints(space.get()) != 1)
    r.fail("attribute '", name, "' is not a single integer");
  int64_t v = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &v) < 0) r.fail("cannot read attribute '", name, "'");
  return v;
}

std::string read_required_string(const Reader& r, hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) r.fail("missing attribute '", name, "'");
  return read_string_attr(r, obj, name, name);
}

// An optional group: absent means empty (a section with nothing in it).
std::optional<Handle> open_group(const Reader& r, hid_t root, const char* name) {
  if (H5Lexists(root, name, H5P_DEFAULT) <= 0) return std::nullopt;
  Handle g(H5Gopen2(root, name, H5P_DEFAULT), H5Gclose);
  if (!g.ok()) r.fail("'", name, "' is not a group");
  return g;
}

// Link names in creation order when the group tracks it (ours do), else in name order.
std::vector<std::string> list_links(const Reader& r, hid_t g, const char* where) {
  H5G_info_t info;
  if (H5Gget_info(g, &info) < 0) r.fail("cannot list group '", where, "'");
  H5_index_t index = H5_INDEX_NAME;
  Handle gcpl(H5Gget_create_plist(g), H5Pclose);
  unsigned flags = 0;
  if (gcpl.ok() && H5Pget_link_creation_order(gcpl.get(), &flags) >= 0 &&
      (flags & H5P_CRT_ORDER_INDEXED))
    index = H5_INDEX_CRT_ORDER;
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = H5Lget_name_by_idx(g, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) r.fail("cannot list group '", where, "'");
    std::string name(size_t(n) + 1, '\0');
    H5Lget_name_by_idx(g, ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(size_t(n));
    names.push_back(std::move(name));
  }
  return names;
}

std::string type_description(hid_t ftype) {
  const size_t bits = H5Tget_size(ftype) * 8;
  switch (H5Tget_class(ftype)) {
    case H5T_FLOAT: return detail::concat(bits, "-bit float");
    case H5T_INTEGER:
      return detail::concat(H5Tget_sign(ftype) == H5T_SGN_NONE ? "unsigned " : "", bits,
                            "-bit integer");
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    default: return "non-numeric type";
  }
}

// The wensu dtype of a dataset: its `dtype` attribute, checked against the HDF5 type. Datasets
// without the attribute (written by other tools) get one inferred from the HDF5 type.
DType dataset_dtype(const Reader& r, hid_t d, hid_t ftype, const std::string& where) {
  const H5T_class_t cls = H5Tget_class(ftype);
  const size_t size = H5Tget_size(ftype);
  if (H5Aexists(d, "dtype") > 0) {
    const std::string name = read_string_attr(r, d, "dtype", where + ".dtype");
    DType t = DType::f32;
    try {
      t = dtype_from_name(name);
    } catch (const Error&) {
      r.fail("dataset '", where, "' has unknown dtype '", name, "'");
    }
    const bool fits = (t == DType::bf16 || t == DType::f16) ? (cls == H5T_INTEGER && size == 2)
                      : t == DType::i64                     ? cls == H5T_INTEGER
                                                            : cls == H5T_FLOAT;
    if (!fits) r.fail("dataset '", where, "' is marked ", name, " but stores ", type_description(ftype));
    return t;
  }
  if (cls == H5T_FLOAT && size == 4) return DType::f32;
  if (cls == H5T_FLOAT && size == 8) return DType::f64;
  if (cls == H5T_INTEGER) return DType::i64;
  r.fail("dataset '", where, "' stores ", type_description(ftype), ", which wensu cannot read");
}

Shape dataset_shape(const Reader& r, hid_t space, const std::string& where) {
  switch (H5Sget_simple_extent_type(space)) {
    case H5S_SCALAR: return {};
    case H5S_SIMPLE: {
      const int rank = H5Sget_simple_extent_ndims(space);
      std::vector<hsize_t> dims(size_t(std::max(rank, 0)));
      if (rank < 0 || H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0)
        r.fail("cannot read the shape of dataset '", where, "'");
      return Shape(dims.begin(), dims.end());
    }
    default: r.fail("dataset '", where, "' has no shape (null dataspace)");
  }
}

// A contiguous dataset that was created but never (fully) written reads back as fill values
// without any HDF5 error; its allocated size gives it away. Chunked datasets (possibly
// compressed, from other tools) have no fixed size to compare against.
void check_storage(const Reader& r, hid_t d, hid_t ftype, const std::string& where,
                   const Shape& shape, DType dtype) {
  Handle dcpl(H5Dget_create_plist(d), H5Pclose);
  const H5D_layout_t layout = dcpl.ok() ? H5Pget_layout(dcpl.get()) : H5D_LAYOUT_ERROR;
  if (layout != H5D_CONTIGUOUS && layout != H5D_COMPACT) return;
  const hsize_t have = H5Dget_storage_size(d);
  const hsize_t need = hsize_t(shape_numel(shape)) * H5Tget_size(ftype);
  if (have != need)
    r.fail("dataset '", where, "' stores ", have, " bytes but its shape ", shape_str(shape), " of ",
           dtype_name(dtype), " needs ", need, " (incomplete write?)");
}

struct LoadedTensor {
  TensorInfo info;
  Tensor tensor;  // undefined unless the data was asked for
};

LoadedTensor read_tensor(const Reader& r, hid_t g, const std::string& section,
                         const std::string& link, bool with_data) {
  const std::string where = section + "/" + link;
  Handle d(H5Dopen2(g, link.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.ok()) r.fail("'", where, "' is not a dataset");
  Handle ftype(H5Dget_type(d.get()), H5Tclose);
  Handle space(H5Dget_space(d.get()), H5Sclose);
  if (!ftype.ok() || !space.ok()) r.fail("cannot read the header of dataset '", where, "'");
  LoadedTensor out;
  out.info.name = unescape_tensor_name(link);
  out.info.shape = dataset_shape(r, space.get(), where);
  out.info.dtype = dataset_dtype(r, d.get(), ftype.get(), where);
  out.info.nbytes = shape_numel(out.info.shape) * int64_t(dtype_size(out.info.dtype));
  check_storage(r, d.get(), ftype.get(), where, out.info.shape, out.info.dtype);
  if (with_data) {
    out.tensor = Tensor::empty(out.info.shape, out.info.dtype);
    if (out.tensor.numel() > 0 &&
        H5Dread(d.get(), memory_type(out.info.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT,
                out.tensor.raw_data()) < 0)
      r.fail("cannot read dataset '", where, "' (corrupt or truncated?)");
  }
  return out;
}

std::vector<LoadedTensor> read_section(const Reader& r, hid_t root, const char* section,
                                       bool with_data) {
  std::vector<LoadedTensor> out;
  auto g = open_group(r, root, section);
  if (!g) return out;
  for (const std::string& link : list_links(r, g->get(), section))
    out.push_back(read_tensor(r, g->get(), section, link, with_data));
  return out;
}

std::map<std::string, GeneratorState> read_rng(const Reader& r, hid_t root) {
  std::map<std::string, GeneratorState> out;
  auto g = open_group(r, root, "rng");
  if (!g) return out;
  for (const std::string& link : list_links(r, g->get(), "rng")) {
    const std::string where = "rng/" + link;
    Handle d(H5Dopen2(g->get(), link.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.ok()) r.fail("'", where, "' is not a dataset");
    Handle ftype(H5Dget_type(d.get()), H5Tclose);
    Handle space(H5Dget_space(d.get()), H5Sclose);
    if (H5Tget_class(ftype.get()) != H5T_INTEGER || H5Sget_simple_extent_npoints(space.get()) != 2)
      r.fail("rng state '", where, "' must hold 2 integers (seed, offset)");
    check_storage(r, d.get(), ftype.get(), where, {2}, DType::i64);
    uint64_t v[2];
    if (H5Dread(d.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
      r.fail("cannot read rng state '", where, "'");
    out[unescape_tensor_name(link)] = GeneratorState{v[0], v[1]};
  }
  return out;
}

herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* names) {
  static_cast<std::vector<std::string>*>(names)->push_back(name);
  return 0;
}

std::map<std::string, std::string> read_meta(const Reader& r, hid_t root) {
  std::map<std::string, std::string> out;
  auto g = open_group(r, root, "meta");
  if (!g) return out;
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Aiterate2(g->get(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr_name, &names) < 0)
    r.fail("cannot list the attributes of 'meta'");
  for (const std::string& n : names) out[n] = read_string_attr(r, g->get(), n.c_str(), "meta/" + n);
  return out;
}

// Opens a checkpoint and validates its header; shared by load and inspect.
struct OpenCheckpoint {
  Reader r;
  Handle file;
  int format_version = 0;
};

OpenCheckpoint open_checkpoint(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) throw Error("checkpoint " + path + " not found");
  if (fs::is_directory(st)) throw Error("checkpoint " + path + " is a directory, not a file");
  if (::access(path.c_str(), R_OK) != 0)
    throw Error("checkpoint " + path + " cannot be read: " + std::strerror(errno));

  Handle fapl = file_access_properties();
  OpenCheckpoint ck{Reader{path}, Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose)};
  if (!ck.file.ok())
    throw Error("checkpoint " + path + " is not a readable HDF5 file (corrupt or truncated?)");
  const hid_t root = ck.file.get();
  if (H5Aexists(root, "format") <= 0)
    throw Error("checkpoint " + path + " is not a wensu checkpoint (no 'format' attribute)");
  const std::string format = read_string_attr(ck.r, root, "format", "format");
  if (format != kCheckpointFormatName)
    throw Error("checkpoint " + path + " is not a wensu checkpoint (format is '" + format +
                "', expected '" + kCheckpointFormatName + "')");
  const int64_t version = read_int_attr(ck.r, root, "format_version");
  if (version > kCheckpointFormatVersion)
    ck.r.fail("written by a newer wensu: format version ", version, ", this build reads up to ",
              kCheckpointFormatVersion);
  if (version < 1) ck.r.fail("invalid format version ", version);
  // Version 1 is the only one so far; when the layout changes, older versions are converted here.
  ck.format_version = int(version);
  return ck;
}

// The root attributes, meta and rng states, shared by a full load (Checkpoint) and an
// inspection (CheckpointInfo), which name these fields alike.
template <typename Out>
void read_header(const OpenCheckpoint& oc, Out& out) {
  const hid_t root = oc.file.get();
  out.format_version = oc.format_version;
  out.step = read_int_attr(oc.r, root, "step");
  out.model_config = read_required_string(oc.r, root, "model_config");
  out.train_config = read_required_string(oc.r, root, "train_config");
  out.meta = read_meta(oc.r, root);
  out.rng = read_rng(oc.r, root);
}

}  // namespace

// ---------------------------------------------------------------- names

std::string escape_tensor_name(const std::string& name) {
  if (name == ".") return "%2E";  // "." names the group itself in HDF5 paths
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == '%')
      out += "%25";
    else if (c == '/')
      out += "%2F";
    else
      out += c;
  }
  return out;
}

std::string unescape_tensor_name(const std::string& link) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(link.size());
  for (size_t i = 0; i < link.size(); ++i) {
    // A '%' not followed by two hex digits cannot come from escape_tensor_name; keep it as is.
    if (link[i] == '%' && i + 2 < link.size() && hex(link[i + 1]) >= 0 && hex(link[i + 2]) >= 0) {
      out += char(hex(link[i + 1]) * 16 + hex(link[i + 2]));
      i += 2;
    } else {
      out += link[i];
    }
  }
  return out;
}

// ---------------------------------------------------------------- public API

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  QuietHdf5 quiet;
  const Writer w{path};
  check_names(w, "params", ck.params);
  check_names(w, "optimizer", ck.optimizer);
  check_names(w, "extra", ck.extra);
  for (const auto& [name, state] : ck.rng)
    if (name.empty()) w.fail("an rng state has an empty name");
  for (const auto& [key, value] : ck.meta)
    if (key.empty()) w.fail("a meta attribute has an empty name");

  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) w.fail("directory '", dir.string(), "' does not exist");

  // The temporary sits in the same directory so the rename stays on one filesystem (atomic).
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write_file(w, tmp, ck);
    fsync_path(w, tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      w.fail("cannot rename ", tmp, " to ", path, ": ", std::strerror(errno));
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fsync_directory(dir);
}

Checkpoint load_checkpoint(const std::string& path) {
  QuietHdf5 quiet;
  OpenCheckpoint oc = open_checkpoint(path);
  Checkpoint ck;
  read_header(oc, ck);
  auto tensors = [&](const char* section) {
    std::vector<NamedTensor> out;
    for (LoadedTensor& t : read_section(oc.r, oc.file.get(), section, true))
      out.push_back({std::move(t.info.name), std::move(t.tensor)});
    return out;
  };
  ck.params = tensors("params");
  ck.optimizer = tensors("optimizer");
  ck.extra = tensors("extra");
  return ck;
}

CheckpointInfo inspect_checkpoint(const std::string& path) {
  QuietHdf5 quiet;
  OpenCheckpoint oc = open_checkpoint(path);
  CheckpointInfo info;
  info.path = path;
  read_header(oc, info);
  auto infos = [&](const char* section) {
    std::vector<TensorInfo> out;
    for (LoadedTensor& t : read_section(oc.r, oc.file.get(), section, false))
      out.push_back(std::move(t.info));
    return out;
  };
  info.params = infos("params");
  info.optimizer = infos("optimizer");
  info.extra = infos("extra");
  return info;
}

void load_tensors_into(const std::vector<NamedTensor>& from, const std::vector<NamedTensor>& into,
                       const std::string& file, const std::string& what, bool strict) {
  auto fail = [&](const auto&... a) { throw Error(detail::concat("checkpoint ", file, ": ", a...)); };
  std::unordered_map<std::string, const Tensor*> source;
  for (const NamedTensor& nt : from)
    if (!source.emplace(nt.name, &nt.tensor).second) fail(what, " '", nt.name, "' appears twice");

  // Check everything first so a failed load leaves `into` untouched.
  std::vector<std::pair<const Tensor*, const Tensor*>> pairs;  // (src, dst)
  std::set<std::string> used;
  std::vector<std::string> missing;
  for (const NamedTensor& dst : into) {
    auto it = source.find(dst.name);
    if (it == source.end()) {
      missing.push_back(dst.name);
      continue;
    }
    const Tensor& src = *it->second;
    if (src.shape() != dst.tensor.shape())
      fail(what, " '", dst.name, "' has shape ", shape_str(src.shape()), ", expected ",
           shape_str(dst.tensor.shape()));
    if (is_floating(src.dtype()) != is_floating(dst.tensor.dtype()))
      fail(what, " '", dst.name, "' is ", dtype_name(src.dtype()), ", expected ",
           dtype_name(dst.tensor.dtype()));
    used.insert(dst.name);
    pairs.emplace_back(&src, &dst.tensor);
  }
  if (!missing.empty())
    fail(what, " '", missing.front(), "' is missing",
         missing.size() > 1 ? detail::concat(" (and ", missing.size() - 1, " more)") : std::string());
  if (strict) {
    for (const NamedTensor& nt : from)
      if (!used.count(nt.name))
        fail("unexpected ", what, " '", nt.name, "' ", shape_str(nt.tensor.shape()),
             " (not expected here; load non-strictly to ignore it)");
  }

  for (auto [src, dst] : pairs) {
    if (dst->device() == Device::cpu || src->dtype() == dst->dtype()) {
      Tensor(*dst).copy_(*src);
    } else {
      // Cross-device copies need matching dtypes: convert on the CPU first.
      Tensor converted = Tensor::empty(src->shape(), dst->dtype());
      converted.copy_(*src);
      Tensor(*dst).copy_(converted);
    }
  }
}

std::string describe_checkpoint(const CheckpointInfo& info, bool list_tensors) {
  std::ostringstream os;
  auto section = [&](const char* label, const std::vector<TensorInfo>& ts) {
    int64_t elements = 0, bytes = 0;
    std::set<std::string> dtypes;
    for (const TensorInfo& t : ts) {
      elements += shape_numel(t.shape);
      bytes += t.nbytes;
      dtypes.insert(dtype_name(t.dtype));
    }
    os << "  " << label << std::string(12 - std::strlen(label), ' ') << ts.size()
       << (ts.size() == 1 ? " tensor" : " tensors");
    if (!ts.empty()) {
      os << ", " << with_commas(elements) << " elements, " << human_bytes(bytes) << " (";
      for (auto it = dtypes.begin(); it != dtypes.end(); ++it)
        os << (it == dtypes.begin() ? "" : ", ") << *it;
      os << ")";
    }
    os << "\n";
  };
  // Configs are JSON; pretty-print them in their own key order, or show the text as is if it
  // does not parse.
  auto config = [&](const char* label, const std::string& text) {
    os << label << "\n";
    if (text.empty()) {
      os << "  (none)\n";
      return;
    }
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(text, nullptr, false);
    std::istringstream lines(j.is_discarded() ? text : j.dump(2));
    for (std::string line; std::getline(lines, line);) os << "  " << line << "\n";
  };

  os << "checkpoint " << info.path << "\n";
  os << "  format      " << kCheckpointFormatName << ", version " << info.format_version << "\n";
  os << "  step        " << info.step << "\n";
  bool first = true;
  for (const auto& [k, v] : info.meta) {
    // Stored files (a tokenizer's, base64) are summarised: one line each, not kilobytes of text.
    const bool long_value = v.size() > 160 || v.find('\n') != std::string::npos;
    os << (first ? "  meta        " : "              ") << k << ": ";
    if (long_value)
      os << "(" << v.size() << " bytes)\n";
    else
      os << v << "\n";
    first = false;
  }
  section("params", info.params);
  section("optimizer", info.optimizer);
  section("extra", info.extra);
  first = true;
  for (const auto& [name, s] : info.rng) {
    os << (first ? "  rng         " : "              ") << name << ": seed " << s.seed
       << ", offset " << s.offset << "\n";
    first = false;
  }
  if (info.rng.empty()) os << "  rng         (none)\n";
  config("model config", info.model_config);
  config("train config", info.train_config);

  if (list_tensors) {
    size_t width = 0;
    auto full = [](const char* sec, const TensorInfo& t) { return std::string(sec) + "/" + t.name; };
    for (const auto& [sec, ts] : {std::pair{"params", &info.params}, {"optimizer", &info.optimizer},
                                  {"extra", &info.extra}})
      for (const TensorInfo& t : *ts) width = std::max(width, full(sec, t).size());
    os << "tensors\n";
    for (const auto& [sec, ts] : {std::pair{"params", &info.params}, {"optimizer", &info.optimizer},
                                  {"extra", &info.extra}})
      for (const TensorInfo& t : *ts) {
        const std::string n = full(sec, t);
        os << "  " << n << std::string(width - n.size() + 2, ' ') << dtype_name(t.dtype)
           << std::string(10 - std::strlen(dtype_name(t.dtype)), ' ') << shape_str(t.shape) << "\n";
      }
  }
  return os.str();
}

}  // namespace wensu::io
