// Vision transformer (Dosovitskiy et al. 2021, "An image is worth 16x16 words") from the shared
// transformer modules: the image is cut into patch x patch squares, each flattened and projected
// to embed_dim (a Conv2d with kernel = stride = patch, as a matrix product), a learned [CLS]
// token is prepended, learned positions added, and the pre-LN encoder runs without a causal mask.
// The image tower of the two-tower model (dual_encoder.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "wensu/core/generator.h"
#include "wensu/nn/config.h"
#include "wensu/nn/layers.h"
#include "wensu/nn/transformer.h"

namespace wensu::models {

struct VitConfig {
  int64_t image_size = 32;  // input is channels x image_size x image_size
  int64_t patch_size = 8;   // must divide image_size
  int64_t channels = 3;
  int64_t embed_dim = 192;
  int64_t num_heads = 3;
  int64_t num_layers = 4;
  int64_t d_ff = 0;                 // 0 = 4 * embed_dim
  std::string activation = "gelu";
  std::string pool = "cls";         // cls: the [CLS] token's features; mean: the mean over patches
  double norm_eps = 1e-6;           // ViT's LayerNorm eps
  double dropout = 0.0;

  int64_t grid() const { return image_size / patch_size; }           // patches per side
  int64_t num_patches() const { return grid() * grid(); }
  int64_t patch_dim() const { return channels * patch_size * patch_size; }
  nn::TransformerConfig encoder_config() const;  // non-causal dense attention, final norm on
  void validate() const;                         // throws wensu::Error naming the bad field
};

void to_json(nlohmann::json& j, const VitConfig& c);
void from_json(const nlohmann::json& j, VitConfig& c);  // strict: unknown keys are errors

// images [B, C, S, S] -> patches [B, (S/p)^2, C*p*p]: patches in row-major order, each flattened
// channel-major then row-major (the layout of a Conv2d weight [D, C, p, p]). Differentiable.
Tensor patchify(const Tensor& images, int64_t patch);

class Vit : public nn::Module {
 public:
  Vit(const VitConfig& cfg, Generator& gen);
  // images float [B, C, S, S] -> pooled features [B, D] (after the encoder's final norm).
  Tensor forward(const Tensor& images);
  const VitConfig& config() const { return cfg_; }

  std::shared_ptr<nn::Linear> patch_embed;  // [D, C*p*p] + bias
  Tensor cls_token;                         // [1, 1, D]
  Tensor pos_embed;                         // [1, 1 + patches, D]
  std::shared_ptr<nn::Transformer> encoder;

 private:
  VitConfig cfg_;
  std::shared_ptr<nn::Dropout> drop_;
};

}  // namespace wensu::models
