// GPT-2 byte-level BPE: loading vocab.json and merges.txt, pre-tokenising with PCRE2, and merging.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "wensu/text/bpe.h"

#include <pcre2.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "wensu/core/check.h"

namespace wensu::text {
namespace {

// GPT-2's pre-tokenisation pattern (openai/gpt-2 encoder.py), as Hugging Face's GPT-2 tokenizers
// use it.
constexpr const char* kPattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// The code points of valid UTF-8 `s`; false when `s` is not valid UTF-8.
bool utf8_code_points(std::string_view s, std::vector<char32_t>& out) {
  out.clear();
  for (size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    const size_t len = b0 < 0x80 ? 1 : b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
    if (len == 0 || i + len > s.size()) return false;
    char32_t c = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      c = (c << 6) | (b & 0x3F);
    }
    out.push_back(c);
    i += len;
  }
  return true;
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  WENSU_CHECK(in, "GPT-2 BPE: cannot open ", what, " file ", path, " (it must exist and be readable)");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool is_special_text(std::string_view t) {
  return t.size() > 4 && t.substr(0, 2) == "<|" && t.substr(t.size() - 2) == "|>";
}

}  // namespace

const std::vector<char32_t>& gpt2_byte_to_unicode() {
  static const std::vector<char32_t> table = [] {
    std::vector<char32_t> t(256);
    std::vector<bool> printable(256, false);
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) t[b] = printable[b] ? static_cast<char32_t>(b) : next++;
    return t;
  }();
  return table;
}

