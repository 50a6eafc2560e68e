// Expert parallelism (and data parallelism on top) against one process on the global batch:
// outputs, losses, gradients and SGD updates agree to float32 rounding for every gate, and
// checkpoints move between world sizes. Runs under mpirun -np 1, 2 and 4 (tests/CMakeLists.txt);
// every rank checks its own share.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <algorithm>
#include <cmath>
#include <map>

#include "wensu/core/generator.h"
#include "wensu/dist/comm.h"
#include "wensu/io/dist_checkpoint.h"
#include "wensu/nn/moe.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/reduce.h"

using namespace wensu;

namespace {

// max|a - b| / max(max|b|, floor). The floor keeps gradients that are zero up to rounding (the
// key projection's bias: softmax ignores a shift shared by all keys) from comparing noise to noise.
double max_rel_error(const Tensor& got, const Tensor& want, double floor = 1e-12) {
  const auto a = got.to(DType::f64).to_vector<double>(), b = want.to(DType::f64).to_vector<double>();
  double diff = 0, scale = floor;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return a.size() == b.size() ? diff / scale : 1e30;
}

constexpr int64_t kGlobalBatch = 4, kLen = 6, kDim = 8;  // 4 sequences: 1, 2 or 4 per rank

nn::TransformerConfig config(const std::string& gate) {
  nn::TransformerConfig c;
  c.d_model = kDim;
  c.n_heads = 2;
  c.n_layers = 2;
  c.ffn.kind = "moe";
  c.ffn.d_ff = 16;
  c.ffn.moe.num_experts = 4;
  c.ffn.moe.top_k = gate == "switch" ? 1 : 2;
  c.ffn.moe.gate = gate;
  c.ffn.moe.jitter = gate == "switch" ? 0.05 : 0.0;
  c.ffn.moe.z_loss_weight = 0.01;
  return c;
}

// This rank's sequences of a global tensor [kGlobalBatch, ...].
Tensor local_slice(const Tensor& global, const dist::Communicator& world) {
  const int64_t per = kGlobalBatch / world.size();
  return global.narrow(0, world.rank() * per, per);
}

std::vector<io::NamedTensor> named(const nn::Module& m) {
  std::vector<io::NamedTensor> out;
  for (auto& [name, p] : m.named_parameters()) out.push_back({name, p});
  return out;
}

// A path every rank agrees on (rank 0's pid).
std::string shared_path(const dist::Communicator& world, const std::string& stem) {
  const auto pids = world.all_gather(int64_t(getpid()));
  return (std::filesystem::temp_directory_path() / (stem + "_" + std::to_string(pids[0]) + ".h5")).string();
}

}  // namespace

