// wensu score: a predicted structure against its reference (TM-score, RMSD, GDT-TS, lDDT-CA),
// one JSON line. Reading is wensu/fold/structure.h, the scores wensu/fold/score.h.
#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "wensu/core/check.h"
#include "wensu/fold/score.h"
#include "wensu/fold/structure.h"

namespace po = boost::program_options;

namespace wensu::app {

int cmd_score(const Args& args) {
  std::string pred_path, ref_path, chain_pred, chain_ref;
  po::options_description desc(
      "usage: wensu score PRED REF [--chain-pred A] [--chain-ref A]\n"
      "\n"
      "Compares a predicted structure PRED with its reference REF, residue i with residue i\n"
      "(same length; same sequence where both files have one). PDB or mmCIF, gzipped or not;\n"
      "the first model, the named chain or else the first protein chain, CA atoms.\n"
      "Prints one JSON line:\n"
      "  tm_score  TM-score normalised by the reference length, best superposition searched as\n"
      "            the TMscore program does (same numbers as `TMscore PRED REF`)\n"
      "  rmsd      CA RMSD in Å after superposing all residues\n"
      "  gdt_ts    GDT-TS, mean fraction within 1, 2, 4, 8 Å (0..1)\n"
      "  lddt_ca   lDDT over CA atoms, 15 Å inclusion radius (0..1, no superposition)\n"
      "  length    residues compared\n"
      "\noptions");
  desc.add_options()("help,h", "show this help")
      ("pred", po::value(&pred_path), "predicted structure")
      ("ref", po::value(&ref_path), "reference structure")
      ("chain-pred", po::value(&chain_pred), "chain of PRED (default: its first protein chain)")
      ("chain-ref", po::value(&chain_ref), "chain of REF (default: its first protein chain)");
  po::positional_options_description pos;
  pos.add("pred", 1).add("ref", 1);
  if (!parse_options(desc, args, &pos)) return 0;
  WENSU_CHECK(!pred_path.empty() && !ref_path.empty(), "give two structures (usage: wensu score PRED REF)");

  fold::Backbone pred = fold::read_backbone(pred_path, chain_pred);
  fold::Backbone ref = fold::read_backbone(ref_path, chain_ref);
  pred.id = pred_path, ref.id = ref_path;  // messages name the files as the user gave them
  const fold::ScoreResult r = fold::score_structures(pred, ref);
  // Four decimals, as TMscore prints them.
  auto round4 = [](double v) { return std::round(v * 1e4) / 1e4; };
  nlohmann::ordered_json out;
  out["tm_score"] = round4(r.tm_score);
  out["rmsd"] = round4(r.rmsd);
  out["gdt_ts"] = round4(r.gdt_ts);
  out["lddt_ca"] = round4(r.lddt_ca);
  out["length"] = r.length;
  out["pred"] = pred_path;
  out["ref"] = ref_path;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace wensu::app
