#include "wensu/models/vit.h"

#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/io/json_fields.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/shape.h"

namespace wensu::models {

nn::TransformerConfig VitConfig::encoder_config() const {
  nn::TransformerConfig t;
  t.d_model = embed_dim;
  t.n_heads = num_heads;
  t.n_layers = num_layers;
  t.norm = "layernorm";
  t.norm_eps = norm_eps;
  t.dropout = dropout;
  t.bias = true;
  t.final_norm = true;
  t.attention.causal = false;
  t.ffn.kind = "dense";
  t.ffn.d_ff = d_ff > 0 ? d_ff : 4 * embed_dim;
  t.ffn.activation = activation;
  return t;
}

void VitConfig::validate() const {
  WENSU_CHECK(channels >= 1, "vit config: channels must be >= 1, got ", channels);
  WENSU_CHECK(patch_size >= 1 && image_size >= patch_size && image_size % patch_size == 0,
              "vit config: patch_size (", patch_size, ") must divide image_size (", image_size, ")");
  WENSU_CHECK(pool == "cls" || pool == "mean", "vit config: pool must be 'cls' or 'mean', got '", pool, "'");
  WENSU_CHECK(d_ff >= 0, "vit config: d_ff must be >= 0 (0 = 4 * embed_dim), got ", d_ff);
  WENSU_CHECK(embed_dim > 0 && num_heads > 0 && embed_dim % num_heads == 0, "vit config: embed_dim (", embed_dim,
              ") must be a positive multiple of num_heads (", num_heads, ")");
  try {
    encoder_config().validate();
  } catch (const Error& e) {
    throw Error(std::string("vit ") + e.what());
  }
}

void to_json(nlohmann::json& j, const VitConfig& c) {
  j = {{"image_size", c.image_size}, {"patch_size", c.patch_size}, {"channels", c.channels},
       {"embed_dim", c.embed_dim},   {"num_heads", c.num_heads},   {"num_layers", c.num_layers},
       {"d_ff", c.d_ff},             {"activation", c.activation}, {"pool", c.pool},
       {"norm_eps", c.norm_eps},     {"dropout", c.dropout}};
}

void from_json(const nlohmann::json& j, VitConfig& c) {
  {
    io::JsonFields r(j, "vit config");
    r("image_size", c.image_size);
    r("patch_size", c.patch_size);
    r("channels", c.channels);
    r("embed_dim", c.embed_dim);
    r("num_heads", c.num_heads);
    r("num_layers", c.num_layers);
    r("d_ff", c.d_ff);
    r("activation", c.activation);
    r("pool", c.pool);
    r("norm_eps", c.norm_eps);
    r("dropout", c.dropout);
  }
  c.validate();
}

Tensor patchify(const Tensor& images, int64_t p) {
  WENSU_CHECK(images.defined() && images.dim() == 4, "patchify: images must be [batch, channels, height, width], got ",
              images.defined() ? images.describe() : "undefined");
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  WENSU_CHECK(p >= 1 && H % p == 0 && W % p == 0, "patchify: patch size ", p, " does not divide the image ", H, "x", W);
  Tensor x = ops::reshape(images, {B, C, H / p, p, W / p, p});  // [B, C, gh, p, gw, p]
  x = ops::permute(x, {0, 2, 4, 1, 3, 5});                       // [B, gh, gw, C, p, p]
  return ops::reshape(ops::contiguous(x), {B, (H / p) * (W / p), C * p * p});
}

Vit::Vit(const VitConfig& cfg, Generator& gen) : cfg_(cfg) {
  cfg.validate();
  const int64_t D = cfg.embed_dim;
  patch_embed = register_module("patch_embed", std::make_shared<nn::Linear>(cfg.patch_dim(), D, true, gen));
  // Small random starts, as ViT's trunc_normal(0.02): the token and positions are added to patch
  // features of about unit scale.
  cls_token = register_parameter("cls_token", ops::scale(Tensor::randn({1, 1, D}, gen), 0.02));
  pos_embed = register_parameter("pos_embed", ops::scale(Tensor::randn({1, 1 + cfg.num_patches(), D}, gen), 0.02));
  encoder = register_module("encoder", std::make_shared<nn::Transformer>(cfg.encoder_config(), gen));
  drop_ = register_module("dropout", std::make_shared<nn::Dropout>(cfg.dropout));
}

Tensor Vit::forward(const Tensor& images) {
  WENSU_CHECK(images.defined() && images.dim() == 4 && images.size(1) == cfg_.channels &&
                  images.size(2) == cfg_.image_size && images.size(3) == cfg_.image_size,
              "Vit: images must be [batch, ", cfg_.channels, ", ", cfg_.image_size, ", ", cfg_.image_size, "], got ",
              images.defined() ? images.describe() : "undefined");
  const int64_t B = images.size(0), D = cfg_.embed_dim;
  Tensor x = patch_embed->forward(patchify(images, cfg_.patch_size));  // [B, P, D]
  Tensor cls = ops::expand(cls_token, {B, 1, D});                       // [B, 1, D]
  x = ops::add(ops::concat({cls, x}, 1), pos_embed);                    // [B, 1 + P, D]
  x = encoder->forward(drop_->forward(x));                              // [B, 1 + P, D]
  if (cfg_.pool == "mean") return ops::mean(x.narrow(1, 1, cfg_.num_patches()), {1});  // [B, D]
  return ops::reshape(x.narrow(1, 0, 1), {B, D});                                      // [B, D]
}

}  // namespace wensu::models
