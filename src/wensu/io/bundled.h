// Where the bundled models live (data/models/ in the source tree), for commands that work out of
// the box without --model: `wensu fold`, `wensu text generate`.
#pragma once
#include <string>

namespace wensu::io {

// $WENSU_MODELS/REL when WENSU_MODELS is set, else data/models/REL in the first folder above the
// running binary that has it (a build tree inside the checkout), else in the source tree this
// binary was built from.
std::string bundled_model_path(const std::string& rel);

}  // namespace wensu::io