struct BpeTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_files(const std::string& vocab_json_path,
                                                       const std::string& merges_txt_path) {
  std::string vocab = read_file(vocab_json_path, "vocab.json");  // first: a missing vocab.json is named first
  std::string merges = read_file(merges_txt_path, "merges.txt");
  return std::unique_ptr<BpeTokenizer>(
      new BpeTokenizer(std::move(vocab), std::move(merges), vocab_json_path, merges_txt_path));
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_strings(const std::string& vocab_json, const std::string& merges_txt) {
  return std::unique_ptr<BpeTokenizer>(new BpeTokenizer(vocab_json, merges_txt, "vocab.json", "merges.txt"));
}

BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer::BpeTokenizer(std::string vocab_json, std::string merges_txt, const std::string& vocab_name,
                           const std::string& merges_name)
    : vocab_json_(std::move(vocab_json)), merges_txt_(std::move(merges_txt)) {
  // vocab.json: {"token": id, ...}
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(vocab_json_);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(detail::concat("GPT-2 BPE: ", vocab_name, " is not valid JSON (", e.what(),
                               "); expected an object mapping each token to its id, as Hugging Face writes it"));
  }
  WENSU_CHECK(vocab.is_object() && !vocab.empty(), "GPT-2 BPE: ", vocab_name,
              " must be a non-empty JSON object mapping each token to its id, e.g. {\"!\": 0, ...}");
  int64_t n = 0;
  for (const auto& [text, id] : vocab.items()) {
    WENSU_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0, "GPT-2 BPE: ", vocab_name, ": the id of token \"",
                text, "\" is ", id.dump(), "; ids must be non-negative integers");
    n = std::max(n, id.get<int64_t>() + 1);
  }
  // Ids index tables: a vocabulary with holes is fine, one whose ids run far past its size is not.
  const auto entries = static_cast<int64_t>(vocab.size());
  WENSU_CHECK(n <= 2 * entries + 1024, "GPT-2 BPE: ", vocab_name, ": ids run up to ", n - 1, " for only ", entries,
              " tokens; expected ids 0..", entries - 1);
  texts_.assign(static_cast<size_t>(n), "");
  bytes_.assign(static_cast<size_t>(n), "");
  special_.assign(static_cast<size_t>(n), false);
  std::vector<bool> used(static_cast<size_t>(n), false);
  std::unordered_map<char32_t, int> unicode_to_byte;
  for (int b = 0; b < 256; ++b) unicode_to_byte[gpt2_byte_to_unicode()[static_cast<size_t>(b)]] = b;
  std::vector<char32_t> cps;
  for (const auto& [text, id_json] : vocab.items()) {
    const auto id = static_cast<size_t>(id_json.get<int64_t>());
    WENSU_CHECK(!used[id], "GPT-2 BPE: ", vocab_name, ": id ", id, " is used by two tokens (\"", texts_[id], "\" and \"",
                text, "\"); every token needs its own id");
    used[id] = true;
    texts_[id] = text;
    ids_.emplace(text, static_cast<int64_t>(id));
    if (is_special_text(text)) {
      special_[id] = true;
      bytes_[id] = text;  // special tokens stand for their own text, not for mapped bytes
      specials_.emplace_back(text, static_cast<int64_t>(id));
      continue;
    }
    WENSU_CHECK(utf8_code_points(text, cps), "GPT-2 BPE: ", vocab_name, ": token of id ", id, " is not valid UTF-8");
    for (char32_t c : cps) {
      const auto it = unicode_to_byte.find(c);
      if (it != unicode_to_byte.end()) {
        bytes_[id] += static_cast<char>(it->second);
      } else {
        append_utf8(bytes_[id], c);  // not a byte stand-in (an added token): its own UTF-8
      }
    }
  }
  std::sort(specials_.begin(), specials_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  if (auto it = ids_.find("<|endoftext|>"); it != ids_.end()) eos_id_ = it->second;
  for (int b = 0; b < 256; ++b) {
    std::string t;
    append_utf8(t, gpt2_byte_to_unicode()[static_cast<size_t>(b)]);
    const auto it = ids_.find(t);
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", b);
    WENSU_CHECK(it != ids_.end(), "GPT-2 BPE: ", vocab_name, " has no token for byte ", hex, " (\"", t,
                "\"); a byte-level vocabulary holds all 256 bytes, so this is not a GPT-2 style vocab.json");
    byte_ids_[b] = it->second;
  }

  // merges.txt: an optional "#version" line, then one "left right" pair per line, by rank.
  std::istringstream lines(merges_txt_);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t sp = line.find(' ');
    WENSU_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < line.size() && line.find(' ', sp + 1) == std::string::npos,
                "GPT-2 BPE: ", merges_name, " line ", line_no, ": expected two tokens separated by one space, got \"",
                line, "\"");
    const std::string left = line.substr(0, sp), right = line.substr(sp + 1);
    const int64_t l = token_id(left), r = token_id(right), m = token_id(left + right);
    WENSU_CHECK(l >= 0 && r >= 0, "GPT-2 BPE: ", merges_name, " line ", line_no, ": token \"", l < 0 ? left : right,
                "\" is not in ", vocab_name, "; the two files do not belong together");
    WENSU_CHECK(m >= 0, "GPT-2 BPE: ", merges_name, " line ", line_no, ": the merge of \"", left, "\" and \"", right,
                "\", \"", left + right, "\", is not in ", vocab_name, "; the two files do not belong together");
    // A repeated pair takes its last rank, as Hugging Face's tokenizers do.
    merges_[static_cast<uint64_t>(l) << 32 | static_cast<uint64_t>(r)] = Merge{line_no, m};
  }

  int err = 0;
  PCRE2_SIZE offset = 0;
  regex_ = std::make_unique<Regex>();
  // MATCH_INVALID_UTF: invalid UTF-8 in the input is skipped by the matcher instead of failing
  // the whole match (encode keeps those bytes as pieces of their own).
  regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                               PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
  if (!regex_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(detail::concat("GPT-2 BPE: PCRE2 cannot compile the pre-tokenisation pattern at offset ", offset, ": ",
                               reinterpret_cast<const char*>(msg), " (PCRE2 needs Unicode support; use Debian's libpcre2)"));
  }
  pcre2_jit_compile(regex_->code, PCRE2_JIT_COMPLETE);  // faster when available; the interpreter otherwise
}

const std::string& BpeTokenizer::token_text(int64_t id) const {
  WENSU_CHECK(id >= 0 && id < vocab_size(), "GPT-2 BPE: token id ", id, " is out of range [0, ", vocab_size(), ")");
  return texts_[static_cast<size_t>(id)];
}

int64_t BpeTokenizer::token_id(std::string_view text) const {
  const auto it = ids_.find(std::string(text));
  return it == ids_.end() ? -1 : it->second;
}

std::string BpeTokenizer::token_bytes(int64_t id) const {
  WENSU_CHECK(id >= 0 && id < vocab_size(), "GPT-2 BPE: token id ", id, " is out of range [0, ", vocab_size(), ")");
  return bytes_[static_cast<size_t>(id)];
}

