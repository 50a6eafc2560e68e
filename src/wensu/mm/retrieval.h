// Retrieval with a trained two-tower model: embeddings (normalised, no autograd), recall@k of
// matched pairs in both directions, and the top k of a query.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "wensu/core/tensor.h"
#include "wensu/models/dual_encoder.h"

namespace wensu::mm {

// pixels float [N, C, S, S] -> unit rows [N, E] (float32, CPU), in chunks of `chunk` images.
Tensor embed_images(models::DualEncoder& model, const Tensor& pixels, int64_t chunk = 256);
// tokenised captions (end-of-text last) -> unit rows [N, E].
Tensor embed_texts(models::DualEncoder& model, const std::vector<std::vector<int64_t>>& ids, int64_t pad_id,
                   int64_t chunk = 256);

// images [N, E], texts [N, E], unit rows, row i of each a matched pair. For each k:
// "i2t_r<k>": the fraction of images whose caption is among the k texts most similar to them;
// "t2i_r<k>": the same from the captions to the images. Ties count against the match.
std::map<std::string, double> recall_at_k(const Tensor& images, const Tensor& texts, const std::vector<int64_t>& ks);

// The k best of `candidates` [N, E] for `query` [E] (unit rows): (index, cosine), best first.
std::vector<std::pair<int64_t, float>> top_k(const Tensor& query, const Tensor& candidates, int64_t k);

}  // namespace wensu::mm
