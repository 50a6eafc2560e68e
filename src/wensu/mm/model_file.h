// A trained two-tower model as `wensu mm` uses it: the DualEncoder, its tokenizer and its
// caption length, all from one checkpoint written by `wensu mm train`.
#pragma once
#include <memory>
#include <string>

#include "wensu/models/dual_encoder.h"
#include "wensu/text/tokenizer.h"

namespace wensu::mm {

struct ImageTextModel {
  std::shared_ptr<models::DualEncoder> model;  // in eval mode
  std::unique_ptr<text::Tokenizer> tokenizer;
  int64_t max_tokens = 32;                     // caption tokens as trained (end-of-text included)
  std::string path;
};

// Errors name the file and what it holds when it is not a two-tower model.
ImageTextModel load_image_text_model(const std::string& checkpoint);

// The bundled model: data/models/wensu-mm/model.h5 (io::bundled_model_path).
std::string default_image_text_model_path();

}  // namespace wensu::mm