bool BpeTokenizer::is_special(int64_t id) const {
  return id >= 0 && id < vocab_size() && special_[static_cast<size_t>(id)];
}

std::vector<std::pair<std::string, std::string>> BpeTokenizer::files() const {
  return {{"vocab.json", vocab_json_}, {"merges.txt", merges_txt_}};
}

// Merges one pre-token's byte tokens by rank. Symbols form a linked list; a min-heap holds the
// candidate pairs by (rank, position), so equal ranks merge leftmost first (as Hugging Face's
// tokenizers do) and a long piece (a line of Chinese is one \p{L}+ run) costs O(n log n).
std::vector<int64_t> BpeTokenizer::merge(std::string_view piece) const {
  const int n = static_cast<int>(piece.size());
  struct Symbol {
    int64_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Symbol> sym(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto byte = static_cast<unsigned char>(piece[static_cast<size_t>(i)]);
    sym[static_cast<size_t>(i)] = {byte_ids_[byte], i - 1, i + 1 < n ? i + 1 : -1, true};
  }
  struct Candidate {
    int64_t rank;
    int pos;
    int64_t merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto offer = [&](int left) {
    if (left < 0) return;
    const int right = sym[static_cast<size_t>(left)].next;
    if (right < 0) return;
    const uint64_t key = static_cast<uint64_t>(sym[static_cast<size_t>(left)].id) << 32 |
                         static_cast<uint64_t>(sym[static_cast<size_t>(right)].id);
    if (auto it = merges_.find(key); it != merges_.end()) heap.push({it->second.rank, left, it->second.id});
  };
  for (int i = 0; i + 1 < n; ++i) offer(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& left = sym[static_cast<size_t>(c.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[static_cast<size_t>(left.next)];
    // The pair may have changed since it was offered: check it still makes the same token.
    const auto it = merges_.find(static_cast<uint64_t>(left.id) << 32 | static_cast<uint64_t>(right.id));
    if (it == merges_.end() || it->second.id != c.merged || it->second.rank != c.rank) continue;
    left.id = c.merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[static_cast<size_t>(right.next)].prev = c.pos;
    offer(left.prev);
    offer(c.pos);
  }
  std::vector<int64_t> ids;
  for (int i = n > 0 ? 0 : -1; i >= 0; i = sym[static_cast<size_t>(i)].next) ids.push_back(sym[static_cast<size_t>(i)].id);
  return ids;
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int64_t>& out) const {
  if (piece.empty()) return;
  const std::string key(piece);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int64_t> ids = merge(piece);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheLimit) cache_.clear();
  cache_.emplace(key, std::move(ids));
}

std::vector<int64_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
  WENSU_CHECK(md, "GPT-2 BPE: out of memory for PCRE2 match data");
  struct Free {
    pcre2_match_data* md;
    ~Free() { pcre2_match_data_free(md); }
  } free_md{md};

  // Pre-tokenises and merges text[begin, end), which holds no special token.
  auto encode_span = [&](size_t begin, size_t end) {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = begin;
    while (pos < end) {
      const int rc = pcre2_match(regex_->code, subject, end, pos, 0, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) {
        encode_piece(text.substr(pos, end - pos), out);  // only invalid UTF-8 is left
        break;
      }
      if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        throw Error(detail::concat("GPT-2 BPE: pre-tokenisation failed at byte offset ", pos, ": ",
                                   reinterpret_cast<const char*>(msg)));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (ov[0] > pos) encode_piece(text.substr(pos, ov[0] - pos), out);  // skipped invalid UTF-8
      encode_piece(text.substr(ov[0], ov[1] - ov[0]), out);
      pos = ov[1] > ov[0] ? ov[1] : ov[1] + 1;  // the pattern never matches empty; stay safe
    }
  };

  size_t done = 0;
  size_t at = specials_.empty() ? std::string_view::npos : text.find("<|");
  while (at != std::string_view::npos) {
    const std::pair<std::string, int64_t>* hit = nullptr;
    for (const auto& s : specials_)  // longest first
      if (text.substr(at, s.first.size()) == s.first) {
        hit = &s;
        break;
      }
    if (hit) {
      encode_span(done, at);
      out.push_back(hit->second);
      done = at + hit->first.size();
      at = text.find("<|", done);
    } else {
      at = text.find("<|", at + 1);
    }
  }
  encode_span(done, text.size());
  return out;
}

}  // namespace wensu::text
