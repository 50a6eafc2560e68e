#!/usr/bin/env python3
"""Golden fixtures for Wensu's transformer layer, computed by PyTorch in float64.

Regenerate (from the repository root, after scripts/setup-python.sh):
    .venv/bin/python scripts/make_fixtures.py            # writes tests/data/transformer_layer.h5

The layer is ONE pre-LN transformer layer:
    h = x + attn(LN1(x));   y = h + ffn(LN2(h))
  LN    layer_norm over the last dim, eps 1e-5, weight and bias
  attn  q/k/v = z @ W^T + b, split into H heads of Dh = D/H ([B, L, H, Dh] -> [B, H, L, Dh]);
        optional rotary on q and k (rotate-half, as ESM-2 / GPT-NeoX); scores = q k^T / sqrt(Dh);
        key padding mask (1 = padded key -> -inf); optional causal mask; softmax; o = P v;
        back to [B, L, D]; out = o @ Wo^T + bo
  ffn   fc2(gelu(fc1(z))), exact erf GELU, fc1: D -> F, fc2: F -> D
Padding masks keys only: the rows of padded query positions are computed like any other and are
part of y and grad_x. Without rotary, grads/attn.k_proj.bias is zero up to rounding (~1e-16):
q . b_k adds the same constant to every score of a query row and softmax cancels it; compare it
with an absolute tolerance. With rotary the shift depends on position and the gradient is not zero.

Layout of transformer_layer.h5 (everything float64 unless noted):
  /<case>/                         one group per case: plain, rotary_causal
    attrs d_model, n_heads, d_ff, rotary (0/1), causal (0/1): int64;  ln_eps: float64
    x                 [B, L, D]
    key_padding_mask  [B, L] int64, 1 = padded key (all zero when unused)
    params/<name>     every parameter, Wensu hierarchical names; Linear weights are [out, in]
    y                 [B, L, D]
    grad_y            [B, L, D]  fixed random upstream gradient
    grad_x            [B, L, D]  d sum(y * grad_y) / dx
    grads/<name>      d sum(y * grad_y) / d param, same shapes as params/<name>
"""

import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-5
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from fixture_h5 import write_fixture  # noqa: E402

# (name, B, L, D, H, F, rotary, causal, padded positions per sequence, seed)
CASES = [
    ("plain", 2, 5, 16, 4, 32, False, False, [0, 2], 1234),
    ("rotary_causal", 2, 6, 16, 2, 24, True, True, [0, 0], 5678),
]


class LayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d))  # [D]
        self.bias = nn.Parameter(torch.empty(d))  # [D]

    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, LN_EPS)


def rotary(x):
    """Rotate-half rotary embedding of x [B, H, L, Dh]: for position p and i < Dh/2,
    theta = p * 10000^(-2i/Dh); out_i = x_i cos - x_{i+Dh/2} sin; out_{i+Dh/2} = x_{i+Dh/2} cos + x_i sin."""
    L, dh = x.shape[-2], x.shape[-1]
    half = dh // 2
    inv_freq = 10000.0 ** (-2.0 * torch.arange(half, dtype=x.dtype) / dh)  # [Dh/2]
    theta = torch.arange(L, dtype=x.dtype)[:, None] * inv_freq[None, :]  # [L, Dh/2]
    cos, sin = theta.cos(), theta.sin()
    x1, x2 = x[..., :half], x[..., half:]  # [B, H, L, Dh/2] each
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)  # [B, H, L, Dh]


class Attention(nn.Module):
    def __init__(self, d, h, use_rotary, causal):
        super().__init__()
        self.h, self.use_rotary, self.causal = h, use_rotary, causal
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, z, key_padding_mask):
        B, L, D = z.shape
        dh = D // self.h

        def heads(t):  # [B, L, D] -> [B, H, L, Dh]
            return t.view(B, L, self.h, dh).transpose(1, 2)

        q = heads(F.linear(z, self.q_proj.weight, self.q_proj.bias))  # [B, H, L, Dh]
        k = heads(F.linear(z, self.k_proj.weight, self.k_proj.bias))  # [B, H, L, Dh]
        v = heads(F.linear(z, self.v_proj.weight, self.v_proj.bias))  # [B, H, L, Dh]
        if self.use_rotary:
            q, k = rotary(q), rotary(k)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh)  # [B, H, L, L]
        masked = key_padding_mask.bool()[:, None, None, :]  # [B, 1, 1, L]
        if self.causal:
            future = torch.ones(L, L, dtype=torch.bool).triu(1)  # [L, L], key j > query i
            masked = masked | future
        scores = scores.masked_fill(masked, float("-inf"))
        p = scores.softmax(dim=-1)  # [B, H, L, L]
        o = (p @ v).transpose(1, 2).reshape(B, L, D)  # [B, L, D]
        return F.linear(o, self.out_proj.weight, self.out_proj.bias)  # [B, L, D]