TEST(MoeDistributed, MatchesOneProcessOnTheGlobalBatch) {
  const dist::Communicator& world = dist::Communicator::world();
  std::vector<int> eps = {world.size()};
  if (world.size() == 4) eps.push_back(2);  // 2 expert groups x 2 data-parallel replicas
  for (int ep : eps) {
    dist::ParallelGroups groups = dist::make_parallel_groups(ep);
    for (std::string gate : {"naive", "noisy", "gshard", "switch"}) {
      const std::string what = gate + " ep " + std::to_string(ep) + " of " + std::to_string(world.size());
      nn::TransformerConfig cfg = config(gate);
      Generator g1(7), g2(7);
      nn::Transformer one(cfg, g1);                // the whole model, one process
      nn::Transformer part(cfg, g2, &groups);     // this rank's share
      Generator dg(8);
      Tensor x = Tensor::randn({kGlobalBatch, kLen, kDim}, dg), target = Tensor::randn({kGlobalBatch, kLen, kDim}, dg);
      const GeneratorState router = generator("router").state();

      auto loss_of = [](const Tensor& y, const Tensor& t) {
        Tensor d = ops::sub(y, t);
        return ops::mean(ops::mul(d, d));
      };
      Tensor y_one = one.forward(x);
      Tensor loss_one = ops::add(loss_of(y_one, target), one.aux_loss());
      loss_one.backward();
      generator("router").set_state(router);
      Tensor x_local = local_slice(x, world);
      Tensor y_part = part.forward(x_local);
      Tensor loss_part = ops::add(loss_of(y_part, local_slice(target, world)), part.aux_loss());
      loss_part.backward();
      nn::all_reduce_gradients(part, &groups);

      EXPECT_LE(max_rel_error(y_part, local_slice(y_one, world)), 1e-5) << what;
      Tensor mean_loss = Tensor::from_vector(std::vector<double>{loss_part.item() / world.size()}, {1});
      world.all_reduce_sum(mean_loss);
      EXPECT_NEAR(mean_loss.item(), loss_one.item(), 1e-5 * std::abs(loss_one.item())) << what;
      // Gradients, then one SGD step, for every parameter this rank holds.
      for (auto& [name, p] : part.named_parameters()) {
        Tensor q = one.parameter(name);
        // EXPECT, never ASSERT, in tests with collectives: a rank must not leave early.
        if (!q.grad().defined()) {
          ADD_FAILURE() << what << ": one process has no gradient for " << name;
          continue;
        }
        if (!p.grad().defined()) {
          EXPECT_EQ(ops::max(ops::mul(q.grad(), q.grad())).item(), 0.0) << what << ": no gradient for " << name;
          continue;
        }
        EXPECT_LE(max_rel_error(p.grad(), q.grad(), 1e-3), 1e-4) << what << " grad " << name;
        p.copy_(ops::sub(p, ops::scale(p.grad(), 0.1)).detach());
        q.copy_(ops::sub(q, ops::scale(q.grad(), 0.1)).detach());
        EXPECT_LE(max_rel_error(p, q), 1e-5) << what << " updated " << name;
      }
    }
  }
}

TEST(MoeDistributed, CheckpointsMoveBetweenWorldSizes) {
  const dist::Communicator& world = dist::Communicator::world();
  dist::ParallelGroups groups = dist::make_parallel_groups(world.size());
  nn::TransformerConfig cfg = config("naive");
  Generator dg(9);
  Tensor x = Tensor::randn({kGlobalBatch, kLen, kDim}, dg);

  // Written by all ranks, loaded by one process.
  Generator g1(11);
  nn::Transformer part(cfg, g1, &groups);
  part.eval();
  Tensor y_part = part.forward(local_slice(x, world));
  io::Checkpoint ck;
  ck.params = named(part);
  const std::string path = shared_path(world, "wensu_moe_dist");
  io::save_checkpoint_distributed(path, ck, groups);
  Generator g2(99);  // other weights until the load
  nn::Transformer one(cfg, g2);
  one.eval();
  io::load_tensors_into(io::load_checkpoint(path).params, named(one), path, "parameter");
  EXPECT_LE(max_rel_error(local_slice(one.forward(x), world), y_part), 1e-6);

  // Written by one process, loaded by all ranks.
  Generator g3(12);
  nn::Transformer one_b(cfg, g3);
  one_b.eval();
  const std::string path_b = shared_path(world, "wensu_moe_one");
  if (world.rank() == 0) {
    io::Checkpoint c;
    c.params = named(one_b);
    io::save_checkpoint(path_b, c);
  }
  world.barrier();
  Generator g4(98);
  nn::Transformer part_b(cfg, g4, &groups);
  part_b.eval();
  auto into = named(part_b);
  io::load_tensors_into(io::select_for_rank(io::load_checkpoint(path_b).params, into), into, path_b, "parameter");
  EXPECT_LE(max_rel_error(part_b.forward(local_slice(x, world)), local_slice(one_b.forward(x), world)), 1e-6);
  world.barrier();
  if (world.rank() == 0) {
    std::filesystem::remove(path);
    std::filesystem::remove(path_b);
  }
}
