// SentencePiece through Debian's libsentencepiece: the processor behind the Tokenizer interface,
// and training from text files.
#include "wensu/text/sentencepiece.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "wensu/core/check.h"

namespace wensu::text {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";            // "▁", SentencePiece's space
constexpr std::string_view kUnkSurface = " \xE2\x81\x87 ";     // " ⁇ ", its default <unk> surface

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t done = 0;
  for (size_t at = s.find(from); at != std::string_view::npos; at = s.find(from, done)) {
    out.append(s.substr(done, at - done)).append(to);
    done = at + from.size();
  }
  return out.append(s.substr(done));
}

size_t count(const std::string& s, std::string_view what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

std::string joined_pieces(const sentencepiece::SentencePieceProcessor& sp, std::string_view text) {
  std::vector<std::string> pieces;
  if (!sp.Encode(text, &pieces).ok()) return "";
  std::string out;
  for (const auto& p : pieces) out += p;
  return out;
}

}  // namespace

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_file(const std::string& model_path) {
  std::ifstream in(model_path, std::ios::binary);
  WENSU_CHECK(in, "SentencePiece: cannot open model file ", model_path, " (it must exist and be readable)");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_serialized(ss.str(), model_path);
}

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_serialized(const std::string& serialized,
                                                                               const std::string& name) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(serialized);
  WENSU_CHECK(status.ok() && sp->GetPieceSize() > 0, "SentencePiece: ", name, " is not a SentencePiece model (",
              status.ToString(), "); expected a .model file written by SentencePiece's trainer");
  return std::unique_ptr<SentencePieceTokenizer>(new SentencePieceTokenizer(std::move(sp)));
}

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp)
    : sp_(std::move(sp)) {
  for (int id = 0; id < sp_->GetPieceSize(); ++id)
    if (sp_->IsControl(id) && !sp_->IdToPiece(id).empty()) specials_.emplace_back(sp_->IdToPiece(id), id);
  std::sort(specials_.begin(), specials_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  // The model's normaliser settings live in its proto, whose headers Debian does not ship; read
  // them off the encoder instead. "x" holds no space, so a "▁" in its pieces is the dummy prefix;
  // " x" keeps its space unless the model collapses whitespace. SentencePiece's decoder drops
  // the leading "▁" when either is set.
  const size_t dummy = count(joined_pieces(*sp_, "x"), kSpace);
  const size_t spaced = count(joined_pieces(*sp_, " x"), kSpace);
  strip_leading_space_ = dummy > 0 || spaced == dummy;
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

int64_t SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int64_t SentencePieceTokenizer::eos_id() const { return sp_->eos_id(); }

void SentencePieceTokenizer::check_id(int64_t id) const {
  WENSU_CHECK(id >= 0 && id < vocab_size(), "SentencePiece: token id ", id, " is out of range [0, ", vocab_size(), ")");
}

std::string SentencePieceTokenizer::piece(int64_t id) const {
  check_id(id);
  return sp_->IdToPiece(static_cast<int>(id));
}

bool SentencePieceTokenizer::is_byte(int64_t id) const {
  check_id(id);
  return sp_->IsByte(static_cast<int>(id));
}

bool SentencePieceTokenizer::is_special(int64_t id) const {
  return id >= 0 && id < vocab_size() && sp_->IsControl(static_cast<int>(id));
}

std::vector<std::pair<std::string, std::string>> SentencePieceTokenizer::files() const {
  return {{"tokenizer.model", sp_->serialized_model_proto()}};
}

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  std::vector<int> ids;
  auto encode_span = [&](std::string_view span) {
    if (span.empty()) return;
    const auto status = sp_->Encode(span, &ids);
    WENSU_CHECK(status.ok(), "SentencePiece: encoding failed: ", status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  };
  size_t done = 0;
  while (true) {
    // The leftmost special token, the longest at equal positions.
    size_t best = std::string_view::npos;
    const std::pair<std::string, int64_t>* hit = nullptr;
    for (const auto& s : specials_) {
      const size_t at = text.find(s.first, done);
      if (at < best) best = at, hit = &s;
    }
    if (!hit) break;
    encode_span(text.substr(done, best - done));
    out.push_back(hit->second);
    done = best + hit->first.size();
  }
  encode_span(text.substr(done));
  return out;
}

std::string SentencePieceTokenizer::decoded_bytes(int64_t id, bool at_start) const {
  check_id(id);
  const int i = static_cast<int>(id);
  const std::string& p = sp_->IdToPiece(i);
  if (sp_->IsControl(i)) return p;  // a special token: its text (SentencePiece itself prints nothing)
  if (sp_->IsByte(i)) return std::string(1, static_cast<char>(std::stoi(p.substr(3, 2), nullptr, 16)));  // <0xNN>
  if (sp_->IsUnknown(i)) return std::string(kUnkSurface);
  std::string_view v = p;
  if (at_start && strip_leading_space_ && v.substr(0, kSpace.size()) == kSpace) v.remove_prefix(kSpace.size());
  return replace_all(v, kSpace, " ");
}

std::string SentencePieceTokenizer::token_bytes(int64_t id) const { return decoded_bytes(id, false); }

// --- training -------------------------------------------------------------------------------

namespace {

// The training sentences, handed to SentencePiece one at a time.
class DocumentIterator : public sentencepiece::SentenceIterator {
 public:
  explicit DocumentIterator(const std::vector<std::string>& docs) : docs_(docs) {}
  bool done() const override { return i_ >= docs_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return docs_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& docs_;
  size_t i_ = 0;
};

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
}

// Cuts a document into sentences of at most `max` bytes, at line breaks where it can and at a
// UTF-8 character boundary within a line longer than that.
void add_document(std::string doc, size_t max, std::vector<std::string>& out) {
  while (!doc.empty() && (doc.back() == '\n' || doc.back() == '\r')) doc.pop_back();
  if (doc.empty()) return;
  size_t begin = 0;
  while (doc.size() - begin > max) {
    size_t cut = doc.rfind('\n', begin + max);
    if (cut == std::string::npos || cut <= begin) {
      cut = begin + max;
      while (cut > begin && (static_cast<unsigned char>(doc[cut]) & 0xC0) == 0x80) --cut;
      out.push_back(doc.substr(begin, cut - begin));
      begin = cut;
    } else {
      out.push_back(doc.substr(begin, cut - begin));
      begin = cut + 1;
    }
  }
  if (begin < doc.size()) out.push_back(doc.substr(begin));
}

}  // namespace

void train_sentencepiece(const SentencePieceTrainOptions& o) {
  namespace fs = std::filesystem;
  WENSU_CHECK(!o.inputs.empty(), "SentencePiece training: no input files given");
  WENSU_CHECK(!o.model_prefix.empty(), "SentencePiece training: model_prefix is empty; it names PREFIX.model and PREFIX.vocab");
  const fs::path prefix(o.model_prefix);
  const fs::path dir = prefix.has_parent_path() ? prefix.parent_path() : fs::path(".");
  WENSU_CHECK(fs::is_directory(dir), "SentencePiece training: the directory of model_prefix ", o.model_prefix,
              " does not exist; create ", dir.string(), " first");
  WENSU_CHECK(o.vocab_size > 0, "SentencePiece training: vocab_size must be positive, got ", o.vocab_size);
  WENSU_CHECK(o.model_type == "unigram" || o.model_type == "bpe" || o.model_type == "char" || o.model_type == "word",
              "SentencePiece training: model_type must be unigram, bpe, char or word, got \"", o.model_type, "\"");
  WENSU_CHECK(o.character_coverage > 0 && o.character_coverage <= 1,
              "SentencePiece training: character_coverage must be in (0, 1], got ", o.character_coverage);
  WENSU_CHECK(o.max_sentence_length >= 16, "SentencePiece training: max_sentence_length must be at least 16 bytes, got ",
              o.max_sentence_length);
  WENSU_CHECK(o.threads >= 1, "SentencePiece training: threads must be at least 1, got ", o.threads);

  std::vector<std::string> sentences;
  std::string names;
  for (const auto& path : o.inputs) {
    names += (names.empty() ? "" : ", ") + path;
    std::ifstream in(path, std::ios::binary);
    WENSU_CHECK(in, "SentencePiece training: cannot open input ", path, " (it must exist and be readable)");
    std::string line, doc;
    while (std::getline(in, line)) {
      if (is_blank(line)) {
        add_document(std::move(doc), static_cast<size_t>(o.max_sentence_length), sentences);
        doc.clear();
      } else {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        doc += line;
        doc += '\n';
      }
    }
    add_document(std::move(doc), static_cast<size_t>(o.max_sentence_length), sentences);
  }
  WENSU_CHECK(!sentences.empty(), "SentencePiece training: ", o.inputs.size() == 1 ? "the input " : "the inputs ", names,
              o.inputs.size() == 1 ? " has" : " have", " no text; give UTF-8 text files (documents separated by blank lines)");

  std::string symbols;
  for (const auto& s : o.user_defined_symbols) {
    WENSU_CHECK(!s.empty() && s.find(',') == std::string::npos, "SentencePiece training: user-defined symbol \"", s,
                "\" is empty or holds a comma (SentencePiece separates them by commas)");
    symbols += (symbols.empty() ? "" : ",") + s;
  }
  const std::unordered_map<std::string, std::string> kwargs = {
      // No model_prefix: the trainer hands the model back (written below) instead of writing
      // it, so the model does not record where it was written.
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_type", o.model_type},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"byte_fallback", o.byte_fallback ? "true" : "false"},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"num_threads", std::to_string(o.threads)},
      {"split_digits", o.split_digits ? "true" : "false"},
      {"user_defined_symbols", symbols},
      // decode(encode(x)) == x: no NFKC (it would turn "，" into ","), spaces kept as written.
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"allow_whitespace_only_pieces", "true"},  // runs of spaces (indentation) become pieces
      // Every sentence, in order: no sampling, so nothing depends on the generator but ties.
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"minloglevel", o.verbose ? "0" : "2"},
  };
  // 0xFFFFFFFF asks SentencePiece for a random seed: never pass it.
  sentencepiece::SetRandomGeneratorSeed(static_cast<unsigned>(o.seed % 0xFFFFFFFFull));
  DocumentIterator it(sentences);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs, &it, &model);
  WENSU_CHECK(status.ok(), "SentencePiece training on ", names, " failed: ", status.ToString());

  auto write = [](const std::string& path, const std::string& bytes) {
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      WENSU_CHECK(out, "SentencePiece training: cannot write ", tmp);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      WENSU_CHECK(out.good(), "SentencePiece training: writing ", tmp, " failed (disk full?)");
    }
    std::filesystem::rename(tmp, path);
  };
  // PREFIX.vocab as SentencePiece writes it (piece TAB score), except that line breaks and tabs
  // inside pieces are escaped so that every piece stays on its line.
  sentencepiece::SentencePieceProcessor sp;
  WENSU_CHECK(sp.LoadFromSerializedProto(model).ok(), "SentencePiece training: the trained model does not load");
  std::ostringstream vocab;
  for (int id = 0; id < sp.GetPieceSize(); ++id)
    vocab << replace_all(replace_all(sp.IdToPiece(id), "\n", "\\n"), "\t", "\\t") << '\t' << sp.GetScore(id) << '\n';
  write(o.model_prefix + ".model", model);
  write(o.model_prefix + ".vocab", vocab.str());
}

}  // namespace wensu::text
