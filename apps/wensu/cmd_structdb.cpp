// wensu structdb: the ProMod3 StructureDB (Debian promod3-data) as training data for `wensu fold`.
// `info` summarises a database, `fasta` writes its sequences (for clustering into splits),
// `export` writes chains into a training shard. The reading and writing live in
// wensu/fold/structure_db.h and wensu/fold/fold_data.h; scripts/data/make-structure-data.sh runs
// the whole pipeline.
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/fold/fold_data.h"
#include "wensu/fold/structure_db.h"
#include "wensu/train/progress.h"

namespace po = boost::program_options;

namespace wensu::app {
namespace {

constexpr const char* kUsage =
    "usage: wensu structdb SUBCOMMAND [options]\n"
    "\n"
    "subcommands:\n"
    "  info DB.dat                          chains, residues and a histogram of chain lengths\n"
    "  fasta DB.dat -o OUT.fasta            every chain's sequence as FASTA (>PDBID_CHAIN)\n"
    "  export DB.dat --ids FILE --out SHARD.h5 [--min-len 30] [--max-len 1000]\n"
    "                                       the listed chains as one fold training shard\n"
    "\n"
    "DB.dat is ProMod3's structure_db.dat (Debian package promod3-data);\n"
    "scripts/data/make-structure-data.sh fetches it and builds the train/valid/test shards.\n"
    "'wensu structdb export --help' describes the options.\n";

int structdb_info(const Args& args) {
  std::string db;
  po::options_description desc(
      "usage: wensu structdb info DB.dat\n\n"
      "Checks the whole file layout and prints the number of chains and residues, the\n"
      "per-residue arrays it stores and a histogram of chain lengths.\n\noptions");
  desc.add_options()("help,h", "show this help")("db", po::value(&db), "structure_db.dat");
  po::positional_options_description pos;
  pos.add("db", 1);
  if (!parse_options(desc, args, &pos)) return 0;
  WENSU_CHECK(!db.empty(), "missing DB.dat (usage: wensu structdb info DB.dat)");
  std::cout << fold::describe_structure_db(fold::StructureDb::open(db));
  return 0;
}

int structdb_fasta(const Args& args) {
  std::string db, out;
  po::options_description desc(
      "usage: wensu structdb fasta DB.dat -o OUT.fasta\n\n"
      "Writes every chain's sequence, in table order, with headers >PDBID_CHAIN (the ids that\n"
      "--ids files and split lists use). Written atomically.\n\noptions");
  desc.add_options()("help,h", "show this help")("out,o", po::value(&out), "FASTA file to write")(
      "db", po::value(&db), "structure_db.dat");
  po::positional_options_description pos;
  pos.add("db", 1);
  if (!parse_options(desc, args, &pos)) return 0;
  WENSU_CHECK(!db.empty() && !out.empty(), "usage: wensu structdb fasta DB.dat -o OUT.fasta");
  const fold::StructureDb sdb = fold::StructureDb::open(db);
  const int64_t n = fold::write_structure_db_fasta(sdb, out);
  std::printf("wrote %s: %lld sequences, %lld residues\n", out.c_str(), (long long)n, (long long)sdb.residues());
  return 0;
}

int structdb_export(const Args& args) {
  std::string db, ids_file, out;
  int64_t min_len = 30, max_len = 1000;
  std::vector<std::string> attrs;
  po::options_description desc(
      "usage: wensu structdb export DB.dat --ids FILE --out SHARD.h5 [options]\n\n"
      "Writes the chains listed in FILE (one PDBID_CHAIN per line, in that order; blank lines\n"
      "and '#' comments skipped) into one HDF5 training shard: sequence, backbone N/CA/C/O,\n"
      "ideal CB, phi/psi with mask, DSSP and the sequence profile (layout in docs/fold.md).\n"
      "Chains outside [--min-len, --max-len] are skipped and counted; an id that is not in the\n"
      "database is an error. Written atomically.\n\noptions");
  desc.add_options()("help,h", "show this help")("ids", po::value(&ids_file), "file of chain ids")(
      "out,o", po::value(&out), "shard to write (.h5)")("min-len", po::value(&min_len)->default_value(30),
                                                         "skip chains shorter than this")(
      "max-len", po::value(&max_len)->default_value(1000), "skip chains longer than this")(
      "attr", po::value(&attrs)->composing(), "KEY=VALUE string attribute for the shard (repeatable), e.g. split=train")(
      "db", po::value(&db), "structure_db.dat");
  po::positional_options_description pos;
  pos.add("db", 1);
  if (!parse_options(desc, args, &pos)) return 0;
  WENSU_CHECK(!db.empty() && !ids_file.empty() && !out.empty(),
              "usage: wensu structdb export DB.dat --ids FILE --out SHARD.h5 [--min-len N] [--max-len N]");
  fold::ExportOptions opt;
  opt.min_length = min_len;
  opt.max_length = max_len;
  for (const std::string& a : attrs) {
    const size_t eq = a.find('=');
    WENSU_CHECK(eq != std::string::npos && eq > 0, "--attr '", a, "' must look like KEY=VALUE");
    opt.attributes[a.substr(0, eq)] = a.substr(eq + 1);
  }
  const std::vector<std::string> ids = fold::read_chain_ids(ids_file);
  WENSU_CHECK(!ids.empty(), "--ids ", ids_file, " lists no chain ids");
  const fold::StructureDb sdb = fold::StructureDb::open(db);
  train::ProgressBar bar("export", int64_t(ids.size()), "chain");
  const fold::ExportReport rep =
      fold::export_fold_shard(sdb, ids, out, opt, [&](int64_t done) { bar.update(done); });
  bar.finish();
  std::printf("wrote %s: %lld chains, %lld residues (skipped %lld shorter than %lld, %lld longer than %lld)\n",
              out.c_str(), (long long)rep.chains, (long long)rep.residues, (long long)rep.skipped_short,
              (long long)min_len, (long long)rep.skipped_long, (long long)max_len);
  return 0;
}

}  // namespace

int cmd_structdb(const Args& args) {
  return run_subcommand("structdb", "subcommand", kUsage, args,
                        {{"info", structdb_info}, {"fasta", structdb_fasta}, {"export", structdb_export}});
}

}  // namespace wensu::app
