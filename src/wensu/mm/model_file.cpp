#include "wensu/mm/model_file.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/core/generator.h"
#include "wensu/io/bundled.h"
#include "wensu/io/checkpoint.h"
#include "wensu/io/jsonl.h"
#include "wensu/text/tokenizer_store.h"
#include "wensu/train/state.h"

namespace wensu::mm {

ImageTextModel load_image_text_model(const std::string& path) {
  WENSU_CHECK(std::filesystem::exists(path), "image-text model ", path,
              " does not exist (give --model: a checkpoint from `wensu mm train`)");
  io::Checkpoint ck = io::load_checkpoint(path);
  auto it = ck.meta.find("model");
  WENSU_CHECK(it != ck.meta.end() && it->second == "dual_encoder", "checkpoint ", path, " holds ",
              it == ck.meta.end() ? std::string("no model kind") : "a '" + it->second + "' model",
              ", not an image-text model from `wensu mm train`");
  const std::string what = "checkpoint " + path + " model_config";
  models::DualEncoderConfig cfg;
  try {
    cfg = io::parse_json(ck.model_config, what).get<models::DualEncoderConfig>();
  } catch (const Error& e) {
    throw Error(detail::concat(what, ": ", e.what()));
  }
  ImageTextModel m;
  m.path = path;
  Generator gen(0);
  m.model = std::make_shared<models::DualEncoder>(cfg, gen);
  {
    NoGradGuard ng;
    io::load_tensors_into(ck.params, train::to_io(m.model->named_parameters()), path, "parameter");
  }
  m.model->eval();
  m.tokenizer = text::tokenizer_from_meta(ck.meta, path);
  const nlohmann::json tc = io::parse_json(ck.train_config.empty() ? "{}" : ck.train_config, what);
  m.max_tokens = tc.value("max_tokens", cfg.text.max_positions);
  return m;
}

std::string default_image_text_model_path() { return io::bundled_model_path("wensu-mm/model.h5"); }

}  // namespace wensu::mm
