"""Inter-pixel relations (IRN; Ahn, Cho & Kwak, CVPR 2019, jiwoon-ahn/irn): class boundaries B learnt from the same
CAM-derived pair labels as AffinityNet, pair affinities a_ij = 1 - max_{k on the segment ij} B(x_k), and the walk on
them with irn's ``beta``, ``exp_times`` and ``sem_seg_bg_thres``. The displacement field (instances) is not here.

Selected by ``affinity.method: irn``: train_affinity trains ``nets.boundary.BoundaryNet`` with ``boundary_loss_fn``
and random_walk walks with ``refine``. Pairs are those of ``affinitynet.pair_offsets(radius)`` (irn's
``PathIndex.get_search_paths_dst`` search directions, the same set). The numpy functions are the reference forms;
the torch ones are what the stages run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..data.transforms import pad_to_stride
from .affinitynet import feature_labels, full_offsets, pair_labels, pair_offsets
from .random_walk import propagate, scores_at_stride

TRAIN_RADIUS = 10  # irn step/train_irn.py: PathIndex(radius=10) on the stride-4 grid
BOUNDARY_STRIDE = 4  # irn's boundary map is at stride 4

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


def boundary_loss_terms(affinity: torch.Tensor, fg_pos: torch.Tensor, bg_pos: torch.Tensor, neg: torch.Tensor) -> dict:
    """{L+fg, L+bg, L-}: each the mean of -log(a + eps) (positive pairs) or -log(1 + eps - a) (negative pairs) over
    its pairs, sum(mask * loss) / (sum(mask) + eps) as irn."""
    fg_pos, bg_pos, neg = fg_pos.to(affinity.dtype), bg_pos.to(affinity.dtype), neg.to(affinity.dtype)
    pos_loss = -torch.log(affinity + EPS)
    neg_loss = -torch.log(1.0 + EPS - affinity)
    return {"pos_fg": torch.sum(fg_pos * pos_loss) / (torch.sum(fg_pos) + EPS),
            "pos_bg": torch.sum(bg_pos * pos_loss) / (torch.sum(bg_pos) + EPS),
            "neg": torch.sum(neg * neg_loss) / (torch.sum(neg) + EPS)}


def boundary_loss(affinity: torch.Tensor, fg_pos: torch.Tensor, bg_pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """L = (L+ + L-) / 2 with L+ = L+bg / 2 + L+fg / 2: each term the mean of -log(a + eps) (positive pairs) or
    -log(1 + eps - a) (negative pairs) over its pairs."""
    return combined(boundary_loss_terms(affinity, fg_pos, bg_pos, neg))


def combined(terms: dict) -> torch.Tensor:
    """L = (L+bg / 2 + L+fg / 2 + L-) / 2 from ``boundary_loss_terms``."""
    return (terms["pos_bg"] / 2 + terms["pos_fg"] / 2 + terms["neg"]) / 2


def _segment_max(cell, dy: int, dx: int) -> torch.Tensor:
    """max over the cells of ``segment_cells(dy, dx)`` of ``cell(cy, cx)``, a view of B shifted by that cell."""
    worst = None
    for cy, cx in segment_cells(dy, dx):
        worst = cell(cy, cx) if worst is None else torch.maximum(worst, cell(cy, cx))
    return worst


def path_affinities(boundary: torch.Tensor, offsets) -> torch.Tensor:
    """a_ij = 1 - max_{k on the segment ij} B(x_k) for every pair (i, i + offset) of boundary (B, H, W) inside the image,
    flattened and concatenated over offsets in the order of ``affinitynet.pair_labels``."""
    height, width = boundary.shape[-2:]
    out = []
    for dy, dx in offsets:
        y0, y1, x0, x1 = 0, height - dy, max(0, -dx), min(width, width - dx)  # the pairs' sources (pair_labels)
        worst = _segment_max(lambda cy, cx: boundary[..., y0 + cy:y1 + cy, x0 + cx:x1 + cx], dy, dx)
        out.append((1.0 - worst).flatten())
    return torch.cat(out)


def boundary_loss_fn(radius: int = TRAIN_RADIUS):
    """loss_fn(net, batch, progress) -> (IRN's boundary loss of the batch's pairs within ``radius`` on the stride-4
    grid, its three terms), for training.fit; B = sigmoid(logits) as irn's AffinityDisplacementLoss.forward."""
    offsets = pair_offsets(radius)

    def loss_fn(net, batch, progress=0.0):
        boundary = torch.sigmoid(net(batch["image"])[:, 0])
        labels = feature_labels(batch["labels"], boundary.shape[-2:])
        terms = boundary_loss_terms(path_affinities(boundary, offsets), *pair_labels(labels, offsets))
        return combined(terms), {k: v.item() for k, v in terms.items()}

    return loss_fn


def neighbour_boundary_affinity(boundary: torch.Tensor, radius: int) -> torch.Tensor:
    """a over the neighbourhood of ``affinitynet.full_offsets``: (N, H, W) with a[k, i] = 1 - max B on the segment from
    i to i + o_k, 1 for o_k = (0, 0) (irn's identity), 0 where i + o_k leaves the image (B padded with 1)."""
    height, width = boundary.shape
    padded = F.pad(boundary, (radius, radius, radius, radius), value=1.0)
    offsets = full_offsets(radius)
    out = torch.empty(len(offsets), height, width, dtype=boundary.dtype, device=boundary.device)
    for k, (dy, dx) in enumerate(offsets):
        if (dy, dx) == (0, 0):
            out[k] = 1.0
            continue
        out[k] = 1.0 - _segment_max(lambda cy, cx: padded[radius + cy:radius + cy + height,
                                                          radius + cx:radius + cx + width], dy, dx)
    return out


