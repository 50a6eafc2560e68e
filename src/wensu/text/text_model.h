// A text model as `wensu text generate` uses it: the GPT and its tokenizer, both from one Wensu
// checkpoint (written by `wensu text train` or `wensu convert gpt2`).
#pragma once
#include <memory>
#include <string>

#include "wensu/models/gpt.h"
#include "wensu/text/tokenizer.h"

namespace wensu::text {

struct TextModel {
  std::shared_ptr<models::Gpt> model;  // in eval mode
  std::unique_ptr<Tokenizer> tokenizer;
  std::string path;
};

// Errors name the file and say what it holds when it is not a text model.
TextModel load_text_model(const std::string& checkpoint);

// The bundled model: data/models/wensu-text/model.h5 (io::bundled_model_path).
std::string default_text_model_path();

}  // namespace wensu::text
