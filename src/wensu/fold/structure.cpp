// Backbone <-> Gemmi structures. Gemmi is header-only; its writers are compiled where
// GEMMI_WRITE_IMPLEMENTATION is defined, which is here and must be nowhere else in the library.
#include "wensu/fold/structure.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#define GEMMI_WRITE_IMPLEMENTATION
// Debian's Gemmi uses the system stb_sprintf.h and says so with a #warning when this file
// compiles (g++ 12 cannot silence #warning by pragma); the round-trip tests check what it writes.
#include <gemmi/gz.hpp>        // MaybeGzipped: plain or .gz input
#include <gemmi/mmread.hpp>    // read_structure
#include <gemmi/resinfo.hpp>   // find_tabulated_residue
#include <gemmi/to_cif.hpp>    // write_cif_to_stream
#include <gemmi/to_mmcif.hpp>  // make_mmcif_document
#include <gemmi/to_pdb.hpp>    // write_pdb

#include "wensu/core/check.h"

namespace wensu::fold {
namespace {

namespace fs = std::filesystem;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// The amino acids a chain is made of: standard or modified (MSE, SEP, ...), as Gemmi's residue
// table knows them; a residue the table does not know counts when the file calls it polymer
// (ATOM record / polymer entity), so an unusual modified residue does not cut the chain.
bool is_amino_acid(const gemmi::Residue& res) {
  const gemmi::ResidueInfo info = gemmi::find_tabulated_residue(res.name);
  if (info.found()) return info.is_amino_acid();
  return res.het_flag == 'A' || res.entity_type == gemmi::EntityType::Polymer;
}

bool has_ca(const gemmi::Residue& res) { return res.get_ca() != nullptr; }

int64_t count_amino_acids(const gemmi::Chain& ch) {
  int64_t n = 0;
  for (const gemmi::Residue& r : ch.residues) n += is_amino_acid(r) && has_ca(r);
  return n;
}

Vec3 to_vec(const gemmi::Position& p) {
  return {static_cast<float>(p.x), static_cast<float>(p.y), static_cast<float>(p.z)};
}

// Names of the chains in the model (each once, in file order) for error messages.
std::string chain_names(const gemmi::Model& model) {
  std::string out;
  for (const gemmi::Chain& ch : model.chains) {
    if (count_amino_acids(ch) == 0) continue;
    const std::string item = "'" + ch.name + "'";
    if (out.find(item) == std::string::npos) out += (out.empty() ? "" : ", ") + item;
  }
  return out.empty() ? "none with amino acids" : out;
}

const std::array<const char*, 26> kThreeLetter = {
    "ALA", "ASX", "CYS", "ASP", "GLU", "PHE", "GLY", "HIS", "ILE", "UNK", "LYS", "LEU", "MET",
    "ASN", "PYL", "PRO", "GLN", "ARG", "SER", "THR", "SEC", "VAL", "TRP", "UNK", "TYR", "GLX"};

std::string three_letter(char one) {
  if (one >= 'a' && one <= 'z') one = static_cast<char>(one - 'a' + 'A');
  return one >= 'A' && one <= 'Z' ? kThreeLetter[one - 'A'] : "UNK";
}

// Writes through `write` into a temporary beside `path`, then renames it over `path`: the
// rename is atomic within one filesystem, so a reader sees the old file or the new one.
template <typename F>
void write_atomically(const std::string& path, const char* what, F&& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      WENSU_CHECK(out.is_open(), "cannot create ", what, " file '", tmp, "': ", std::strerror(errno));
      write(out);
      out.flush();
      WENSU_CHECK(out.good(), "cannot write ", what, " file '", tmp, "' (disk full?)");
    }
    WENSU_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path,
                "': ", std::strerror(errno));
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

gemmi::Atom make_atom(const char* name, gemmi::El el, const Vec3& p, float b, int serial) {
  gemmi::Atom a;
  a.name = name;
  a.element = gemmi::Element(el);
  a.pos = gemmi::Position(p[0], p[1], p[2]);
  a.occ = 1.0f;
  a.b_iso = b;
  a.serial = serial;
  return a;
}

bool finite(const Vec3& p) { return std::isfinite(p[0]) && std::isfinite(p[1]) && std::isfinite(p[2]); }

gemmi::Structure to_gemmi(const Backbone& bb) {
  const size_t L = bb.size();
  auto check_len = [&](size_t n, const char* name, bool may_be_empty) {
    WENSU_CHECK(n == L || (may_be_empty && n == 0), "write_backbone: '", bb.id, "' has ", L, " CA atoms but ", n,
                " entries in ", name, may_be_empty ? " (expected as many, or none)" : " (expected as many)");
  };
  check_len(bb.n.size(), "n", false);
  check_len(bb.c.size(), "c", false);
  check_len(bb.o.size(), "o", false);
  check_len(bb.cb.size(), "cb", true);
  check_len(bb.confidence.size(), "confidence", true);
  check_len(bb.sequence.size(), "sequence", false);

  gemmi::Structure st;
  st.name = bb.id.empty() ? "wensu" : bb.id;
  gemmi::Model model("1");
  gemmi::Chain chain("A");
  int serial = 0;
  for (size_t i = 0; i < L; ++i) {
    WENSU_CHECK(finite(bb.ca[i]), "write_backbone: '", bb.id, "' residue ", i + 1, " has a non-finite CA");
    gemmi::Residue res;
    res.name = three_letter(bb.sequence[i]);
    res.seqid = gemmi::SeqId(static_cast<int>(i + 1), ' ');
    res.het_flag = 'A';
    res.entity_type = gemmi::EntityType::Polymer;
    res.subchain = "A";  // mmCIF label_asym_id
    res.entity_id = "1";
    res.label_seq = static_cast<int>(i + 1);
    const float b = bb.confidence.empty() ? 0.0f : bb.confidence[i];
    // PDB atom order within a residue: N, CA, C, O, then the side chain.
    if (finite(bb.n[i])) res.atoms.push_back(make_atom("N", gemmi::El::N, bb.n[i], b, ++serial));
    res.atoms.push_back(make_atom("CA", gemmi::El::C, bb.ca[i], b, ++serial));
    if (finite(bb.c[i])) res.atoms.push_back(make_atom("C", gemmi::El::C, bb.c[i], b, ++serial));
    if (finite(bb.o[i])) res.atoms.push_back(make_atom("O", gemmi::El::O, bb.o[i], b, ++serial));
    if (!bb.cb.empty() && finite(bb.cb[i])) res.atoms.push_back(make_atom("CB", gemmi::El::C, bb.cb[i], b, ++serial));
    chain.residues.push_back(std::move(res));
  }
  // One polymer entity whose sequence is the chain's: PDB SEQRES and mmCIF _entity_poly_seq.
  gemmi::Entity entity("1");
  entity.subchains = {"A"};
  entity.entity_type = gemmi::EntityType::Polymer;
  entity.polymer_type = gemmi::PolymerType::PeptideL;
  for (const gemmi::Residue& res : chain.residues) entity.full_sequence.push_back(res.name);
  st.entities.push_back(std::move(entity));
  model.chains.push_back(std::move(chain));
  st.models.push_back(std::move(model));
  return st;
}

}  // namespace

