// FASTA reading in two layers: a Source that yields the file's decoded bytes in chunks (plain, or
// gzip through zlib's inflate), and the reader, which cuts the bytes into lines in a buffer that
// grows only for lines longer than a chunk, and lines into records. Every error message is
// composed here, with the file, line and record the reader was at.
#include "wensu/io/fasta.h"

#include <glob.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>

#include "wensu/core/check.h"

namespace wensu::io {
namespace {

namespace fs = std::filesystem;

// Read size for both compressed input and decoded text: large enough that the per-call overhead
// vanishes, small enough that a reader per shard stays cheap.
constexpr size_t kChunk = size_t{1} << 18;

// A failure of the byte stream itself (I/O error, damaged gzip); the reader adds file, line and
// record to `what`.
struct SourceFailure {
  std::string what;
};

std::string show_byte(unsigned char c) {
  if (c >= 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
  char hex[16];
  std::snprintf(hex, sizeof hex, "byte 0x%02x", c);
  return hex;
}

// A file's decoded contents, chunk by chunk.
class Source {
 public:
  explicit Source(const std::string& path) : in_(kChunk) {
    file_ = std::fopen(path.c_str(), "rb");
    WENSU_CHECK(file_ != nullptr, "cannot open FASTA file '", path, "': ", std::strerror(errno));
    size_t n = 0;
    try {
      n = fill_input(0);
    } catch (const SourceFailure& f) {  // e.g. a folder: fopen succeeds, reading does not
      std::fclose(file_);
      throw Error(detail::concat("cannot read FASTA file '", path, "': ", f.what));
    }
    const auto* b = reinterpret_cast<const unsigned char*>(in_.data());
    auto starts = [&](std::initializer_list<unsigned char> magic) {
      return n >= magic.size() && std::equal(magic.begin(), magic.end(), b);
    };
    const char* other = starts({0x28, 0xb5, 0x2f, 0xfd})             ? "zstd (zstd -d)"
                        : starts({'B', 'Z', 'h'})                    ? "bzip2 (bunzip2)"
                        : starts({0xfd, '7', 'z', 'X', 'Z', 0x00})   ? "xz (unxz)"
                        : starts({'P', 'K', 0x03, 0x04})             ? "zip (unzip)"
                                                                     : nullptr;
    if (other) {
      std::fclose(file_);
      throw Error(detail::concat("FASTA file '", path, "' is compressed with ", other,
                                 "; decompress it or recompress it with gzip (wensu reads plain and gzipped FASTA)"));
    }
    gzip_ = starts({0x1f, 0x8b});
    if (gzip_) {
      z_.next_in = reinterpret_cast<Bytef*>(in_.data());
      z_.avail_in = static_cast<uInt>(n);
      // 16 + 15: expect a gzip wrapper, 32 KB window (the largest; any gzip file decodes).
      if (inflateInit2(&z_, 16 + 15) != Z_OK) {
        std::fclose(file_);
        throw Error(detail::concat("cannot read FASTA file '", path, "': zlib could not start (out of memory?)"));
      }
    } else {
      plain_pending_ = n;
    }
  }
  ~Source() {
    if (gzip_) inflateEnd(&z_);
    if (file_) std::fclose(file_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Writes up to `cap` decoded bytes to `dst`; returns 0 only at the end of the data.
  size_t read(char* dst, size_t cap) {
    if (!gzip_) {
      if (plain_pending_ > 0) {  // the bytes read to look for a magic number
        const size_t n = std::min(cap, plain_pending_);
        std::memcpy(dst, in_.data() + plain_offset_, n);
        plain_offset_ += n;
        plain_pending_ -= n;
        return n;
      }
      const size_t n = std::fread(dst, 1, cap, file_);
      if (n == 0 && std::ferror(file_)) throw SourceFailure{std::string("read error: ") + std::strerror(errno)};
      return n;
    }
    if (failure_) throw *failure_;
    z_.next_out = reinterpret_cast<Bytef*>(dst);
    z_.avail_out = static_cast<uInt>(cap);
    try {
      inflate_into();
    } catch (SourceFailure& f) {
      // Hand out the text decoded before the damage first, so that the error names the line and
      // record where the data really stops.
      if (z_.avail_out == cap) throw;
      failure_ = std::move(f);
    }
    return cap - z_.avail_out;
  }

 private:
  void inflate_into() {
    while (z_.avail_out > 0) {
      if (!in_member_) {
        // Between gzip members (bgzip and `cat a.gz b.gz` write several): another one, or the end.
        if (!ensure_input(2)) {
          if (z_.avail_in == 0) break;
          throw trailing_garbage();
        }
        if (z_.next_in[0] != 0x1f || z_.next_in[1] != 0x8b) throw trailing_garbage();
        inflateReset(&z_);
        in_member_ = true;
      }
      if (z_.avail_in == 0 && fill_input(0) == 0)
        throw SourceFailure{detail::concat(
            "truncated gzip data: the compressed stream ends without its end marker after ", consumed(),
            " bytes; the file is incomplete: copy or download it again (--skip-invalid cannot recover missing data)")};
      const int ret = inflate(&z_, Z_NO_FLUSH);
      if (ret == Z_STREAM_END) {
        in_member_ = false;
      } else if (ret != Z_OK && !(ret == Z_BUF_ERROR && z_.avail_in == 0)) {
        throw SourceFailure{detail::concat("corrupt gzip data near compressed byte ", consumed(), " (zlib: ",
                                           z_.msg ? z_.msg : "error " + std::to_string(ret),
                                           "); the file is damaged: copy or download it again")};
      }
    }
  }

  // Moves the unread compressed bytes to the front of in_ and appends what the file gives from
  // `keep` on; returns the number of bytes read.
  size_t fill_input(size_t keep) {
    if (keep > 0) std::memmove(in_.data(), z_.next_in, keep);
    const size_t n = std::fread(in_.data() + keep, 1, in_.size() - keep, file_);
    if (n == 0 && std::ferror(file_)) throw SourceFailure{std::string("read error: ") + std::strerror(errno)};
    bytes_read_ += static_cast<int64_t>(n);
    z_.next_in = reinterpret_cast<Bytef*>(in_.data());
    z_.avail_in = static_cast<uInt>(keep + n);
    return n;
  }
  bool ensure_input(size_t n) {
    while (z_.avail_in < n)
      if (fill_input(z_.avail_in) == 0) return false;
    return true;
  }
  int64_t consumed() const { return bytes_read_ - static_cast<int64_t>(z_.avail_in); }
  SourceFailure trailing_garbage() const {
    return SourceFailure{detail::concat("unexpected bytes after the end of the gzip data (compressed byte ", consumed(),
                                        "); the file is damaged or two files were joined badly: copy or download it again")};
  }

  std::FILE* file_ = nullptr;
  bool gzip_ = false;
  std::vector<char> in_;
  size_t plain_pending_ = 0, plain_offset_ = 0;
  z_stream z_{};
  bool in_member_ = true;
  int64_t bytes_read_ = 0;
  std::optional<SourceFailure> failure_;  // found while decoding, reported on the next read
};

// What each byte is in a sequence line.
enum class Kind : unsigned char { kOther, kSpace, kLetter, kStop, kGap };

struct ByteTable {
  std::array<Kind, 256> kind{};
  std::array<char, 256> upper{};
  ByteTable() {
    kind.fill(Kind::kOther);
    for (int c = 'A'; c <= 'Z'; ++c) {
      kind[c] = kind[c + 32] = Kind::kLetter;
      upper[c] = upper[c + 32] = static_cast<char>(c);
    }
    for (unsigned char c : {' ', '\t', '\r', '\v', '\f'}) kind[c] = Kind::kSpace;
    kind['*'] = Kind::kStop;
    kind['-'] = kind['.'] = Kind::kGap;
  }
};
const ByteTable kBytes;

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return kBytes.kind[static_cast<unsigned char>(c)] == Kind::kSpace; });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && kBytes.kind[static_cast<unsigned char>(s.front())] == Kind::kSpace) s.remove_prefix(1);
  while (!s.empty() && kBytes.kind[static_cast<unsigned char>(s.back())] == Kind::kSpace) s.remove_suffix(1);
  return s;
}

constexpr const char* kSkipHint = "fix or remove the record, or use --skip-invalid to skip such records";

}  // namespace

