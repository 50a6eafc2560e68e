// A two-tower image-text model in the style of BriVL (WuDao's Wenlan) and CLIP: an image tower
// (Vit) and a text tower (the GPT-style transformer of the text models, pooled at each caption's
// last token as CLIP's text encoder is, or over all its tokens; or a bag of words, the baseline),
// each followed by a
// linear projection into one shared space, and a learned temperature. Trained with the
// symmetric InfoNCE loss (ops/contrastive.h); retrieval ranks by cosine similarity.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "wensu/models/gpt.h"
#include "wensu/models/vit.h"

namespace wensu::models {

struct DualEncoderConfig {
  VitConfig image;
  // transformer: models::Gpt's layers (causal), the features of each caption's last token;
  // bow: the mean of the caption's token embeddings (text.vocab_size x text.embed_dim), no layers.
  std::string text_tower = "transformer";
  // transformer only: last (the features of each caption's last token, CLIP's) or mean (the mean
  // of its tokens' features, as sentence encoders pool).
  std::string text_pool = "last";
  GptConfig text;                 // vocab_size from the tokenizer
  int64_t embed_dim = 128;        // the shared space
  double init_temperature = 0.07;  // CLIP's: logit scale 1 / 0.07 at the start

  void validate() const;
};

void to_json(nlohmann::json& j, const DualEncoderConfig& c);
void from_json(const nlohmann::json& j, DualEncoderConfig& c);  // strict

class DualEncoder : public nn::Module {
 public:
  DualEncoder(const DualEncoderConfig& cfg, Generator& gen);

  // images float [B, C, S, S] -> [B, E] (projected, not normalised).
  Tensor encode_images(const Tensor& images);
  // ids int64 [B, L] (right-padded with any valid id), lengths int64 [B] (1 <= len <= L) -> [B, E].
  Tensor encode_texts(const Tensor& ids, const Tensor& lengths);
  const DualEncoderConfig& config() const { return cfg_; }

  std::shared_ptr<Vit> image_tower;           // "image.*"
  std::shared_ptr<Gpt> text_tower;            // "text.*" (transformer)
  std::shared_ptr<nn::Embedding> text_words;  // "text_bow.*" (bow)
  std::shared_ptr<nn::Linear> image_proj, text_proj;  // [E, D_image], [E, D_text], no bias
  Tensor log_scale;                           // [1]: log of the inverse temperature

 private:
  DualEncoderConfig cfg_;
};

}  // namespace wensu::models
