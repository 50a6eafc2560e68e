// Seeded, counter-based random numbers (Philox-4x32-10, Salmon et al. 2011). The state is just
// (seed, offset): element i of a draw uses counter offset+i, so results do not depend on the
// thread count, CPU and CUDA can produce the same stream, and a checkpoint stores two integers.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>

namespace wensu {

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // counters consumed so far (each counter yields 4 x 32 random bits)
};

std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t counter);

// Uniform in [0, 1) with 24 random bits; standard normal by Box-Muller on two uniforms.
inline float uniform_from_bits(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { state_.seed = seed; }
  void manual_seed(uint64_t seed) { state_ = {seed, 0}; }
  const GeneratorState& state() const { return state_; }
  void set_state(const GeneratorState& s) { state_ = s; }
  // Reserve `counters` Philox counters and return the first one.
  uint64_t reserve(uint64_t counters) {
    uint64_t base = state_.offset;
    state_.offset += counters;
    return base;
  }
  uint64_t seed() const { return state_.seed; }

 private:
  GeneratorState state_;
};

// Named generators whose states go into every checkpoint ("default" for init, "dropout", ...).
Generator& generator(const std::string& name = "default");
std::map<std::string, GeneratorState> all_generator_states();
void restore_generator_states(const std::map<std::string, GeneratorState>& states);
void manual_seed(uint64_t seed);  // reseeds every registered generator (name-derived streams)

}  // namespace wensu
