#include "wensu/models/dual_encoder.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/io/json_fields.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/indexing.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/shape.h"

namespace wensu::models {

void DualEncoderConfig::validate() const {
  image.validate();
  WENSU_CHECK(text_tower == "transformer" || text_tower == "bow",
              "dual encoder config: text_tower must be 'transformer' or 'bow', got '", text_tower, "'");
  WENSU_CHECK(text_pool == "last" || text_pool == "mean", "dual encoder config: text_pool must be 'last' or 'mean', got '",
              text_pool, "'");
  text.validate();
  WENSU_CHECK(embed_dim >= 1, "dual encoder config: embed_dim must be >= 1, got ", embed_dim);
  WENSU_CHECK(init_temperature > 0, "dual encoder config: init_temperature must be > 0, got ", init_temperature);
}

void to_json(nlohmann::json& j, const DualEncoderConfig& c) {
  j = {{"image", c.image},         {"text_tower", c.text_tower}, {"text_pool", c.text_pool}, {"text", c.text},
       {"embed_dim", c.embed_dim}, {"init_temperature", c.init_temperature}};
}

void from_json(const nlohmann::json& j, DualEncoderConfig& c) {
  {
    io::JsonFields r(j, "dual encoder config");
    r.section("image", c.image);
    r("text_tower", c.text_tower);
    r("text_pool", c.text_pool);
    r.section("text", c.text);
    r("embed_dim", c.embed_dim);
    r("init_temperature", c.init_temperature);
  }
  c.validate();
}

DualEncoder::DualEncoder(const DualEncoderConfig& cfg, Generator& gen) : cfg_(cfg) {
  cfg.validate();
  image_tower = register_module("image", std::make_shared<Vit>(cfg.image, gen));
  if (cfg.text_tower == "transformer")
    text_tower = register_module("text", std::make_shared<Gpt>(cfg.text, gen));
  else
    text_words = register_module("text_bow", std::make_shared<nn::Embedding>(cfg.text.vocab_size, cfg.text.embed_dim, gen));
  image_proj = register_module("image_proj", std::make_shared<nn::Linear>(cfg.image.embed_dim, cfg.embed_dim, false, gen));
  text_proj = register_module("text_proj", std::make_shared<nn::Linear>(cfg.text.embed_dim, cfg.embed_dim, false, gen));
  log_scale = register_parameter("log_scale", Tensor::full({1}, std::log(1.0 / cfg.init_temperature)));
}

Tensor DualEncoder::encode_images(const Tensor& images) {
  return image_proj->forward(image_tower->forward(images));  // [B, D_image] -> [B, E]
}

Tensor DualEncoder::encode_texts(const Tensor& ids, const Tensor& lengths) {
  WENSU_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == DType::i64, "DualEncoder: ids must be int64 [batch, length]");
  WENSU_CHECK(lengths.defined() && lengths.dim() == 1 && lengths.dtype() == DType::i64 && lengths.size(0) == ids.size(0),
              "DualEncoder: lengths must be int64 [batch] (one per row of ids)");
  const int64_t B = ids.size(0), L = ids.size(1);
  const Tensor len = lengths.to(Device::cpu).contiguous();
  const int64_t* n = len.data<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    WENSU_CHECK(n[b] >= 1 && n[b] <= L, "DualEncoder: caption ", b, " has length ", n[b], ", outside [1, ", L, "]");
  // Causal layers: a caption's tokens have seen only the caption, whatever pads follow.
  if (text_tower && cfg_.text_pool == "last") {
    const int64_t D = cfg_.text.embed_dim;
    Tensor h = ops::reshape(text_tower->hidden(ids), {B * L, D});  // [B*L, D]
    std::vector<int64_t> last(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) last[size_t(b)] = b * L + n[b] - 1;
    Tensor idx = Tensor::from_vector(last, {B}).to(ids.device());
    return text_proj->forward(ops::index_select(h, 0, idx));  // [B, E]
  }
  // The mean over the real tokens of the transformer's features or of the word embeddings (bow).
  std::vector<float> mask(static_cast<size_t>(B * L), 0.f), inv(static_cast<size_t>(B), 0.f);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < n[b]; ++t) mask[size_t(b * L + t)] = 1.f;
    inv[size_t(b)] = 1.f / float(n[b]);
  }
  Tensor e = text_tower ? text_tower->hidden(ids) : text_words->forward(ids);  // [B, L, D]
  Tensor m = Tensor::from_vector(mask, {B, L, 1}).to(e.device()).to(e.dtype());  // [B, L, 1]
  Tensor w = Tensor::from_vector(inv, {B, 1}).to(e.device()).to(e.dtype());      // [B, 1]
  return text_proj->forward(ops::mul(ops::sum(ops::mul(e, m), {1}), w));        // [B, E]
}

}  // namespace wensu::models
