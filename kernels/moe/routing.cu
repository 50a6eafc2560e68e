// MoE routing on the GPU; see moe.cuh for the parameters and src/wensu/ops/moe.h for the rule:
// inside an expert, rows go to the first choices of all tokens in token order, then the second
// choices, ..., and with a capacity C only the first C rows of each expert are kept.
//
// In pair order j = k * T + t that rule is a stable sort of the pairs by expert, and the row of
// pair j inside its expert is its rank: the number of earlier pairs (in j order) routed to the
// same expert. We compute that rank without atomics, in three steps:
//   count   one warp per tile of consecutive j: per-tile counts per expert
//   scan    one block per expert: exclusive prefix sum of its counts over the tiles (= the rank
//           of the tile's first pair of that expert), then the kept counts and expert offsets
//   place   one warp per tile again: walks its pairs 32 at a time in j order; lanes routed to the
//           same expert find each other with __match_any_sync, and a lane's rank is the tile's
//           running rank plus the number of matching lanes below it
// The host copies the summary (counts, offsets, first bad index) between count and place, since
// it needs the number of kept rows to allocate `source` anyway.
#include <cub/block/block_scan.cuh>

#include "kernels/moe/moe.cuh"

namespace wensu {
namespace kernels {
namespace {

constexpr int kWarpsPerBlock = 4;  // tiles per block in the count and place passes
constexpr int kScanThreads = 256;

// Expert of pair j; -3 for a pair the gate did not route (index -1: position -1, no row); -1
// when its index is out of range (reported through the summary).
__device__ __forceinline__ int pair_expert(const MoeRoutingParams& p, int64_t j, int64_t* flat) {
  const int64_t k = j / p.tokens, t = j - k * p.tokens;
  *flat = t * p.top_k + k;
  const int64_t e = p.expert_index[*flat];
  if (e >= 0 && e < p.experts) return int(e);
  return e == -1 ? -3 : -1;
}

__global__ void count_kernel(MoeRoutingParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t tile = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;  // the same for the whole warp
  if (tile >= p.n_tiles) return;
  const int64_t pairs = p.tokens * p.top_k;
  const int64_t j0 = tile * p.tile, j1 = j0 + p.tile < pairs ? j0 + p.tile : pairs;
  int64_t* count = p.tile_rank + tile * p.experts;
  for (int64_t base = j0; base < j1; base += 32) {
    const int64_t j = base + lane;
    int e = -2;  // -2: past the end of the tile, -1: bad index, -3: not routed
    if (j < j1) {
      int64_t flat;
      e = pair_expert(p, j, &flat);
      // The first bad pair in j order (the order the CPU twin checks in) wins whatever the thread
      // order: store pairs - j and take the max.
      if (e == -1) atomicMax(reinterpret_cast<unsigned long long*>(p.summary), (unsigned long long)(pairs - j));
    }
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    // One lane per distinct expert adds the group's size; only this warp touches this tile's row.
    if (e >= 0 && lane == __ffs(peers) - 1) count[e] += __popc(peers);
    __syncwarp();  // orders this chunk's writes before the next chunk's reads
  }
}

// Block e: tile_rank[:, e] = exclusive prefix sum over tiles; summary routed count of e.
__global__ void scan_kernel(MoeRoutingParams p) {
  using Scan = cub::BlockScan<long long, kScanThreads>;
  __shared__ typename Scan::TempStorage tmp;
  const int64_t e = blockIdx.x;
  long long carry = 0;
  for (int64_t c0 = 0; c0 < p.n_tiles; c0 += kScanThreads) {
    const int64_t tile = c0 + threadIdx.x;
    const long long v = tile < p.n_tiles ? p.tile_rank[tile * p.experts + e] : 0;
    long long excl, total;
    Scan(tmp).ExclusiveSum(v, excl, total);
    if (tile < p.n_tiles) p.tile_rank[tile * p.experts + e] = carry + excl;
    carry += total;
    __syncthreads();  // tmp is reused by the next chunk
  }
  if (threadIdx.x == 0) p.summary[1 + e] = carry;
}

// One block: kept counts (capacity applied) and their exclusive prefix sum over the experts.
__global__ void offsets_kernel(MoeRoutingParams p) {
  using Scan = cub::BlockScan<long long, kScanThreads>;
  __shared__ typename Scan::TempStorage tmp;
  const int64_t E = p.experts;
  const int64_t* routed = p.summary + 1;
  int64_t* kept = p.summary + 1 + E;
  int64_t* offsets = p.summary + 1 + 2 * E;
  long long carry = 0;
  for (int64_t c0 = 0; c0 < E; c0 += kScanThreads) {
    const int64_t e = c0 + threadIdx.x;
    long long v = 0;
    if (e < E) {
      v = routed[e];
      if (p.capacity > 0 && v > p.capacity) v = p.capacity;
      kept[e] = v;
    }
    long long excl, total;
    Scan(tmp).ExclusiveSum(v, excl, total);
    if (e < E) offsets[e] = carry + excl;
    carry += total;
    __syncthreads();
  }
  if (threadIdx.x == 0) offsets[E] = carry;
}

__global__ void place_kernel(MoeRoutingParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t tile = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (tile >= p.n_tiles) return;
  const int64_t pairs = p.tokens * p.top_k;
  const int64_t j0 = tile * p.tile, j1 = j0 + p.tile < pairs ? j0 + p.tile : pairs;
  int64_t* next = p.tile_rank + tile * p.experts;  // rank of this tile's next pair of each expert
  const int64_t* offsets = p.summary + 1 + 2 * p.experts;
  const unsigned below = (1u << lane) - 1u;
  for (int64_t base = j0; base < j1; base += 32) {
    const int64_t j = base + lane;
    int e = -2;
    int64_t flat = 0;
    if (j < j1) e = pair_expert(p, j, &flat);
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    int64_t rank = 0;
    if (e >= 0) rank = next[e] + __popc(peers & below);
    __syncwarp();  // every lane has read next[e] before the group's first lane advances it
    if (e >= 0 && lane == __ffs(peers) - 1) next[e] += __popc(peers);
    __syncwarp();
    if (e >= 0) {
      int64_t row = -1;
      if (p.capacity == 0 || rank < p.capacity) {
        row = offsets[e] + rank;
        p.source[row] = flat / p.top_k;
      }
      p.position[flat] = row;
    } else if (e == -3) {
      p.position[flat] = -1;
    }
  }
}

unsigned tile_blocks(const MoeRoutingParams& p) {
  return unsigned((p.n_tiles + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

}  // namespace

cudaError_t moe_routing_count(const MoeRoutingParams& p, cudaStream_t stream) {
  cudaError_t e = cudaMemsetAsync(p.summary, 0, sizeof(int64_t) * size_t(moe_summary_size(p.experts)), stream);
  if (e != cudaSuccess) return e;
  if (p.n_tiles > 0) {
    e = cudaMemsetAsync(p.tile_rank, 0, sizeof(int64_t) * size_t(p.n_tiles * p.experts), stream);
    if (e != cudaSuccess) return e;
    count_kernel<<<tile_blocks(p), kWarpsPerBlock * 32, 0, stream>>>(p);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    scan_kernel<<<unsigned(p.experts), kScanThreads, 0, stream>>>(p);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
  }
  offsets_kernel<<<1, kScanThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t moe_routing_place(const MoeRoutingParams& p, cudaStream_t stream) {
  if (p.n_tiles == 0) return cudaSuccess;
  place_kernel<<<tile_blocks(p), kWarpsPerBlock * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace kernels
}  // namespace wensu
