#!/usr/bin/env python3
"""Golden fixture for Wensu's contrastive loss (ops::contrastive_loss), computed by PyTorch in float64.

Regenerate (from the repository root):
    /work/venv/bin/python scripts/mm/make_clip_loss_fixture.py     # writes tests/data/mm/clip_loss.h5

The loss is open_clip's ClipLoss (open_clip/loss.py) on the features a CLIP model hands it:
    I = F.normalize(image_emb, dim=-1),  T = F.normalize(text_emb, dim=-1),  s = log_scale.exp()
    logits_per_image = s * I @ T.T,  logits_per_text = s * T @ I.T              [B, B]
    loss = (F.cross_entropy(logits_per_image, arange(B)) + F.cross_entropy(logits_per_text, arange(B))) / 2
Both cases keep s below CLIP's cap of 100, where Wensu's clamp does nothing. The embeddings
are random normal with a different scale per row (0.2 to 5), so the normalisation matters.

Layout of clip_loss.h5 (everything float64):
  /<case>/                one group per case: clip_init (log_scale = log(1 / 0.07), CLIP's
                          initial temperature), small_scale (log_scale = 0.25)
    image_emb        [B, D]   B = 8, D = 16, not normalised
    text_emb         [B, D]
    log_scale        [1]
    loss             [1]
    grad_image_emb   [B, D]   d loss / d image_emb
    grad_text_emb    [B, D]
    grad_log_scale   [1]
"""

import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from fixture_h5 import write_fixture  # noqa: E402
B, D = 8, 16

# (name, log_scale, seed)
CASES = [
    ("clip_init", math.log(1 / 0.07), 20240601),
    ("small_scale", 0.25, 7),
]


def clip_loss(image_emb, text_emb, log_scale):
    """open_clip's ClipLoss.forward (world size 1) on F.normalize'd features."""
    image_features = F.normalize(image_emb, dim=-1)
    text_features = F.normalize(text_emb, dim=-1)
    logit_scale = log_scale.exp()
    logits_per_image = logit_scale * image_features @ text_features.T  # [B, B]
    logits_per_text = logit_scale * text_features @ image_features.T  # [B, B]
    labels = torch.arange(logits_per_image.shape[0])
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


def textbook_loss(image_emb, text_emb, log_scale):
    """The same loss written out (row norms, log-softmax over rows and over columns), as a check."""
    i = image_emb / image_emb.pow(2).sum(-1, keepdim=True).sqrt()
    t = text_emb / text_emb.pow(2).sum(-1, keepdim=True).sqrt()
    s = log_scale.exp() * (i @ t.T)  # [B, B]
    diag = torch.arange(s.shape[0])
    rows = -(s.log_softmax(dim=1)[diag, diag]).mean()
    cols = -(s.log_softmax(dim=0)[diag, diag]).mean()
    return (rows + cols) / 2


def make_case(f, name, log_scale_value, seed):
    gen = torch.Generator().manual_seed(seed)

    def embeddings():
        scale = 0.2 + 4.8 * torch.rand(B, 1, generator=gen, dtype=torch.float64)  # [B, 1]
        return (torch.randn(B, D, generator=gen, dtype=torch.float64) * scale).requires_grad_()  # [B, D]

    image_emb, text_emb = embeddings(), embeddings()
    log_scale = torch.tensor([log_scale_value], dtype=torch.float64, requires_grad=True)  # [1]
    loss = clip_loss(image_emb, text_emb, log_scale.squeeze(0))
    loss.backward()
    check = textbook_loss(image_emb.detach(), text_emb.detach(), log_scale.detach().squeeze(0))
    assert abs(check.item() - loss.item()) < 1e-13 * abs(loss.item()), "ClipLoss differs from the textbook form"

    g = f.create_group(name)
    g["image_emb"] = image_emb.detach().numpy()
    g["text_emb"] = text_emb.detach().numpy()
    g["log_scale"] = log_scale.detach().numpy()
    g["loss"] = np.array([loss.item()], dtype=np.float64)
    g["grad_image_emb"] = image_emb.grad.numpy()
    g["grad_text_emb"] = text_emb.grad.numpy()
    g["grad_log_scale"] = log_scale.grad.numpy()


def main():
    write_fixture(__doc__, REPO / "tests" / "data" / "mm" / "clip_loss.h5", "scripts/mm/make_clip_loss_fixture.py", CASES, make_case)


if __name__ == "__main__":
    main()
