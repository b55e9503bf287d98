"""Inter-pixel relations (IRN; Ahn, Cho & Kwak, CVPR 2019, jiwoon-ahn/irn): class boundaries B learnt from the same
CAM-derived pair labels as AffinityNet, pair affinities a_ij = 1 - max_{k on the segment ij} B(x_k), and the walk on
them with irn's ``beta``, ``exp_times`` and ``sem_seg_bg_thres``. The displacement field (instances) is not here.

The building blocks only, as pure functions on arrays; no stage selects IRN yet. Pairs are those of
``affinitynet.pair_offsets(radius)`` (irn's ``PathIndex.get_search_paths_dst`` search directions, the same set).
"""

from __future__ import annotations

import numpy as np
import torch

from .affinitynet import pair_offsets

EPS = 1e-5  # irn's constant inside the logarithms (net/resnet50_irn.py, AffinityDisplacementLoss.forward)


def segment_cells(dy: int, dx: int) -> list[tuple[int, int]]:
    """Cells (y, x) of the box spanned by (0, 0) and (dy, dx) whose squared distance to the segment's line,
    (dy x - dx y)^2 / (dy^2 + dx^2), is below 1: the pixels a pair's path crosses, both ends included."""
    length_sq = dy * dy + dx * dx
    return [(y, x) for y in range(min(0, dy), max(0, dy) + 1) for x in range(min(0, dx), max(0, dx) + 1)
            if (dy * x - dx * y) ** 2 / length_sq < 1]


def boundary_affinities(boundary: np.ndarray, radius: int) -> np.ndarray:
    """a[o, y, x] = 1 - max_{k on the segment} B(k) for the pair (y, x) -> (y, x) + offset o; 0 where the pair or its
    path leaves the image (irn pads the boundary map with 1 there)."""
    height, width = boundary.shape
    padded = np.pad(np.asarray(boundary, dtype=np.float64), radius, constant_values=1.0)
    out = np.empty((len(pair_offsets(radius)), height, width))
    for o, (dy, dx) in enumerate(pair_offsets(radius)):
        worst = np.zeros((height, width))
        for y, x in segment_cells(dy, dx):
            worst = np.maximum(worst, padded[radius + y:radius + y + height, radius + x:radius + x + width])
        out[o] = 1.0 - worst
    return out


def boundary_loss(affinity: torch.Tensor, fg_pos: torch.Tensor, bg_pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """L = (L+ + L-) / 2 with L+ = L+bg / 2 + L+fg / 2: each term the mean of -log(a + eps) (positive pairs) or
    -log(1 + eps - a) (negative pairs) over its pairs."""
    pos_loss = -torch.log(affinity + EPS)
    neg_loss = -torch.log(1.0 + EPS - affinity)
    bg = torch.sum(bg_pos * pos_loss) / (torch.sum(bg_pos) + EPS)
    fg = torch.sum(fg_pos * pos_loss) / (torch.sum(fg_pos) + EPS)
    negative = torch.sum(neg * neg_loss) / (torch.sum(neg) + EPS)
    return (bg / 2 + fg / 2 + negative) / 2


def transition_matrix(affinity: np.ndarray, beta: float, exp_times: int) -> np.ndarray:
    """T = (A^beta / column sums)^(2^exp_times): the walk of 2^exp_times steps on the dense symmetric affinity matrix
    A (ones on its diagonal)."""
    scaled = np.power(affinity, beta)
    trans = scaled / scaled.sum(axis=0, keepdims=True)
    for _ in range(exp_times):
        trans = trans @ trans
    return trans


def walk_labels(cams: np.ndarray, boundary: np.ndarray, trans: np.ndarray, bg_threshold: float) -> np.ndarray:
    """Labels 0 (background) or 1 + c: argmax over [bg_threshold; rw / max rw] with rw_c = (M_c * (1 - B)) T, the
    maximum taken over every class and pixel (irn's sem_seg labels before upsampling)."""
    k, height, width = cams.shape
    walked = (cams * (1.0 - boundary)).reshape(k, -1) @ trans
    walked = walked / walked.max()
    scores = np.concatenate([np.full((1, height * width), bg_threshold), walked], axis=0)
    return scores.argmax(axis=0).reshape(height, width)