class FeedForward(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, f), nn.Linear(f, d)

    def forward(self, z):
        a = F.gelu(F.linear(z, self.fc1.weight, self.fc1.bias), approximate="none")  # [B, L, F]
        return F.linear(a, self.fc2.weight, self.fc2.bias)  # [B, L, D]


class PreLNLayer(nn.Module):
    def __init__(self, d, h, f, use_rotary, causal):
        super().__init__()
        self.ln1, self.attn = LayerNorm(d), Attention(d, h, use_rotary, causal)
        self.ln2, self.ffn = LayerNorm(d), FeedForward(d, f)

    def forward(self, x, key_padding_mask):
        h = x + self.attn(self.ln1(x), key_padding_mask)  # [B, L, D]
        return h + self.ffn(self.ln2(h))  # [B, L, D]


PARAM_NAMES = [
    "ln1.weight", "ln1.bias",
    "attn.q_proj.weight", "attn.q_proj.bias", "attn.k_proj.weight", "attn.k_proj.bias",
    "attn.v_proj.weight", "attn.v_proj.bias", "attn.out_proj.weight", "attn.out_proj.bias",
    "ln2.weight", "ln2.bias",
    "ffn.fc1.weight", "ffn.fc1.bias", "ffn.fc2.weight", "ffn.fc2.bias",
]


def init_params(layer, gen):
    # Far from the identity/zero defaults so that every term of the layer shows in y and the grads.
    with torch.no_grad():
        for name, p in layer.named_parameters():
            n = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            if name.startswith("ln") and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * n)
            elif name.startswith("ln"):
                p.copy_(0.1 * n)
            else:
                p.copy_(0.2 * n)


def check_against_sdpa(layer, x, mask, causal, use_rotary):
    """Independent check of the explicit attention: PyTorch's own scaled_dot_product_attention."""
    a = layer.attn
    B, L, D = x.shape
    z = layer.ln1(x)
    q, k, v = (F.linear(z, m.weight, m.bias).view(B, L, a.h, -1).transpose(1, 2)
               for m in (a.q_proj, a.k_proj, a.v_proj))
    if use_rotary:
        q, k = rotary(q), rotary(k)
    allowed = ~mask.bool()[:, None, None, :]
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool).tril()
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed).transpose(1, 2).reshape(B, L, D)
    ref = F.linear(o, a.out_proj.weight, a.out_proj.bias)
    got = a(z, mask)
    err = (ref - got).abs().max().item()
    assert err < 1e-12, f"explicit attention differs from SDPA by {err}"


def make_case(group, name, B, L, D, H, Fd, use_rotary, causal, padded, seed):
    gen = torch.Generator().manual_seed(seed)
    layer = PreLNLayer(D, H, Fd, use_rotary, causal).double()
    assert [n for n, _ in layer.named_parameters()] == PARAM_NAMES
    init_params(layer, gen)

    x = torch.randn(B, L, D, generator=gen, dtype=torch.float64, requires_grad=True)  # [B, L, D]
    mask = torch.zeros(B, L, dtype=torch.int64)  # [B, L]
    for b, n_pad in enumerate(padded):
        if n_pad:
            mask[b, L - n_pad:] = 1
    grad_y = torch.randn(B, L, D, generator=gen, dtype=torch.float64)  # [B, L, D]

    check_against_sdpa(layer, x.detach(), mask, causal, use_rotary)
    y = layer(x, mask)  # [B, L, D]
    (y * grad_y).sum().backward()

    g = group.create_group(name)
    g.attrs["d_model"], g.attrs["n_heads"], g.attrs["d_ff"] = np.int64(D), np.int64(H), np.int64(Fd)
    g.attrs["rotary"], g.attrs["causal"] = np.int64(use_rotary), np.int64(causal)
    g.attrs["ln_eps"] = np.float64(LN_EPS)
    g["x"] = x.detach().numpy()
    g["key_padding_mask"] = mask.numpy()
    params, grads = g.create_group("params"), g.create_group("grads")
    for pname, p in layer.named_parameters():
        params[pname] = p.detach().numpy()
        grads[pname] = p.grad.numpy()
    g["y"] = y.detach().numpy()
    g["grad_y"] = grad_y.numpy()
    g["grad_x"] = x.grad.numpy()


def main():
    write_fixture(__doc__, REPO / "tests" / "data" / "transformer_layer.h5", "scripts/make_fixtures.py", CASES, make_case)


if __name__ == "__main__":
    main()
