#include "wensu/io/dist_checkpoint.h"

#include <cstring>
#include <set>

#include "wensu/core/check.h"
#include "wensu/dist/comm.h"
#include "wensu/nn/moe.h"

namespace wensu::io {
namespace {

// Optimizer state is named "<kind>/<parameter name>"; it belongs to an expert when the parameter does.
bool is_expert_tensor(const std::string& name) {
  const auto slash = name.find('/');
  return nn::is_expert_parameter(slash == std::string::npos ? name : name.substr(slash + 1));
}

// A flat byte record of named tensors for the gather: per tensor, section byte, name length,
// name, dtype, rank, shape, data (contiguous, native byte order: all ranks share one machine
// type).
template <typename T>
void put(std::vector<char>& b, const T& v) {
  const char* p = reinterpret_cast<const char*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}
template <typename T>
T get(const std::vector<char>& b, size_t& at) {
  WENSU_CHECK(at + sizeof(T) <= b.size(), "distributed checkpoint: truncated tensor record from another rank");
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));
  at += sizeof(T);
  return v;
}

void pack(std::vector<char>& b, char section, const NamedTensor& nt) {
  Tensor t = nt.tensor.detach().to(Device::cpu).contiguous();
  put(b, section);
  put(b, int64_t(nt.name.size()));
  b.insert(b.end(), nt.name.begin(), nt.name.end());
  put(b, int32_t(t.dtype()));
  put(b, int64_t(t.dim()));
  for (int64_t d : t.shape()) put(b, d);
  const char* p = static_cast<const char*>(t.raw_data());
  b.insert(b.end(), p, p + t.nbytes());
}

void unpack(const std::vector<char>& b, Checkpoint& ck, std::set<std::string>& have) {
  size_t at = 0;
  while (at < b.size()) {
    const char section = get<char>(b, at);
    const auto n = size_t(get<int64_t>(b, at));
    WENSU_CHECK(at + n <= b.size(), "distributed checkpoint: truncated tensor name from another rank");
    std::string name(b.data() + at, n);
    at += n;
    const auto dtype = DType(get<int32_t>(b, at));
    Shape shape(size_t(get<int64_t>(b, at)));
    for (auto& d : shape) d = get<int64_t>(b, at);
    Tensor t = Tensor::empty(shape, dtype);
    WENSU_CHECK(at + t.nbytes() <= b.size(), "distributed checkpoint: truncated data of '", name, "' from another rank");
    std::memcpy(t.raw_data(), b.data() + at, t.nbytes());
    at += t.nbytes();
    auto& dst = section == 'p' ? ck.params : ck.optimizer;
    if (have.insert(std::string(1, section) + name).second) dst.push_back({name, t});
  }
}

}  // namespace

void save_checkpoint_distributed(const std::string& path, const Checkpoint& local, const dist::ParallelGroups& groups) {
  const dist::Communicator& world = groups.world;
  if (world.size() == 1) return save_checkpoint(path, local);
  // The first data-parallel replica (data-group rank 0) holds every expert once.
  std::vector<char> mine;
  if (groups.data.rank() == 0 && world.rank() != 0) {
    for (const auto& nt : local.params)
      if (is_expert_tensor(nt.name)) pack(mine, 'p', nt);
    for (const auto& nt : local.optimizer)
      if (is_expert_tensor(nt.name)) pack(mine, 'o', nt);
  }
  const auto all = world.gather_bytes(mine, 0);
  std::string error;
  if (world.rank() == 0) {
    try {
      Checkpoint ck = local;
      std::set<std::string> have;
      for (const auto& nt : ck.params) have.insert("p" + nt.name);
      for (const auto& nt : ck.optimizer) have.insert("o" + nt.name);
      for (const auto& b : all) unpack(b, ck, have);
      save_checkpoint(path, ck);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  // Every rank learns whether the file was written (and waits until it is complete).
  Tensor failed = Tensor::from_vector(std::vector<int64_t>{error.empty() ? 0 : 1}, {1});
  world.broadcast(failed, 0);
  if (failed.item() != 0)
    throw Error(world.rank() == 0 ? error : "rank 0 could not write the checkpoint " + path + " (see its error)");
}

std::vector<NamedTensor> select_for_rank(const std::vector<NamedTensor>& from, const std::vector<NamedTensor>& into) {
  std::set<std::string> names;
  for (const auto& nt : into) names.insert(nt.name);
  std::vector<NamedTensor> out;
  for (const auto& nt : from)
    if (!is_expert_tensor(nt.name) || names.count(nt.name)) out.push_back(nt);
  return out;
}

}  // namespace wensu::io
