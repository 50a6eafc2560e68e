#include "wensu/core/generator.h"

#include <functional>
#include <memory>
#include <mutex>

namespace wensu {

std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t counter) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = uint64_t(M0) * c0, p1 = uint64_t(M1) * c2;
    uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += W0;
    k1 += W1;
  }
  return {c0, c1, c2, c3};
}

namespace {
struct Registry {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<Generator>> gens;
  uint64_t base_seed = 0;
};
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}
uint64_t derive_seed(uint64_t base, const std::string& name) {
  return name == "default" ? base : base ^ (std::hash<std::string>{}(name) * 0x9E3779B97F4A7C15ull);
}
}  // namespace

Generator& generator(const std::string& name) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto& g = r.gens[name];
  if (!g) g = std::make_unique<Generator>(derive_seed(r.base_seed, name));
  return *g;
}

std::map<std::string, GeneratorState> all_generator_states() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::map<std::string, GeneratorState> out;
  for (auto& [n, g] : r.gens) out[n] = g->state();
  return out;
}

void restore_generator_states(const std::map<std::string, GeneratorState>& states) {
  for (auto& [n, s] : states) generator(n).set_state(s);
}

void manual_seed(uint64_t seed) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.base_seed = seed;
  for (auto& [n, g] : r.gens) g->manual_seed(derive_seed(seed, n));
}

}  // namespace wensu
