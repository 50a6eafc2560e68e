// Helpers for tests that run on every rank of an mpirun job. Each rank's inputs are drawn from
// a seed all ranks share, so any rank can rebuild any other rank's inputs and compute what an
// exchange must deliver without asking anyone (the expectation never goes through MPI).
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/core/generator.h"
#include "wensu/core/tensor.h"
#include "wensu/dist/comm.h"

namespace wensu::test {

// Fresh per run: rank 0 draws it, everyone takes rank 0's.
inline uint64_t shared_seed(const dist::Communicator& c) {
  const int64_t mine = int64_t(std::random_device{}() & 0x7fffffff);
  return uint64_t(c.all_gather(mine)[0]);
}

// Rank r's random tensor number `stream` (standard normal; int64 as normal * 1000, rounded).
inline Tensor rank_data(uint64_t seed, int rank, int stream, const Shape& shape, DType dtype = DType::f64) {
  Generator gen(seed * 1000003u + uint64_t(rank) * 101u + uint64_t(stream));
  Tensor t = Tensor::randn(shape, gen, DType::f64);
  if (dtype == DType::f64) return t;
  if (dtype == DType::f32) return t.to(DType::f32);
  std::vector<int64_t> v;
  for (double d : t.to_vector<double>()) v.push_back(int64_t(std::llround(d * 1000)));
  return Tensor::from_vector(v, shape);
}

// Contiguous copy of every element, as double (exact for the values rank_data makes).
inline std::vector<double> values(const Tensor& t) {
  if (t.dtype() == DType::i64) {
    std::vector<double> out;
    for (int64_t v : t.to_vector<int64_t>()) out.push_back(double(v));
    return out;
  }
  return t.to_vector<double>();
}

}  // namespace wensu::test
