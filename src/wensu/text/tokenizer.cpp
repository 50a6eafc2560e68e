// The shared decoding rule, the UTF-8 stream and the loaders that pick a tokenizer by its files.
#include "wensu/text/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "wensu/core/check.h"
#include "wensu/text/bpe.h"
#include "wensu/text/sentencepiece.h"

namespace wensu::text {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

enum class Utf8 { kValid, kInvalid, kIncomplete };

// The sequence starting at bytes[i]: a whole character (kValid, its length), a maximal
// ill-formed subpart (kInvalid, its length >= 1: the bytes to replace by one U+FFFD), or the
// well-formed start of a character cut by the end of `bytes` (kIncomplete, the rest of `bytes`).
std::pair<Utf8, size_t> scan_utf8(std::string_view bytes, size_t i) {
  const auto b0 = static_cast<unsigned char>(bytes[i]);
  if (b0 < 0x80) return {Utf8::kValid, 1};
  size_t need;                           // continuation bytes
  unsigned char lo = 0x80, hi = 0xBF;    // the range allowed for the second byte (Table 3-7)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {Utf8::kInvalid, 1};  // 80..C1, F5..FF never start a character
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= bytes.size()) return {Utf8::kIncomplete, bytes.size() - i};
    const auto b = static_cast<unsigned char>(bytes[i + k]);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return {Utf8::kInvalid, k};
  }
  return {Utf8::kValid, need + 1};
}

}  // namespace

std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const auto [kind, len] = scan_utf8(bytes, i);
    if (kind == Utf8::kValid) {
      out.append(bytes.substr(i, len));
    } else {
      out.append(kReplacement);  // an incomplete tail is ill-formed too once nothing follows
    }
    i += len;
  }
  return out;
}

size_t utf8_settled_prefix(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    const auto [kind, len] = scan_utf8(bytes, i);
    if (kind == Utf8::kIncomplete) return i;
    i += len;
  }
  return bytes.size();
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  bool at_start = true;
  for (int64_t id : ids) {
    bytes += decoded_bytes(id, at_start);
    at_start = is_special(id);
  }
  return to_valid_utf8(bytes);
}

std::string Utf8Stream::push(int64_t id) {
  pending_ += tokenizer_->decoded_bytes(id, at_start_);
  at_start_ = tokenizer_->is_special(id);
  // Maximal subparts never reach past an incomplete tail, so replacing the settled prefix now
  // gives the same text as replacing everything at the end (what decode() does).
  const size_t n = utf8_settled_prefix(pending_);
  std::string out = to_valid_utf8(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out = to_valid_utf8(pending_);
  pending_.clear();
  at_start_ = true;
  return out;
}

// --- loading --------------------------------------------------------------------------------

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  WENSU_CHECK(fs::exists(st), "tokenizer: ", path, " does not exist; give a directory holding vocab.json and ",
              "merges.txt (GPT-2 BPE) or a SentencePiece .model file");
  if (fs::is_regular_file(st)) {
    WENSU_CHECK(ends_with(path, ".model"), "tokenizer: ", path, " is a file but not a SentencePiece .model file; ",
                "for GPT-2 BPE give the directory that holds vocab.json and merges.txt");
    return SentencePieceTokenizer::from_file(path);
  }
  WENSU_CHECK(fs::is_directory(st), "tokenizer: ", path, " is neither a file nor a directory");
  const fs::path dir(path);
  if (fs::exists(dir / "vocab.json") || fs::exists(dir / "merges.txt")) {
    WENSU_CHECK(fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"), "tokenizer: ", path,
                " holds only one of vocab.json and merges.txt; GPT-2 BPE needs both");
    return BpeTokenizer::from_files((dir / "vocab.json").string(), (dir / "merges.txt").string());
  }
  if (fs::exists(dir / "tokenizer.model")) return SentencePieceTokenizer::from_file((dir / "tokenizer.model").string());
  std::vector<std::string> models;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".model") models.push_back(e.path().filename().string());
  std::sort(models.begin(), models.end());
  WENSU_CHECK(!models.empty(), "tokenizer: ", path, " holds neither vocab.json + merges.txt (GPT-2 BPE) nor a ",
              "SentencePiece .model file");
  std::string list;
  for (const auto& m : models) list += (list.empty() ? "" : ", ") + m;
  WENSU_CHECK(models.size() == 1, "tokenizer: ", path, " holds several .model files (", list,
              "); give the path of the one to use");
  return SentencePieceTokenizer::from_file((dir / models[0]).string());
}

std::unique_ptr<Tokenizer> load_tokenizer_from_files(const std::vector<std::pair<std::string, std::string>>& files) {
  const std::string* vocab = nullptr;
  const std::string* merges = nullptr;
  const std::pair<std::string, std::string>* model = nullptr;
  std::string names;
  for (const auto& f : files) {
    names += (names.empty() ? "" : ", ") + f.first;
    if (f.first == "vocab.json") vocab = &f.second;
    if (f.first == "merges.txt") merges = &f.second;
    if (ends_with(f.first, ".model")) model = &f;
  }
  if (vocab && merges) return BpeTokenizer::from_strings(*vocab, *merges);
  WENSU_CHECK(model, "tokenizer files: expected vocab.json and merges.txt (GPT-2 BPE) or one .model file ",
              "(SentencePiece), got [", names, "]");
  return SentencePieceTokenizer::from_serialized(model->second, model->first);
}

}  // namespace wensu::text
