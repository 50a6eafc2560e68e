// Streaming FASTA reader for protein sequences: plain or gzipped (detected by the gzip magic bytes,
// not the file name; multi-member files such as bgzip output included), read in fixed-size chunks
// so a shard of any size costs a few hundred KB plus the longest record.
//
// The pretraining input format: UniRef50/90-style shards (uniref50.fasta.gz, headers like
// ">UniRef50_A0A5A9P0L4 Peptidase S41 n=1 Tax=Acipenser ruthenus TaxID=7906 RepID=A0A5A9P0L4_ACIRU"),
// one file or many (expand_paths). The offline corpus from scripts/data/make-corpus.sh has the
// same shape.
//
// Sequences are validated (strict by default):
//   - residues are the letters A-Z, any case (upper-cased; ESM's alphabet covers the 20 standard
//     amino acids and X B U Z O, the tokenizer maps other letters to <unk>); spaces, tabs and
//     Windows line endings are ignored;
//   - one '*' at the very end of a sequence is a stop codon and is stripped; '*' elsewhere, the gap
//     characters '.' and '-' (alignments are not pretraining input), digits and any other byte
//     make the record invalid;
//   - a header without a sequence, or without an id, makes the record invalid.
// An invalid record throws a one-line wensu::Error naming the file, the record id and the line (and
// the column and character where there is one) and saying how to fix it; with
// FastaOptions::skip_invalid it is skipped and counted instead. Structural problems are always
// errors: text before the first header, a file without records, an unreadable file, a truncated or
// corrupt gzip stream (the data is gone; skipping cannot recover it).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace wensu::io {

struct FastaRecord {
  std::string id;           // first word of the header, without '>'
  std::string description;  // rest of the header line, trimmed
  std::string sequence;     // upper-case residues, whitespace and a final '*' removed
  int64_t line = 0;         // 1-based line of the header in the (uncompressed) file
  // UniRef fields, parsed from the description when present
  // ("Peptidase S41 n=1 Tax=Acipenser ruthenus TaxID=7906 RepID=A0A5A9P0L4_ACIRU"); each one is
  // empty (members -1) when the description does not carry it, name when no field is present.
  std::string name;       // cluster name: the description before the first field
  int64_t members = -1;   // n=
  std::string tax;        // Tax=   (may contain spaces)
  std::string tax_id;     // TaxID=
  std::string rep_id;     // RepID=
};

struct FastaOptions {
  bool skip_invalid = false;  // skip and count invalid records instead of throwing
  // skip_invalid: called with the error message (file, record, line) of each skipped record.
  std::function<void(const std::string&)> on_skip;
};

class FastaReader {
 public:
  // Opens `path` (throws wensu::Error naming it when it cannot be opened).
  explicit FastaReader(const std::string& path, FastaOptions opt = {});
  ~FastaReader();
  FastaReader(FastaReader&&) noexcept;
  FastaReader& operator=(FastaReader&&) noexcept;

  // Reads the next record into `rec` (its strings keep their capacity); false at the end of the
  // file. Throws wensu::Error as described above.
  bool next(FastaRecord& rec);

  int64_t records() const;  // records returned so far
  int64_t skipped() const;  // invalid records skipped (skip_invalid mode)
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Fills the UniRef fields of `rec` (name, members, tax, tax_id, rep_id) from rec.description.
void parse_uniref_fields(FastaRecord& rec);

// Expands globs ("shards/*.fasta.gz", "~/data/uniref50.fasta.gz") and plain paths into a sorted
// list without duplicates. A pattern that matches no file, or a plain path that does not exist or
// is a directory, throws a wensu::Error naming it. An empty list gives an empty list.
std::vector<std::string> expand_paths(const std::vector<std::string>& patterns);

}  // namespace wensu::io
