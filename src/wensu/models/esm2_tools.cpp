#include "wensu/models/esm2_tools.h"

#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/models/esm2_convert.h"
#include "wensu/io/esm_alphabet.h"
#include "wensu/io/fasta.h"
#include "wensu/io/hdf5.h"

namespace wensu::models {
namespace {


void check_h5(bool ok, const std::string& path, const char* what) {
  WENSU_CHECK(ok, "embed: writing ", path, " failed (", what, "): is the disk full or the folder read-only?");
}

void write_2d(hid_t loc, const std::string& name, const std::vector<float>& v, int64_t rows, int64_t cols,
              const std::string& path) {
  hsize_t dims[2] = {hsize_t(rows), hsize_t(cols)};
  io::Hdf5Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose);
  io::Hdf5Handle set(H5Dcreate2(loc, name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  check_h5(set.get() >= 0, path, name.c_str());
  check_h5(rows == 0 || H5Dwrite(set.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0, path,
           name.c_str());
}

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& v, const std::string& path) {
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  hsize_t dims[1] = {hsize_t(v.size())};
  io::Hdf5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  io::Hdf5Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  io::Hdf5Handle set(H5Dcreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  check_h5(set.get() >= 0, path, name.c_str());
  check_h5(v.empty() || H5Dwrite(set.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) >= 0, path, name.c_str());
}

void write_string_attr(hid_t loc, const char* name, const std::string& value) {
  io::Hdf5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.size() + 1);
  io::Hdf5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  io::Hdf5Handle attr(H5Acreate2(loc, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5Awrite(attr.get(), type.get(), value.c_str());
}

}  // namespace

std::shared_ptr<Esm2> load_esm2(const std::string& checkpoint) {
  auto model = load_esm2_checkpoint(checkpoint);
  model->eval();
  return model;
}

EmbedSummary embed_fasta(Esm2& model, const std::vector<std::string>& files, const std::string& out_h5,
                         const EmbedOptions& opt) {
  const auto& alphabet = io::EsmAlphabet::get();
  const std::string tmp = out_h5 + ".tmp." + std::to_string(::getpid());
  io::Hdf5Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  WENSU_CHECK(file.get() >= 0, "embed: cannot create ", tmp, " (does the folder exist and is it writable?)");
  EmbedSummary sum;
  try {
    io::Hdf5Handle per(opt.per_residue ? H5Gcreate2(file.get(), "per_residue", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1, H5Gclose);
    NoGradGuard ng;
    model.eval();
    const int64_t D = model.config().embed_dim;
    sum.dim = D;
    std::vector<std::string> ids;
    std::vector<float> mean;
    std::vector<std::vector<int64_t>> batch;
    std::vector<std::string> batch_ids;
    int64_t longest = 0;
    auto flush = [&] {
      if (batch.empty()) return;
      const int64_t B = int64_t(batch.size()), L = longest;
      std::vector<int64_t> tok(size_t(B * L), alphabet.pad());
      for (int64_t b = 0; b < B; ++b) std::copy(batch[size_t(b)].begin(), batch[size_t(b)].end(), tok.begin() + b * L);
      Tensor reps;
      model.forward(Tensor::from_vector(tok, {B, L}), &reps);  // reps [B, L, D]
      const auto r = reps.to(DType::f32).contiguous().to_vector<float>();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t n = int64_t(batch[size_t(b)].size()) - 2;  // residues between <cls> and <eos>
        std::vector<float> m(size_t(D), 0.0f), rows;
        for (int64_t i = 1; i <= n; ++i) {
          const float* row = r.data() + (b * L + i) * D;
          for (int64_t d = 0; d < D; ++d) m[size_t(d)] += row[d] / float(n);
          if (opt.per_residue) rows.insert(rows.end(), row, row + D);
        }
        mean.insert(mean.end(), m.begin(), m.end());
        if (opt.per_residue) {
          const std::string name = std::to_string(sum.sequences);
          write_2d(per.get(), name, rows, n, D, out_h5);
          io::Hdf5Handle set(H5Dopen2(per.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
          write_string_attr(set.get(), "id", batch_ids[size_t(b)]);
        }
        ids.push_back(batch_ids[size_t(b)]);
        ++sum.sequences;
        sum.residues += n;
      }
      batch.clear();
      batch_ids.clear();
      longest = 0;
    };
    io::FastaOptions fo;
    fo.skip_invalid = opt.skip_invalid;
    for (const auto& path : io::expand_paths(files)) {
      io::FastaReader reader(path, fo);
      io::FastaRecord rec;
      while (reader.next(rec)) {
        std::vector<int64_t> t = alphabet.encode(rec.sequence, true);
        const int64_t len = int64_t(t.size());
        if (!batch.empty() && int64_t(batch.size() + 1) * std::max(longest, len) > opt.tokens_per_batch) flush();
        batch.push_back(std::move(t));
        batch_ids.push_back(rec.id);
        longest = std::max(longest, len);
      }
    }
    flush();
    write_2d(file.get(), "mean", mean, sum.sequences, D, out_h5);
    write_strings(file.get(), "ids", ids, out_h5);
    write_string_attr(file.get(), "model_config", nlohmann::json(model.config()).dump());
  } catch (...) {
    file.reset();
    std::filesystem::remove(tmp);
    throw;
  }
  check_h5(H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0, out_h5, "flush");
  check_h5(file.reset() >= 0, out_h5, "close");
  std::filesystem::rename(tmp, out_h5);
  return sum;
}

}  // namespace wensu::models