@torch.no_grad()
def boundary_map(model, image: torch.Tensor, stride: int = BOUNDARY_STRIDE):
    """B = sigmoid(e / 2 + flip(e_flipped) / 2) on the stride-4 grid (irn's EdgeDisplacement.forward), max-pooled to
    ``stride`` when coarser. The image (3, H, W) is padded to a multiple of lcm(stride, 4, backbone stride) and the
    map cropped to the cells that hold image pixels, as irn does. Returns (B (ceil(H / stride), ceil(W / stride)),
    padded size (H', W'), image size (H, W))."""
    padded, size = pad_to_stride(image[None], math.lcm(stride, BOUNDARY_STRIDE, model.backbone.stride))
    logits = model(torch.cat([padded, padded.flip(-1)]))[:, 0]
    boundary = torch.sigmoid(logits[0] / 2 + logits[1].flip(-1) / 2)
    if stride != BOUNDARY_STRIDE:
        factor = stride // BOUNDARY_STRIDE
        boundary = F.max_pool2d(boundary[None, None], factor, factor)[0, 0]
    return boundary[:-(-size[0] // stride), :-(-size[1] // stride)], padded.shape[-2:], size


@torch.no_grad()
def refine(model, image: torch.Tensor, cams: np.ndarray, classes, beta: float, t: int, radius: int, stride: int,
           bg_threshold: float) -> np.ndarray:
    """IRN's pseudo-label (irn step/make_sem_seg_labels.py): rw = T^t vec(M * (1 - B)) with T = D^-1 A^beta on the
    boundary affinities, upsampled, divided by its maximum over every class and pixel, and
    label = argmax([bg_threshold; rw]); class ids (H, W). t = 2^exp_times."""
    boundary, padded_size, crop = boundary_map(model, image, stride)
    return walk_on_boundary(boundary, cams, classes, beta, t, radius, stride, padded_size, crop, bg_threshold)


def walk_on_boundary(boundary: torch.Tensor, cams: np.ndarray, classes, beta: float, t: int, radius: int, stride: int,
                     padded_size, crop, bg_threshold: float) -> np.ndarray:
    """``refine`` from the boundary map B of ``boundary_map``: argmax([bg_threshold; rw / max rw]) with
    rw = T^t (M * (1 - B)), T = D^-1 A^beta on a = 1 - max B on each segment; class ids (H, W)."""
    if len(classes) == 0:
        return np.zeros(tuple(crop), dtype=np.uint8)
    height, width = boundary.shape
    small = scores_at_stride(cams, None, stride, padded_size)[:, :height, :width].to(boundary) * (1.0 - boundary)
    walked = propagate(small, neighbour_boundary_affinity(boundary, radius), beta, t, radius)
    up = F.interpolate(walked[None], scale_factor=stride, mode="bilinear", align_corners=False)[0]
    up = up[:, :crop[0], :crop[1]]
    up = up / up.max().clamp(min=1e-12)
    scores = torch.cat([torch.full_like(up[:1], bg_threshold), up])
    lut = np.asarray([0, *classes], dtype=np.uint8)
    return lut[scores.argmax(dim=0).cpu().numpy()]


def boundary_precision_recall(predicted: np.ndarray, mask: np.ndarray, ignore: int = 255, tolerance: int = 2) -> dict:
    """Counts for precision = |predicted boundary pixels within ``tolerance`` px (Chebyshev) of a mask boundary| /
    |predicted| and recall = |mask boundary pixels within ``tolerance`` px of a predicted one| / |mask boundary|; a
    mask boundary pixel is a labelled pixel with a 4-neighbour of another value: another class, or the void band
    (``ignore``) that VOC-style masks draw between objects. Void pixels themselves never count."""
    mask = np.asarray(mask)
    edge = np.zeros(mask.shape, bool)
    for a, b, sa, sb in ((mask[:, :-1], mask[:, 1:], np.s_[:, :-1], np.s_[:, 1:]),
                         (mask[:-1], mask[1:], np.s_[:-1], np.s_[1:])):
        cut = a != b
        edge[sa] |= cut
        edge[sb] |= cut
    labelled = mask != ignore
    edge &= labelled
    predicted = np.asarray(predicted, bool) & labelled

    def near(x):
        return F.max_pool2d(torch.from_numpy(x.astype(np.float32))[None, None], 2 * tolerance + 1, 1,
                            tolerance)[0, 0].numpy() > 0

    return {"predicted": int(predicted.sum()), "predicted_near": int((predicted & near(edge)).sum()),
            "true": int(edge.sum()), "true_near": int((edge & near(predicted)).sum())}


def alpha_for_threshold(threshold: float) -> float:
    """alpha = ln m / ln(1 - m): the power whose background (1 - max M)^alpha beats the classes exactly where
    max M < m, so psa's affinity labels with alpha_low / alpha_high are irn's confident fg / bg thresholds."""
    return math.log(threshold) / math.log(1.0 - threshold)


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
