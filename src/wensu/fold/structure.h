// A protein backbone as plain arrays, and its PDB / mmCIF I/O through Gemmi. This is what
// `wensu fold` writes and what `wensu score` compares; nothing here knows about tensors.
//
// One chain, L residues, every per-residue array in residue order:
//   n, ca, c, o  [L][3]  backbone atoms in Å. ca is always present; a residue without N, C or O
//                        in the file gets NaN coordinates for that atom.
//   cb           [L][3]  or empty: empty when the chain has no CB atom at all, else NaN for
//                        residues without one (glycine).
//   confidence   [L]     or empty: per-residue pLDDT in 0..100, stored in the B-factor column.
//                        Reading fills it from each CA's B-factor, which is pLDDT in predicted
//                        models (AlphaFold, ESMFold, Wensu) and a crystallographic B-factor in
//                        experimental ones.
//   sequence     L       one-letter codes; 'X' for anything but the 20 standard amino acids.
#pragma once
#include <array>
#include <string>
#include <vector>

namespace wensu::fold {

using Vec3 = std::array<float, 3>;

struct Backbone {
  std::string id;                    // structure name (file stem on reading; mmCIF block name)
  std::string sequence;              // [L]
  std::vector<Vec3> n, ca, c, o, cb;  // [L][3] each; cb may be empty
  std::vector<float> confidence;     // [L] or empty

  size_t size() const { return ca.size(); }
};

// Reads one chain of the first model from a PDB or mmCIF file, plain or gzipped (the format is
// told from the content, not the name: a file starting with data_ is mmCIF). `chain` names the chain
// (author chain id, as in the PDB file); empty picks the first chain with amino-acid residues.
// The residues kept are the amino acids (standard or modified, ATOM or HETATM) that have a CA;
// waters and ligands are left out, and of alternative conformations the first one is read.
// Throws wensu::Error naming the file when it cannot be read, the chain is missing (the message
// lists the chains there are) or the chain holds no residue with a CA.
Backbone read_backbone(const std::string& path, const std::string& chain = "");

// Writes `bb` as chain A of a one-model structure: PDB to `pdb_path` and mmCIF to `cif_path`
// (either may be empty: not written). Confidence goes into the B-factor column (0 when
// `confidence` is empty), occupancy 1, residues numbered 1..L, unknown residues as UNK, atoms
// with NaN coordinates left out. No CRYST1 line or _cell: a model has no unit cell. Each file
// is written to a temporary next to it and renamed into place, so a reader never sees half a
// file. Throws wensu::Error when the arrays disagree in length or a file cannot be written.
void write_backbone(const Backbone& bb, const std::string& pdb_path, const std::string& cif_path);

}  // namespace wensu::fold
