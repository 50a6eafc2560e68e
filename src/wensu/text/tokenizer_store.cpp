#include "wensu/text/tokenizer_store.h"

#include <openssl/evp.h>

#include <vector>

#include "wensu/core/check.h"

namespace wensu::text {
namespace {

constexpr const char* kFilePrefix = "tokenizer.file.";

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), int(bytes.size()));
  out.resize(size_t(n));
  return out;
}

std::string unbase64(const std::string& text, const std::string& what) {
  WENSU_CHECK(text.size() % 4 == 0, what, " is not base64 (length ", text.size(), ")");
  std::string out(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), int(text.size()));
  WENSU_CHECK(n >= 0, what, " is not valid base64");
  // EVP_DecodeBlock counts the '=' padding as zero bytes: drop them.
  size_t pad = 0;
  for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) ++pad;
  out.resize(size_t(n) - pad);
  return out;
}

}  // namespace

std::map<std::string, std::string> tokenizer_meta(const Tokenizer& tok) {
  std::map<std::string, std::string> meta{{"tokenizer.kind", tok.kind()}};
  for (const auto& [name, contents] : tok.files()) meta[kFilePrefix + name] = base64(contents);
  return meta;
}

std::unique_ptr<Tokenizer> tokenizer_from_meta(const std::map<std::string, std::string>& meta, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> files;
  const std::string prefix = kFilePrefix;
  for (const auto& [key, value] : meta)
    if (key.compare(0, prefix.size(), prefix) == 0)
      files.emplace_back(key.substr(prefix.size()), unbase64(value, path + ": meta " + key));
  WENSU_CHECK(!files.empty(), path, " has no tokenizer (it is not a Wensu text model; convert GPT-2 folders with",
              " `wensu convert gpt2`, or train one with `wensu text train`)");
  return load_tokenizer_from_files(files);
}

}  // namespace wensu::text
