#!/usr/bin/env python3
"""Golden fixtures for Wensu's GPT decoder (src/wensu/models/gpt.h) and its GPT-2 import
(src/wensu/models/gpt2_convert.h).

Regenerate (from the repository root; needs torch, transformers and safetensors):
    /work/venv/bin/python scripts/text/make_gpt2_fixture.py
(or .venv/bin/python after scripts/setup-python.sh and `.venv/bin/pip install transformers safetensors`)

Writes, into tests/data/:
  gpt2_tiny/config.json        a seeded random Hugging Face GPT2LMHeadModel (vocab 512, n_positions 64,
  gpt2_tiny/model.safetensors  n_embd 32, 2 layers, 4 heads, gelu_new, tied LM head) as
                               save_pretrained(safe_serialization=True) writes it
  gpt2_tiny_ref.safetensors    what HF computes with it (eval mode, float32):
    input_ids      [2, 24] int64    random tokens
    logits         [2, 24, 512]     float32, every position
    greedy_prompt  [1, 8] int64     a prompt
    greedy_tokens  [1, 32] int64    generate(do_sample=False, max_new_tokens=32)'s continuation

The weights are drawn N(0, 0.3^2) (layer-norm gains around 1), not GPT-2's 0.02, so that logits
differ by whole units and greedy decoding wanders instead of repeating one token. The script
checks that every greedy step wins by a clear margin (float32 rounding in another
implementation cannot flip it) and that the continuation is not one repeated token.
Deterministic (fixed seeds) for a given torch version.
"""

import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

REPO = Path(__file__).resolve().parent.parent.parent
DATA = REPO / "tests" / "data"
OUT_DIR = DATA / "gpt2_tiny"
VOCAB, POSITIONS, EMBED, LAYERS, HEADS = 512, 64, 32, 2, 4
PROMPT_LEN, NEW_TOKENS = 8, 32
MIN_MARGIN = 1e-2  # top-1 minus top-2 logit at every greedy step


def random_model(seed):
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=POSITIONS, n_embd=EMBED, n_layer=LAYERS, n_head=HEADS,
                     activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    return model


def greedy(model, prompt):
    with torch.no_grad():
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, pad_token_id=VOCAB - 1,
                             output_scores=True, return_dict_in_generate=True)
    tokens = out.sequences[:, prompt.size(1):]
    margins = [float(s.topk(2, dim=-1).values.diff(dim=-1).abs().min()) for s in out.scores]
    return tokens, min(margins)


def main():
    model = random_model(seed=2025)
    gen = torch.Generator().manual_seed(7)
    input_ids = torch.randint(0, VOCAB, (2, 24), generator=gen)
    with torch.no_grad():
        logits = model(input_ids).logits.float().contiguous()

    # The first prompt whose greedy continuation has clear margins and several distinct tokens.
    for attempt in range(100):
        prompt = torch.randint(0, VOCAB - 1, (1, PROMPT_LEN), generator=gen)
        tokens, margin = greedy(model, prompt)
        if tokens.size(1) == NEW_TOKENS and margin > MIN_MARGIN and len(set(tokens[0].tolist())) >= 8:
            break
    else:
        raise SystemExit("no prompt with a clear greedy continuation; change the seeds")

    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    model.save_pretrained(OUT_DIR, safe_serialization=True)
    for f in OUT_DIR.iterdir():  # generation_config.json and the like: not needed
        if f.name not in ("config.json", "model.safetensors"):
            f.unlink()
    save_file({"input_ids": input_ids.contiguous(), "logits": logits, "greedy_prompt": prompt.contiguous(),
               "greedy_tokens": tokens.contiguous()},
              str(DATA / "gpt2_tiny_ref.safetensors"), metadata={"note": "wensu fixture, scripts/text/make_gpt2_fixture.py"})
    print(f"prompt attempt {attempt}, min greedy margin {margin:.4f}, "
          f"{len(set(tokens[0].tolist()))} distinct of {NEW_TOKENS} tokens, logit std {logits.std():.2f}")
    for f in [OUT_DIR / "config.json", OUT_DIR / "model.safetensors", DATA / "gpt2_tiny_ref.safetensors"]:
        print(f"wrote {f.relative_to(REPO)} ({f.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
