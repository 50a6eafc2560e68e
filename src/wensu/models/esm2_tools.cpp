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
#include "wensu/io/hdf5_write.h"

namespace wensu::models {

std::shared_ptr<Esm2> load_esm2(const std::string& checkpoint) {
  auto model = load_esm2_checkpoint(checkpoint);
  model->eval();
  return model;
}

EmbedSummary embed_fasta(Esm2& model, const std::vector<std::string>& files, const std::string& out_h5,
                         const EmbedOptions& opt) {
  const auto& alphabet = io::EsmAlphabet::get();
  EmbedSummary sum;
  io::write_hdf5_atomically(out_h5, [&](hid_t file) {
    io::Hdf5Handle per(opt.per_residue ? H5Gcreate2(file, "per_residue", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1, H5Gclose);
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
          io::write_f32_matrix(per.get(), name, rows.data(), n, D, out_h5);
          io::Hdf5Handle set(H5Dopen2(per.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
          io::write_string_attr(set.get(), "id", batch_ids[size_t(b)], out_h5);
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
    io::write_f32_matrix(file, "mean", mean.data(), sum.sequences, D, out_h5);
    io::write_strings(file, "ids", ids, out_h5);
    io::write_string_attr(file, "model_config", nlohmann::json(model.config()).dump(), out_h5);
  });
  return sum;
}

}  // namespace wensu::models
