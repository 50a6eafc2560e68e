// Training shards for `wensu fold`: many chains (ChainData, wensu/fold/structure_db.h) in one
// HDF5 file, written by `wensu structdb export` and read by the fold data loader.
//
// Layout (format "wensu-fold-shard", version 1). Per-residue data of all chains is concatenated
// in shard order; chain i owns rows offsets[i] .. offsets[i+1]-1 of every per-residue dataset, so
// reading one chain is one contiguous slice per dataset. C = chains, N = residues in the shard.
//   /                 attributes: format, format_version (int), wensu_version, created (UTC),
//                     plus the writer's own string attributes (e.g. source, split)
//   /ids              [C]        fixed-length ASCII "PDBID_CHAIN", unique
//   /offsets          [C + 1]    int64, offsets[0] = 0, offsets[C] = N, increasing
//   /sequence         [N]        uint8 one-letter codes
//   /backbone         [N, 4, 3]  float32 N, CA, C, O (Angstrom)
//   /cb               [N, 3]     float32 ideal CB
//   /phi_psi          [N, 2]     float32 radians
//   /phi_psi_mask     [N, 2]     uint8, 1 = measured
//   /dssp             [N]        uint8 8-state DSSP letters
//   /profile          [N, 20]    float32 sequence profile, columns ACDEFGHIKLMNPQRSTVWY
// Datasets are contiguous and uncompressed: a shard of 2,000 chains is about 65 MB and a chain
// reads without decompressing anything. h5py reads the files directly.
//
// Writes are atomic (PATH.tmp.<pid>, fsync, rename). Every failure is a one-line wensu::Error
// naming the file. The HDF5 library is not thread-safe in Debian's build: use a FoldShard from
// one thread at a time.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "wensu/fold/structure_db.h"

namespace wensu::fold {

constexpr const char* kFoldShardFormatName = "wensu-fold-shard";
constexpr int kFoldShardFormatVersion = 1;

// Collects chains in memory (about 150 bytes per residue) and writes them on close(). Every
// chain must be complete: backbone, cb, phi/psi + mask, DSSP and profile sized for its length.
class FoldShardWriter {
 public:
  explicit FoldShardWriter(std::string path);
  // Copies `c` into the shard; throws when a field has the wrong size or the id is a duplicate.
  void add(const ChainData& c);
  // A string attribute stored on the root group (not "format", "format_version").
  void set_attribute(const std::string& key, const std::string& value);
  int64_t size() const { return int64_t(ids_.size()); }
  int64_t residues() const { return int64_t(sequence_.size()); }
  // Writes the file atomically. Nothing touches the disk before this call.
  void close();

 private:
  std::string path_;
  std::map<std::string, std::string> attrs_;
  std::vector<std::string> ids_;
  std::unordered_set<std::string> seen_;
  std::vector<int64_t> offsets_{0};
  std::string sequence_, dssp_;
  std::vector<float> backbone_, cb_, phi_psi_, profile_;
  std::vector<uint8_t> phi_psi_mask_;
};

// Reads chains from a shard. open() validates the layout and reads ids and offsets; chain()
// reads one chain's slices.
class FoldShard {
 public:
  static FoldShard open(const std::string& path);
  FoldShard(FoldShard&&) noexcept;
  FoldShard& operator=(FoldShard&&) noexcept;
  ~FoldShard();

  const std::string& path() const;
  int64_t size() const;      // chains
  int64_t residues() const;  // N
  const std::vector<std::string>& ids() const;
  int64_t length(int64_t i) const;
  int64_t find(const std::string& id) const;  // index of `id`, or -1
  ChainData chain(int64_t i) const;
  ChainData chain(const std::string& id) const;  // throws when the shard lacks `id`
  // Root string attributes other than format and format_version.
  const std::map<std::string, std::string>& attributes() const;

  struct Impl;

 private:
  explicit FoldShard(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The chain ids of a shard, in shard order, without reading any residue data.
std::vector<std::string> list_fold_shard_ids(const std::string& path);

// A list of chain ids, one per line; blank lines and lines starting with '#' are skipped, and
// surrounding whitespace is trimmed (the split files in data/fold/split/).
std::vector<std::string> read_chain_ids(const std::string& path);

struct ExportOptions {
  int64_t min_length = 30;    // chains shorter than this are skipped
  int64_t max_length = 1000;  // and chains longer than this
  std::map<std::string, std::string> attributes;  // stored on the shard's root group
};

struct ExportReport {
  int64_t chains = 0, residues = 0;                // written
  int64_t skipped_short = 0, skipped_long = 0;     // outside [min_length, max_length]
};

// Writes the chains named by `ids` (in that order) from `db` into one shard at `out`. Every id
// must be in the database (the error names the first missing one and how many there are);
// `progress(done)` is called after each id. The shard also records the database path as the
// attribute "source".
ExportReport export_fold_shard(const StructureDb& db, const std::vector<std::string>& ids, const std::string& out,
                               const ExportOptions& opt = {},
                               const std::function<void(int64_t done)>& progress = {});

}  // namespace wensu::fold
