#include "wensu/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "wensu/core/check.h"

namespace wensu::io {

// The format is little-endian; tensor bytes are copied as they are.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

// The reference implementation refuses headers above 100 MB; so do we, so that a corrupt
// length field fails fast instead of allocating gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

template <typename... A>
[[noreturn]] void fail(const std::string& path, const A&... a) {
  throw Error(detail::concat("safetensors ", path, ": ", a...));
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& e) {
  if (!e.is_object()) fail(path, "tensor '", name, "': header entry is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!e.contains(key)) fail(path, "tensor '", name, "': header entry has no '", key, "'");
  Entry out;
  out.name = name;
  const auto& d = e.at("dtype");
  if (!d.is_string()) fail(path, "tensor '", name, "': dtype is not a string");
  try {
    out.dtype = safetensors_dtype(d.get<std::string>());
  } catch (const Error& err) {
    fail(path, "tensor '", name, "': ", err.what());
  }
  const auto& s = e.at("shape");
  if (!s.is_array()) fail(path, "tensor '", name, "': shape is not an array");
  for (const auto& v : s) {
    if (!v.is_number_unsigned()) fail(path, "tensor '", name, "': shape ", s.dump(), " must hold non-negative integers");
    out.shape.push_back(int64_t(v.get<uint64_t>()));
  }
  const auto& o = e.at("data_offsets");
  if (!o.is_array() || o.size() != 2 || !o[0].is_number_unsigned() || !o[1].is_number_unsigned())
    fail(path, "tensor '", name, "': data_offsets ", o.dump(), " must be [begin, end]");
  out.begin = o[0].get<uint64_t>();
  out.end = o[1].get<uint64_t>();
  if (out.end < out.begin) fail(path, "tensor '", name, "': data_offsets [", out.begin, ", ", out.end, ") end before they begin");
  const uint64_t want = uint64_t(shape_numel(out.shape)) * dtype_size(out.dtype);
  if (out.end - out.begin != want)
    fail(path, "tensor '", name, "' is ", safetensors_dtype_name(out.dtype), " ", shape_str(out.shape), " (", want,
         " bytes) but its data_offsets [", out.begin, ", ", out.end, ") hold ", out.end - out.begin,
         " bytes: wrong dtype or shape in the header");
  return out;
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i64: return "I64";
  }
  return "?";
}

DType safetensors_dtype(const std::string& name) {
  for (DType t : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i64})
    if (name == safetensors_dtype_name(t)) return t;
  throw Error("dtype '" + name + "' is not one Wensu reads (F32, F64, F16, BF16, I64)");
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open: ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const uint64_t file_size = uint64_t(in.tellg());
  in.seekg(0);
  if (file_size < 8) fail(path, "file is ", file_size, " bytes, too short for a safetensors file (8-byte header length first)");
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length ", header_len, " is above the format's limit of 100 MB: not a safetensors file");
  if (header_len > file_size - 8)
    fail(path, "header length ", header_len, " runs past the end of the file (", file_size,
         " bytes): truncated or not a safetensors file");
  std::string text(header_len, '\0');
  in.read(text.data(), std::streamsize(header_len));
  if (!in) fail(path, "cannot read the ", header_len, "-byte header");

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, "header is not valid JSON (", e.what(), ")");
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (auto& [name, e] : header.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) fail(path, "__metadata__ is not a JSON object");
      for (auto& [k, v] : e.items()) {
        if (!v.is_string()) fail(path, "__metadata__ value '", k, "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (name.empty()) fail(path, "a tensor has an empty name");
    entries.push_back(parse_entry(path, name, e));
  }

  // Data follows the header; entries must fit in it and not overlap (the format also forbids
  // holes; we do not need to).
  const uint64_t data_size = file_size - 8 - header_len;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t prev_end = 0;
  std::string prev_name;
  for (const Entry& e : entries) {
    if (e.end > data_size)
      fail(path, "tensor '", e.name, "' data [", e.begin, ", ", e.end, ") runs past the end of the data (", data_size,
           " bytes): the file is truncated");
    if (e.begin < prev_end && e.end > e.begin)
      fail(path, "tensor '", e.name, "' data [", e.begin, ", ", e.end, ") overlaps tensor '", prev_name, "'");
    if (e.end > prev_end) prev_end = e.end, prev_name = e.name;
  }

  const uint64_t data_start = 8 + header_len;
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) {
      in.seekg(std::streamoff(data_start + e.begin));
      in.read(static_cast<char*>(t.raw_data()), std::streamsize(e.end - e.begin));
      if (!in) fail(path, "cannot read the data of tensor '", e.name, "'");
    }
    out.tensors.push_back({e.name, t});
  }
  return out;
}

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> data;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__") fail(path, "cannot write a tensor named '", name, "'");
    if (!seen.insert(name).second) fail(path, "tensor name '", name, "' appears twice");
    if (!t.defined()) fail(path, "tensor '", name, "' is undefined");
    Tensor c = t.detach().to(Device::cpu).contiguous();
    const uint64_t n = c.nbytes();
    header[name] = {{"dtype", safetensors_dtype_name(c.dtype())}, {"shape", c.shape()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    data.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(path, "cannot create: ", std::strerror(errno));
  const uint64_t header_len = text.size();
  out.write(reinterpret_cast<const char*>(&header_len), 8);
  out.write(text.data(), std::streamsize(text.size()));
  for (const Tensor& c : data) out.write(static_cast<const char*>(c.raw_data()), std::streamsize(c.nbytes()));
  out.flush();
  if (!out) fail(path, "write failed: ", std::strerror(errno));
}

}  // namespace wensu::io
