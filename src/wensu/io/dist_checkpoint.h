// Checkpoints of expert-parallel models, independent of the world size.
//
// Expert parameters are named by global expert index ("layers.0.ffn.experts.5.fc1.weight"), so
// the only thing that changes with the number of ranks is which rank holds which names. Saving
// gathers every expert's tensors (parameters and optimizer state) from the first data-parallel
// replica onto world rank 0, which writes one ordinary checkpoint (io/checkpoint.h), the same
// file one process would write. Loading reads that file on every rank and takes the tensors of
// the rank's own experts plus all shared ones.
#pragma once
#include <string>
#include <vector>

#include "wensu/io/checkpoint.h"

namespace wensu::dist {
struct ParallelGroups;
}

namespace wensu::io {

// Collective over groups.world. `local` is this rank's view (its parameters and optimizer state,
// expert ones included); meta, configs, step and RNG states are taken from rank 0. Only rank 0
// writes `path` (atomically); the call returns on every rank once the file is complete.
void save_checkpoint_distributed(const std::string& path, const Checkpoint& local, const dist::ParallelGroups& groups);

// The tensors of `from` that a model holding `into` needs: every shared tensor and the expert
// tensors whose names `into` has (another rank's experts are left out, not reported). Pass the
// result to load_tensors_into(..., strict = true): a shared tensor the model lacks, or a missing
// tensor, is still an error.
std::vector<NamedTensor> select_for_rank(const std::vector<NamedTensor>& from, const std::vector<NamedTensor>& into);

}  // namespace wensu::io