struct FastaReader::Impl {
  Impl(const std::string& p, FastaOptions o) : path(p), opt(o), src(p), buf(2 * kChunk) {}

  std::string path;
  FastaOptions opt;
  Source src;
  std::vector<char> buf;  // decoded text; [pos, end) not yet consumed, [pos, scan) has no '\n'
  size_t pos = 0, scan = 0, end = 0;
  bool eof = false;
  int64_t line_no = 0;     // lines read so far = number of the current line
  bool started = false;
  bool have_header = false;  // `header` holds the next record's header line
  std::string header;
  int64_t header_line = 0;
  int64_t records = 0, skipped = 0;
  // The record being read, for messages.
  std::string cur_id;
  int64_t cur_line = 0;
  bool in_record = false;

  std::string where(int64_t line) const {
    return detail::concat("FASTA file '", path, "', line ", line);
  }
  std::string record_context() const {
    return in_record ? detail::concat("record '", cur_id, "' (header at line ", cur_line, ")") : "before the first record";
  }

  // Next line without its '\n' (and '\r'); the view lives until the next call. False at the end.
  bool read_line(std::string_view& line) {
    for (;;) {
      const void* nl = end > scan ? std::memchr(buf.data() + scan, '\n', end - scan) : nullptr;
      if (nl || (eof && pos < end)) {
        const size_t stop = nl ? static_cast<size_t>(static_cast<const char*>(nl) - buf.data()) : end;
        line = std::string_view(buf.data() + pos, stop - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        pos = scan = nl ? stop + 1 : end;
        ++line_no;
        return true;
      }
      if (eof) return false;
      scan = end;
      refill();
    }
  }

  // Keeps the unconsumed bytes and appends the next chunk, growing the buffer for long lines.
  void refill() {
    if (pos > 0) {
      std::memmove(buf.data(), buf.data() + pos, end - pos);
      end -= pos;
      scan -= pos;
      pos = 0;
    }
    if (buf.size() < end + kChunk) buf.resize(std::max(2 * buf.size(), end + kChunk));
    size_t n = 0;
    try {
      n = src.read(buf.data() + end, kChunk);
    } catch (const SourceFailure& f) {
      throw Error(detail::concat(where(line_no + 1), ", ", record_context(), ": ", f.what));
    }
    if (n == 0) eof = true;
    end += n;
  }

  // Reads up to the first header; blank lines (and a UTF-8 byte order mark) may precede it.
  void start() {
    started = true;
    std::string_view l;
    while (read_line(l)) {
      if (line_no == 1 && l.substr(0, 3) == "\xEF\xBB\xBF") l.remove_prefix(3);
      if (!l.empty() && l[0] == '>') {
        header.assign(l);
        header_line = line_no;
        have_header = true;
        return;
      }
      if (is_blank(l)) continue;
      std::string shown;
      for (unsigned char c : l.substr(0, 24)) shown += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
      throw Error(detail::concat(where(line_no), ", before the first record: text before the first '>' header (\"", shown,
                                 l.size() > 24 ? "..." : "", "\"); a FASTA file starts with a header line such as "
                                 "'>id description': check that this is a FASTA file, or remove the text"));
    }
    throw Error(detail::concat("FASTA file '", path, "' has no records (",
                               line_no == 0 ? std::string("the file is empty") : detail::concat("only ", line_no, " blank lines"),
                               "); remove it from the input list"));
  }

  // Strict mode: throws `msg`. skip_invalid: marks the record bad (the caller skips it).
  void invalid(bool& bad, const std::string& msg) const {
    if (!opt.skip_invalid) throw Error(msg);
    if (!bad && opt.on_skip) opt.on_skip(msg);
    bad = true;
  }

  bool next(FastaRecord& rec) {
    if (!started) start();
    while (have_header) {
      have_header = false;
      std::string_view h = std::string_view(header).substr(1);
      const size_t id_end = std::min(h.find_first_of(" \t"), h.size());
      rec.id.assign(h.substr(0, id_end));
      rec.description.assign(trim(h.substr(id_end)));
      rec.line = header_line;
      rec.sequence.clear();
      cur_id = rec.id;
      cur_line = header_line;
      in_record = true;

      bool bad = false;
      if (rec.id.empty())
        invalid(bad, detail::concat(where(header_line), ", record '' (no id): the header has no id ('>' must be followed "
                                    "directly by the id, e.g. '>P12345 description'); ", kSkipHint));
      int64_t stop_line = 0, stop_col = 0;  // a '*' seen; valid only if nothing follows it
      std::string_view l;
      while (read_line(l)) {
        if (!l.empty() && l[0] == '>') {
          header.assign(l);
          header_line = line_no;
          have_header = true;
          break;
        }
        if (bad) continue;  // skipping: consume the rest of the record
        for (size_t i = 0; i < l.size() && !bad; ++i) {
          const auto c = static_cast<unsigned char>(l[i]);
          switch (kBytes.kind[c]) {
            case Kind::kSpace:
              break;
            case Kind::kLetter:
              if (stop_line == 0) {
                rec.sequence.push_back(kBytes.upper[c]);
                break;
              }
              [[fallthrough]];  // a residue after '*': the '*' was not at the end
            case Kind::kStop:
              if (stop_line == 0) {
                stop_line = line_no;
                stop_col = static_cast<int64_t>(i) + 1;
                break;
              }
              invalid(bad, detail::concat(where(stop_line), ", column ", stop_col, ", record '", rec.id, "' (header at line ",
                                          rec.line,
                                          "): '*' inside the sequence (a '*' stop is allowed only at its end); ", kSkipHint));
              break;
            case Kind::kGap:
              invalid(bad, detail::concat(where(line_no), ", column ", i + 1, ", record '", rec.id, "' (header at line ", rec.line,
                                          "): gap character ", show_byte(c),
                                          " in the sequence (aligned sequences are not pretraining input: remove the gaps '-' and '.'); ",
                                          kSkipHint));
              break;
            case Kind::kOther:
              invalid(bad, detail::concat(where(line_no), ", column ", i + 1, ", record '", rec.id, "' (header at line ", rec.line,
                                          "): invalid character ", show_byte(c),
                                          " in the sequence (residues are the letters A-Z; a '*' stop is allowed at the end); ",
                                          kSkipHint));
              break;
          }
        }
      }
      if (!bad && rec.sequence.empty())
        invalid(bad, detail::concat(where(rec.line), ", record '", rec.id, "': the header has no sequence after it; ", kSkipHint));
      if (bad) {
        ++skipped;
        continue;
      }
      parse_uniref_fields(rec);
      ++records;
      return true;
    }
    return false;
  }
};

FastaReader::FastaReader(const std::string& path, FastaOptions opt) : impl_(std::make_unique<Impl>(path, opt)) {}
FastaReader::~FastaReader() = default;
FastaReader::FastaReader(FastaReader&&) noexcept = default;
FastaReader& FastaReader::operator=(FastaReader&&) noexcept = default;

bool FastaReader::next(FastaRecord& rec) { return impl_->next(rec); }
int64_t FastaReader::records() const { return impl_->records; }
int64_t FastaReader::skipped() const { return impl_->skipped; }
const std::string& FastaReader::path() const { return impl_->path; }

void parse_uniref_fields(FastaRecord& rec) {
  rec.name.clear();
  rec.members = -1;
  rec.tax.clear();
  rec.tax_id.clear();
  rec.rep_id.clear();
  // UniRef descriptions end in "n=N Tax=NAME TaxID=ID RepID=ID", in that order; Tax= may hold
  // spaces, so each value runs to the next field. Searching from the back keeps a cluster name
  // that happens to contain "n=" intact.
  const std::string_view d = rec.description;
  struct Field {
    std::string_view key;
    std::string* text;
  };
  std::string members;
  const Field fields[] = {{"n=", &members}, {"Tax=", &rec.tax}, {"TaxID=", &rec.tax_id}, {"RepID=", &rec.rep_id}};
  size_t value_end = d.size(), first = d.size();
  for (int k = 3; k >= 0; --k) {
    const std::string_view key = fields[k].key;
    for (size_t p = d.rfind(key, value_end); p != std::string_view::npos; p = p == 0 ? std::string_view::npos : d.rfind(key, p - 1)) {
      if (p + key.size() > value_end) continue;
      if (p != 0 && d[p - 1] != ' ' && d[p - 1] != '\t') continue;  // "xn=" is not a field
      fields[k].text->assign(trim(d.substr(p + key.size(), value_end - p - key.size())));
      value_end = first = p;
      break;
    }
  }
  if (first == d.size()) return;  // not a UniRef description
  rec.name.assign(trim(d.substr(0, first)));
  if (!members.empty() && std::all_of(members.begin(), members.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
      members.size() < 19)
    rec.members = std::stoll(members);
}

std::vector<std::string> expand_paths(const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const std::string& p : patterns) {
    WENSU_CHECK(!p.empty(), "an input path is empty; give a FASTA file or a pattern such as 'shards/*.fasta.gz'");
    if (p.find_first_of("*?[") != std::string::npos || p[0] == '~') {
      glob_t g{};
      const int rc = glob(p.c_str(), GLOB_TILDE, nullptr, &g);
      std::vector<std::string> found;
      for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) found.emplace_back(g.gl_pathv[i]);
      globfree(&g);
      WENSU_CHECK(rc != GLOB_NOMATCH, "no file matches '", p,
                  "'; check the path (wensu expands the pattern itself, so quote it in the shell)");
      WENSU_CHECK(rc == 0, "cannot expand '", p, "': ", rc == GLOB_NOSPACE ? "out of memory" : "a folder could not be read");
      size_t files = 0;
      for (std::string& f : found) {
        std::error_code ec;
        if (!fs::is_regular_file(f, ec)) continue;  // folders matched by the pattern
        out.push_back(std::move(f));
        ++files;
      }
      WENSU_CHECK(files > 0, "'", p, "' matches only folders, no files; give a pattern for the files, e.g. 'shards/*.fasta.gz'");
    } else {
      std::error_code ec;
      const fs::file_status st = fs::status(p, ec);
      WENSU_CHECK(fs::exists(st), "input file '", p, "' does not exist; check the path");
      WENSU_CHECK(!fs::is_directory(st), "input '", p, "' is a folder; give its files, e.g. '", p, "/*.fasta.gz'");
      out.push_back(p);
    }
  }
  for (std::string& f : out) f = fs::path(f).lexically_normal().string();
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace wensu::io
