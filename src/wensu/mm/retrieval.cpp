#include "wensu/mm/retrieval.h"

#include <algorithm>
#include <numeric>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/mm/pairs.h"
#include "wensu/ops/contrastive.h"
#include "wensu/ops/matmul.h"
#include "wensu/ops/shape.h"

namespace wensu::mm {
namespace {

// Rows [0, n) in chunks through `encode`, normalised, concatenated on the CPU.
template <class Encode>
Tensor embed_chunks(int64_t n, int64_t chunk, Encode encode) {
  WENSU_CHECK(n >= 1 && chunk >= 1, "embed: nothing to embed");
  NoGradGuard ng;
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < n; s += chunk)
    parts.push_back(ops::l2_normalize(encode(s, std::min(chunk, n - s))).to(Device::cpu).to(DType::f32));
  return parts.size() == 1 ? parts[0].contiguous() : ops::concat(parts, 0);
}

}  // namespace

Tensor embed_images(models::DualEncoder& model, const Tensor& pixels, int64_t chunk) {
  const bool was = model.is_training();
  model.eval();
  Tensor out = embed_chunks(pixels.size(0), chunk, [&](int64_t s, int64_t len) {
    return model.encode_images(pixels.narrow(0, s, len).contiguous());
  });
  model.train(was);
  return out;
}

Tensor embed_texts(models::DualEncoder& model, const std::vector<std::vector<int64_t>>& ids, int64_t pad_id,
                   int64_t chunk) {
  const bool was = model.is_training();
  model.eval();
  Tensor out = embed_chunks(int64_t(ids.size()), chunk, [&](int64_t s, int64_t len) {
    TokenBatch tb = pad_captions({ids.begin() + s, ids.begin() + s + len}, pad_id);
    return model.encode_texts(tb.ids, tb.lengths);
  });
  model.train(was);
  return out;
}

std::map<std::string, double> recall_at_k(const Tensor& images, const Tensor& texts, const std::vector<int64_t>& ks) {
  WENSU_CHECK(images.dim() == 2 && texts.dim() == 2 && images.size(0) == texts.size(0) && images.size(1) == texts.size(1),
              "recall_at_k: images and texts must be [N, E] alike, got ", images.describe(), " and ", texts.describe());
  const int64_t N = images.size(0);
  Tensor sim = ops::matmul(images.to(DType::f64), ops::transpose(texts.to(DType::f64), 0, 1)).contiguous();  // [N, N]
  const double* s = sim.data<double>();
  // rank of the match: how many candidates score at least as high as it (itself excluded).
  std::vector<int64_t> rank_i2t(size_t(N), 0), rank_t2i(size_t(N), 0);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      if (j == i) continue;
      if (s[i * N + j] >= s[i * N + i]) ++rank_i2t[size_t(i)];  // image i: text j vs its own
      if (s[j * N + i] >= s[i * N + i]) ++rank_t2i[size_t(i)];  // text i: image j vs its own
    }
  std::map<std::string, double> out;
  for (int64_t k : ks) {
    int64_t a = 0, b = 0;
    for (int64_t i = 0; i < N; ++i) {
      a += rank_i2t[size_t(i)] < k;
      b += rank_t2i[size_t(i)] < k;
    }
    out["i2t_r" + std::to_string(k)] = double(a) / double(N);
    out["t2i_r" + std::to_string(k)] = double(b) / double(N);
  }
  return out;
}

std::vector<std::pair<int64_t, float>> top_k(const Tensor& query, const Tensor& candidates, int64_t k) {
  WENSU_CHECK(candidates.dim() == 2 && query.numel() == candidates.size(1), "top_k: query of ", query.numel(),
              " values against candidates ", candidates.describe());
  const int64_t N = candidates.size(0), E = candidates.size(1);
  const Tensor q = query.to(DType::f32).contiguous(), c = candidates.to(DType::f32).contiguous();
  std::vector<std::pair<int64_t, float>> all(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    double d = 0;
    for (int64_t e = 0; e < E; ++e) d += double(q.data<float>()[e]) * c.data<float>()[i * E + e];
    all[size_t(i)] = {i, float(d)};
  }
  k = std::min(k, N);
  std::partial_sort(all.begin(), all.begin() + k, all.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  all.resize(size_t(k));
  return all;
}

}  // namespace wensu::mm