Backbone read_backbone(const std::string& path, const std::string& chain) {
  std::error_code ec;
  WENSU_CHECK(fs::is_regular_file(path, ec), "cannot read structure '", path, "': ",
              fs::exists(path, ec) ? "not a regular file" : "no such file");
  gemmi::Structure st;
  try {
    // Detect: the format from the content, so a .pdb that holds mmCIF (or a file without a
    // known extension) still reads.
    st = gemmi::read_structure(gemmi::MaybeGzipped(path), gemmi::CoorFormat::Detect);
  } catch (const std::exception& e) {
    throw Error(detail::concat("cannot read structure '", path, "': ", e.what()));
  }
  WENSU_CHECK(!st.models.empty(), "structure '", path, "' has no atoms (no model)");
  const gemmi::Model& model = st.models.front();

  // mmCIF splits an author chain into one Gemmi chain per run of atoms (polymer, then its
  // waters): take the first one with that name that has amino acids.
  const gemmi::Chain* picked = nullptr;
  for (const gemmi::Chain& ch : model.chains)
    if ((chain.empty() || ch.name == chain) && count_amino_acids(ch) > 0) {
      picked = &ch;
      break;
    }
  if (picked == nullptr) {
    WENSU_CHECK(!chain.empty(), "structure '", path, "' has no protein chain (no amino acid with a CA atom)");
    throw Error(detail::concat("structure '", path, "' has no protein chain '", chain, "'; its protein chains: ",
                               chain_names(model)));
  }

  Backbone bb;
  bb.id = st.name.empty() ? fs::path(path).stem().string() : st.name;
  bool any_cb = false;
  const gemmi::Residue* prev = nullptr;
  for (const gemmi::Residue& res : picked->residues) {
    if (!is_amino_acid(res) || !has_ca(res)) continue;
    // Microheterogeneity (two residue types at one position) appears as repeated residues with
    // the same number: keep the first.
    if (prev != nullptr && prev->seqid == res.seqid) continue;
    prev = &res;
    const gemmi::Atom* ca = res.get_ca();
    // The other atoms from the CA's conformer, so one residue is never a mix of two.
    const char alt = ca->altloc ? ca->altloc : '*';
    auto atom = [&](const char* name) {
      const gemmi::Atom* a = res.find_atom(name, alt);
      return a ? to_vec(a->pos) : Vec3{kNaN, kNaN, kNaN};
    };
    bb.ca.push_back(to_vec(ca->pos));
    bb.n.push_back(atom("N"));
    bb.c.push_back(atom("C"));
    bb.o.push_back(atom("O"));
    bb.cb.push_back(atom("CB"));
    any_cb = any_cb || std::isfinite(bb.cb.back()[0]);
    bb.confidence.push_back(ca->b_iso);
    bb.sequence.push_back(gemmi::find_tabulated_residue(res.name).fasta_code());
  }
  if (!any_cb) bb.cb.clear();
  return bb;
}

void write_backbone(const Backbone& bb, const std::string& pdb_path, const std::string& cif_path) {
  if (pdb_path.empty() && cif_path.empty()) return;
  const gemmi::Structure st = to_gemmi(bb);
  try {
    if (!pdb_path.empty())
      write_atomically(pdb_path, "PDB", [&](std::ostream& os) {
        gemmi::PdbWriteOptions opt;
        opt.cryst1_record = false;  // no unit cell: a CRYST1 of 1 1 1 would mislead viewers
        gemmi::write_pdb(st, os, opt);
      });
    if (!cif_path.empty())
      write_atomically(cif_path, "mmCIF", [&](std::ostream& os) {
        gemmi::MmcifOutputGroups groups(true);
        groups.cell = groups.symmetry = groups.scale = false;
        groups.entity_poly = true;  // _entity_poly.type polypeptide(L), as predicted models carry
        gemmi::cif::write_cif_to_stream(os, gemmi::make_mmcif_document(st, groups), gemmi::cif::Style::Pdbx);
      });
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // Gemmi's own failures
    throw Error(detail::concat("cannot write structure '", bb.id, "': ", e.what()));
  }
}

}  // namespace wensu::fold
