#!/usr/bin/env python3
"""Golden fixtures for Wensu's ESM-2 (src/wensu/models/esm2.h) and safetensors reader.

Regenerate (from the repository root, after scripts/setup-python.sh and
`.venv/bin/pip install fair-esm safetensors transformers`):
    .venv/bin/python scripts/make_esm2_fixture.py

Writes, into tests/data/:
  esm2_tiny.safetensors      a random fair-esm ESM2 (2 layers, embed 32, 4 heads, token dropout),
                             exported by scripts/export_esm2.py (fair-esm names, float32)
  esm2_tiny_hf.safetensors   a random HF transformers EsmForMaskedLM (1 layer, hidden 16, 2 heads,
  esm2_tiny_hf.config.json   rotary, token dropout) under HF's names, and its config.json
  esm2_tiny_logits.h5        inputs and outputs of both, computed in float64 from the stored
                             (float32) weights:
    /fair_esm, /hf           one group per model
      attrs num_layers, embed_dim, attention_heads: int64
      tokens           [B, L] int64  3 sequences (<cls> ... <eos>, padded with <pad> = 1) of
                                     different lengths, two with <mask> tokens (32) in different
                                     proportions, so token dropout's per-sequence scale matters
      logits           [B, L, 33]    every position, padded ones included
      representations  [B, L, D]     last layer after emb_layer_norm_after
  safetensors_dtypes.safetensors  written by the reference safetensors library: the same 7
                             values as F32, F64, F16, BF16 and I64 ("x_f32", ...) plus a 2x3 F32
                             matrix "m"; tests/unit/test_safetensors.cpp knows the values

The files are deterministic (fixed seeds) for a given torch version.
"""

import sys
from pathlib import Path

import h5py
import torch

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_esm2 import export, random_tiny_esm2  # noqa: E402

SEQUENCES = ["MKTAYIAKQRQISFVKSH", "GSHMLEDPV", "ACDW"]
# (sequence, residue positions counted from 0) replaced by <mask>
MASKED = {0: [2, 5, 11], 1: [4]}


def tokens_for(alphabet):
    _, _, toks = alphabet.get_batch_converter()([(str(i), s) for i, s in enumerate(SEQUENCES)])
    for b, positions in MASKED.items():
        for p in positions:
            toks[b, 1 + p] = alphabet.mask_idx  # +1 for <cls>
    return toks


def write_group(f, name, model_dims, tokens, logits, reps):
    g = f.create_group(name)
    for k, v in model_dims.items():
        g.attrs[k] = int(v)
    g.create_dataset("tokens", data=tokens.numpy().astype("int64"))
    g.create_dataset("logits", data=logits.numpy())
    g.create_dataset("representations", data=reps.numpy())


def fair_esm_case(f):
    model = random_tiny_esm2(num_layers=2, embed_dim=32, heads=4, token_dropout=True, seed=2024)
    export(model, DATA / "esm2_tiny.safetensors", torch.float32, source=None)  # deterministic bytes
    (DATA / "esm2_tiny.json").unlink()  # the config is in the file's metadata
    tokens = tokens_for(model.alphabet)
    model = model.double()  # float32 weights, exactly representable in float64
    with torch.no_grad():
        out = model(tokens, repr_layers=[model.num_layers])
    dims = {"num_layers": 2, "embed_dim": 32, "attention_heads": 4}
    write_group(f, "fair_esm", dims, tokens, out["logits"], out["representations"][model.num_layers])
    return tokens


