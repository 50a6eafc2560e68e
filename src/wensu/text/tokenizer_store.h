// A tokenizer inside a model checkpoint: its files (Tokenizer::files()) as meta attributes
// "tokenizer.kind" and "tokenizer.file.NAME" (base64, since a SentencePiece model is binary), so
// a trained or imported text model is one self-contained file.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "wensu/text/tokenizer.h"

namespace wensu::text {

std::map<std::string, std::string> tokenizer_meta(const Tokenizer& tok);

// The tokenizer stored by tokenizer_meta; `path` names the checkpoint in the error when the
// meta holds none ("... has no tokenizer").
std::unique_ptr<Tokenizer> tokenizer_from_meta(const std::map<std::string, std::string>& meta, const std::string& path);

}  // namespace wensu::text
