"""AffinityNet (Ahn & Kwak, CVPR 2018): affinity labels from CAMs, pair affinities W_ij = exp(-||f_i - f_j||_1 / C)
(mean absolute difference), and the loss L = L+fg/4 + L+bg/4 + L-/2 over pairs within ``radius`` (gamma).

Label maps are ``(H, W)`` integers with NEUTRAL (255) for pixels that give no pair.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .cam import with_background

NEUTRAL = 255


def affinity_labels(cam: np.ndarray, classes, alpha_low: float, alpha_high: float, crf=None) -> np.ndarray:
    """fg class where argmax[(1-max M)^alpha_low; M] is a class, bg where argmax[(1-max M)^alpha_high; M] is bg (bg wins), else 255.

    ``crf(probabilities) -> probabilities`` refines each (K+1, H, W) map before the argmax
    (dense CRF in the pipeline; ``None`` skips it).
    """
    lut = np.asarray([0, *classes], dtype=np.uint8)
    low = with_background(cam, alpha_low)
    high = with_background(cam, alpha_high)
    if crf is not None:
        low, high = crf(low), crf(high)
    fg = lut[low.argmax(axis=0)]
    bg = high.argmax(axis=0) == 0
    out = np.full(cam.shape[1:], NEUTRAL, dtype=np.uint8)
    out[fg > 0] = fg[fg > 0]
    out[bg] = 0  # as psa: the high-alpha background overrides a low-alpha class
    return out


def pair_offsets(radius: int) -> list[tuple[int, int]]:
    """Half-plane offsets (dy, dx) with 0 < dy^2 + dx^2 < radius^2: (0, 1..r-1) and dy = 1..r-1, |dx| < r."""
    offsets = [(0, dx) for dx in range(1, radius)]
    for dy in range(1, radius):
        for dx in range(-radius + 1, radius):
            if dy * dy + dx * dx < radius * radius:
                offsets.append((dy, dx))
    return offsets


def _shifted(x: torch.Tensor, dy: int, dx: int):
    """Return (a, b) views of x[..., H, W] with b[i] = x[i + (dy, dx)] over the valid overlap."""
    h, w = x.shape[-2:]
    y0, y1 = 0, h - dy
    x0, x1 = max(0, -dx), min(w, w - dx)
    a = x[..., y0:y1, x0:x1]
    b = x[..., y0 + dy:y1 + dy, x0 + dx:x1 + dx]
    return a, b


def pair_labels(labels: torch.Tensor, offsets):
    """Per offset, masks (pos_fg, pos_bg, neg) over valid pairs: same fg class, both bg, different classes; 255 ignored.

    labels: (B, H, W) integer tensor. Each returned mask is flattened over (B, pairs) and
    concatenated over offsets, in the same order as ``pair_affinities``.
    """
    pos_fg, pos_bg, neg = [], [], []
    for dy, dx in offsets:
        a, b = _shifted(labels, dy, dx)
        valid = (a != NEUTRAL) & (b != NEUTRAL)
        same = (a == b) & valid
        pos_fg.append((same & (a > 0)).flatten())
        pos_bg.append((same & (a == 0)).flatten())
        neg.append((valid & (a != b)).flatten())
    return torch.cat(pos_fg), torch.cat(pos_bg), torch.cat(neg)


def pair_affinities(features: torch.Tensor, offsets) -> torch.Tensor:
    """W_ij = exp(-mean_ch |f_i - f_j|) for every pair (i, i + offset); features (B, C, H, W)."""
    out = []
    for dy, dx in offsets:
        a, b = _shifted(features, dy, dx)
        out.append(torch.exp(-(a - b).abs().mean(dim=1)).flatten())
    return torch.cat(out)


def affinity_loss_terms(affinity: torch.Tensor, pos_fg, pos_bg, neg, eps: float = 1e-5) -> dict:
    """{L+fg, L+bg, L-} with L+ = mean(-log W) over its pairs and L- = mean(-log(1 - W))."""

    def mean_over(values, mask):
        return values[mask].sum() / mask.sum().clamp(min=1)

    pos_term = -torch.log(affinity + eps)
    neg_term = -torch.log(1.0 - affinity + eps)
    return {"pos_fg": mean_over(pos_term, pos_fg), "pos_bg": mean_over(pos_term, pos_bg), "neg": mean_over(neg_term, neg)}


def affinity_loss(affinity: torch.Tensor, pos_fg, pos_bg, neg, eps: float = 1e-5) -> torch.Tensor:
    """L = L+fg/4 + L+bg/4 + L-/2 with L+ = mean(-log W) over its pairs and L- = mean(-log(1 - W))."""
    terms = affinity_loss_terms(affinity, pos_fg, pos_bg, neg, eps)
    return terms["pos_fg"] / 4 + terms["pos_bg"] / 4 + terms["neg"] / 2


def full_offsets(radius: int) -> list[tuple[int, int]]:
    """Offsets of the whole radius neighbourhood: (0, 0), every half-plane offset and its negation."""
    half = pair_offsets(radius)
    return [(0, 0)] + half + [(-dy, -dx) for dy, dx in half]


def neighbour_affinity(features: torch.Tensor, radius: int) -> torch.Tensor:
    """W over the full neighbourhood: (N, H, W) with W[k, i] = exp(-mean|f_i - f_{i+o_k}|), 0 outside the image."""
    c, h, w = features.shape
    offsets = full_offsets(radius)
    pad = radius
    padded = F.pad(features, (pad, pad, pad, pad))
    inside = F.pad(torch.ones(1, h, w, dtype=features.dtype, device=features.device), (pad, pad, pad, pad))
    out = torch.empty(len(offsets), h, w, dtype=features.dtype, device=features.device)
    for k, (dy, dx) in enumerate(offsets):
        other = padded[:, pad + dy:pad + dy + h, pad + dx:pad + dx + w]
        mask = inside[0, pad + dy:pad + dy + h, pad + dx:pad + dx + w]
        out[k] = torch.exp(-(features - other).abs().mean(dim=0)) * mask
    return out


def feature_labels(labels: torch.Tensor, size) -> torch.Tensor:
    """Label of each feature cell: the pixel at the cell's centre, floor((i + 1/2) H / h), of (B, H, W) labels."""
    height, width = labels.shape[-2:]
    rows = ((torch.arange(size[0], device=labels.device) + 0.5) * height / size[0]).long().clamp(max=height - 1)
    cols = ((torch.arange(size[1], device=labels.device) + 0.5) * width / size[1]).long().clamp(max=width - 1)
    return labels[:, rows][:, :, cols].long()


def affinity_loss_fn(radius: int):
    """loss_fn(net, batch, progress) -> (the AffinityNet loss of the batch's pairs within ``radius``, its three terms),
    for training.fit."""
    offsets = pair_offsets(radius)

    def loss_fn(net, batch, progress=0.0):
        features = net(batch["image"])
        labels = feature_labels(batch["labels"], features.shape[-2:])
        terms = affinity_loss_terms(pair_affinities(features, offsets), *pair_labels(labels, offsets))
        loss = terms["pos_fg"] / 4 + terms["pos_bg"] / 4 + terms["neg"] / 2  # affinity_loss, with its terms kept
        return loss, {k: v.item() for k, v in terms.items()}

    return loss_fn
