#!/usr/bin/env python3
"""Export a fair-esm ESM-2 model as safetensors + a Wensu config, for `wensu convert esm2`.

    .venv/bin/python scripts/export_esm2.py esm2_t6_8M_UR50D.pt -o esm2_8m.safetensors
    .venv/bin/python scripts/export_esm2.py --random-tiny -o tiny.safetensors   # no download
    build/wensu convert esm2 esm2_8m.safetensors esm2_8m.h5

Needs torch, safetensors and fair-esm (pip install fair-esm safetensors). A .pt path is read
locally (nothing is downloaded) and built by fair-esm's own loader
(esm.pretrained.load_model_and_alphabet_core); the "-contact-regression.pt" file next to it is
not needed (Wensu has no contact head). fair-esm's .pt files are pickles whose config is an
argparse.Namespace: they are read with torch.load(weights_only=True) allowing that one class;
--unsafe-pickle reads any pickle (only for files you trust).
--random-tiny builds a small ESM-2 with every parameter randomised from --seed (the Wensu
fixtures use it: scripts/make_esm2_fixture.py).

Writes OUT (the state dict under fair-esm's names, minus lm_head.weight, which is the same
tensor as embed_tokens.weight; safetensors refuses shared tensors and Wensu ties them anyway)
and OUT with .json instead of .safetensors (the Wensu Esm2Config). The config is also stored
in the file's metadata under "esm2_config", so the .safetensors file alone converts.
"""

import argparse
import json
import warnings
from pathlib import Path

import torch


def esm2_config(model):
    """The Wensu Esm2Config (src/wensu/models/esm2.h) of a fair-esm ESM2."""
    return {
        "num_layers": model.num_layers,
        "embed_dim": model.embed_dim,
        "attention_heads": model.attention_heads,
        "token_dropout": bool(model.token_dropout),
        "ffn": {"d_ff": model.layers[0].ffn_embed_dim},
    }


def random_tiny_esm2(num_layers=2, embed_dim=32, heads=4, token_dropout=True, seed=0):
    """A fair-esm ESM2 whose parameters are all random (not only the initialised ones: layer
    norms and biases start at 1 and 0, which would hide mistakes in their use)."""
    import esm

    torch.manual_seed(seed)
    model = esm.model.esm2.ESM2(num_layers=num_layers, embed_dim=embed_dim, attention_heads=heads,
                                alphabet="ESM-1b", token_dropout=token_dropout)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            if name.endswith("layer_norm.weight") or name.endswith("layer_norm_after.weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            elif name == "embed_tokens.weight":
                p.copy_(noise)  # the padding row too: the model must zero padded positions itself
            else:
                p.copy_(noise / p.shape[-1] ** 0.5)
    return model.eval()


def load_fair_esm(path, unsafe_pickle=False):
    """A fair-esm ESM2 from a local .pt file, without its contact-regression file."""
    import argparse
    import pickle

    import esm

    try:
        if unsafe_pickle:
            model_data = torch.load(path, map_location="cpu", weights_only=False)
        else:
            with torch.serialization.safe_globals([argparse.Namespace]):
                model_data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise SystemExit(f"{path}: cannot be read as weights only ({e}); if you trust the file, add --unsafe-pickle")
    # "esm2" selects fair-esm's ESM-2 loader whatever the file is called. Without the
    # regression data it warns that contacts will be wrong: Wensu does not use them.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Regression weights not found")
        model, _ = esm.pretrained.load_model_and_alphabet_core("esm2", model_data, None)
    if not isinstance(model, esm.model.esm2.ESM2):
        raise SystemExit(f"{path} builds a {type(model).__name__}, not an ESM-2 model")
    return model.eval()


def export(model, out, dtype=torch.float32, source="fair-esm"):
    """Writes OUT.safetensors and OUT.json; returns the config dict. source=None keeps the
    metadata to the config alone (the safetensors writer orders metadata keys by hash, so a
    file with several changes its bytes from run to run)."""
    from safetensors.torch import save_file

    cfg = esm2_config(model)
    tensors = {}
    for name, t in model.state_dict().items():
        if name == "lm_head.weight":  # tied to embed_tokens.weight
            continue
        if t.is_floating_point() and not name.endswith("inv_freq"):  # the buffer stays float32
            t = t.to(dtype)
        tensors[name] = t.detach().contiguous().clone()
    metadata = {"esm2_config": json.dumps(cfg)}
    if source:
        metadata.update({"format": "pt", "source": source})
    out = Path(out)
    save_file(tensors, str(out), metadata=metadata)
    out.with_suffix(".json").write_text(json.dumps(cfg, indent=2) + "\n")
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", nargs="?", help="fair-esm ESM-2 .pt file (e.g. esm2_t6_8M_UR50D.pt)")
    ap.add_argument("--random-tiny", action="store_true", help="build a small random ESM-2 instead of loading one")
    ap.add_argument("--layers", type=int, default=2, help="--random-tiny: layers (default 2)")
    ap.add_argument("--embed-dim", type=int, default=32, help="--random-tiny: embedding size (default 32)")
    ap.add_argument("--heads", type=int, default=4, help="--random-tiny: attention heads (default 4)")
    ap.add_argument("--seed", type=int, default=0, help="--random-tiny: seed (default 0)")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32", help="stored dtype (default f32)")
    ap.add_argument("--unsafe-pickle", action="store_true", help="read a .pt that needs more than weights (trusted files only)")
    ap.add_argument("-o", "--output", required=True, help="output .safetensors path")
    args = ap.parse_args()
    if bool(args.checkpoint) == args.random_tiny:
        ap.error("give either a checkpoint path or --random-tiny")
    if not args.output.endswith(".safetensors"):
        ap.error("the output name must end in .safetensors (the config goes next to it as .json)")

    if args.random_tiny:
        model = random_tiny_esm2(args.layers, args.embed_dim, args.heads, True, args.seed)
        source = f"fair-esm random tiny (seed {args.seed})"
    else:
        model = load_fair_esm(args.checkpoint, args.unsafe_pickle)
        source = f"fair-esm {Path(args.checkpoint).name}"
    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    cfg = export(model, args.output, dtype, source)
    print(f"wrote {args.output} and {Path(args.output).with_suffix('.json')}: {json.dumps(cfg)}")


if __name__ == "__main__":
    main()