# HF EsmForMaskedLM's names for the fair-esm ones, written from transformers' modeling_esm.py
# (independently of the C++ table), used only to check that HF computes what fair-esm does.
def hf_name(name):
    name = name.replace("embed_tokens.", "esm.embeddings.word_embeddings.")
    name = name.replace("emb_layer_norm_after.", "esm.encoder.emb_layer_norm_after.")
    if name.startswith("layers."):
        _, i, rest = name.split(".", 2)
        for a, b in [("self_attn.q_proj.", "attention.self.query."), ("self_attn.k_proj.", "attention.self.key."),
                     ("self_attn.v_proj.", "attention.self.value."), ("self_attn.out_proj.", "attention.output.dense."),
                     ("self_attn_layer_norm.", "attention.LayerNorm."), ("fc1.", "intermediate.dense."),
                     ("fc2.", "output.dense."), ("final_layer_norm.", "LayerNorm.")]:
            if rest.startswith(a):
                return f"esm.encoder.layer.{i}.{b}{rest[len(a):]}"
    return name


def hf_case(f, tokens):
    from safetensors.torch import save_file
    from transformers import EsmConfig, EsmForMaskedLM

    cfg = EsmConfig(vocab_size=33, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=64, position_embedding_type="rotary", token_dropout=True,
                    mask_token_id=32, pad_token_id=1, layer_norm_eps=1e-5, emb_layer_norm_before=False)
    ref = random_tiny_esm2(num_layers=1, embed_dim=16, heads=2, token_dropout=True, seed=77)
    cfg._attn_implementation = "eager"
    hf = EsmForMaskedLM(cfg).eval()
    skip = ("inv_freq", "contact_head", "lm_head.weight")
    sd = {hf_name(k): v for k, v in ref.state_dict().items() if not any(s in k for s in skip)}
    sd["lm_head.decoder.weight"] = sd["esm.embeddings.word_embeddings.weight"]
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all("inv_freq" in k or "contact_head" in k for k in missing), missing

    tensors = {k: v.detach().clone().contiguous() for k, v in hf.state_dict().items() if k != "lm_head.decoder.weight"}
    save_file(tensors, str(DATA / "esm2_tiny_hf.safetensors"), metadata={"format": "pt"})
    (DATA / "esm2_tiny_hf.config.json").write_text(cfg.to_json_string())

    hf, ref = hf.double(), ref.double()
    with torch.no_grad():
        out = hf(input_ids=tokens, attention_mask=tokens.ne(1), output_hidden_states=False)
        reps = hf.esm(input_ids=tokens, attention_mask=tokens.ne(1)).last_hidden_state
        want = ref(tokens)["logits"]
    # HF applies rotary and computes the mask ratio in float32 even in a float64 model, so the
    # two agree to float32 rounding, not float64.
    err = ((out.logits - want).abs().max() / want.abs().max()).item()
    assert err < 1e-5, f"HF and fair-esm disagree (relative {err}): the HF name table is wrong"
    write_group(f, "hf", {"num_layers": 1, "embed_dim": 16, "attention_heads": 2}, tokens, out.logits, reps)


def dtypes_case():
    from safetensors.torch import save_file

    x = torch.tensor([0.0, 1.0, -2.5, 3.140625, 1e-3, -65504.0, 0.333251953125], dtype=torch.float64)
    tensors = {f"x_{n}": x.to(t) for n, t in [("f32", torch.float32), ("f64", torch.float64),
                                               ("f16", torch.float16), ("bf16", torch.bfloat16)]}
    tensors["x_i64"] = torch.tensor([0, 1, -2, 3, 1 << 40, -(1 << 40), 7], dtype=torch.int64)
    tensors["m"] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    save_file(tensors, str(DATA / "safetensors_dtypes.safetensors"), metadata={"note": "wensu fixture"})


def main():
    with h5py.File(DATA / "esm2_tiny_logits.h5", "w") as f:
        tokens = fair_esm_case(f)
        hf_case(f, tokens)
    dtypes_case()
    for n in ["esm2_tiny.safetensors", "esm2_tiny_hf.safetensors", "esm2_tiny_hf.config.json", "esm2_tiny_logits.h5",
              "safetensors_dtypes.safetensors"]:
        print(f"wrote tests/data/{n} ({(DATA / n).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
