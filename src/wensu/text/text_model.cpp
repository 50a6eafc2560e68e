#include "wensu/text/text_model.h"

#include <filesystem>

#include "wensu/core/check.h"
#include "wensu/io/bundled.h"
#include "wensu/io/checkpoint.h"
#include "wensu/models/gpt2_convert.h"
#include "wensu/text/tokenizer_store.h"

namespace wensu::text {

TextModel load_text_model(const std::string& checkpoint) {
  WENSU_CHECK(std::filesystem::exists(checkpoint), "text model ", checkpoint, " does not exist (give --model: a",
              " checkpoint from `wensu text train` or `wensu convert gpt2`)");
  TextModel m;
  m.path = checkpoint;
  m.model = models::load_gpt_checkpoint(checkpoint);
  m.model->eval();
  m.tokenizer = tokenizer_from_meta(io::inspect_checkpoint(checkpoint).meta, checkpoint);
  return m;
}

std::string default_text_model_path() { return io::bundled_model_path("wensu-text/model.h5"); }

}  // namespace wensu::text
