"""The maths of AffinityNet (Ahn & Kwak, CVPR 2018) as small pure functions.

Names follow the paper: ``alpha`` (background power), ``beta`` (affinity power),
``t`` (random-walk steps), ``radius`` (gamma, the pair radius on the feature map).
Array conventions: CAMs are ``(K, H, W)``; label maps are ``(H, W)`` integers with
``ignore`` (255) for neutral pixels.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

NEUTRAL = 255


# --------------------------------------------------------------------------- CAMs
def normalize_cam(cam: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """M_c <- ReLU(M_c) / (max_xy ReLU(M_c) + eps), per class; cam is (K, H, W)."""
    cam = F.relu(cam)
    peak = cam.flatten(1).max(dim=1).values.view(-1, 1, 1)
    return cam / (peak + eps)


def background(cams: np.ndarray | torch.Tensor, alpha: float):
    """M_bg = (1 - max_c M_c)^alpha; cams is (K, H, W) in [0, 1], K may be 0."""
    if isinstance(cams, torch.Tensor):
        if cams.shape[0] == 0:
            return torch.ones(cams.shape[1:], dtype=cams.dtype)
        return (1.0 - cams.max(dim=0).values).clamp(min=0) ** alpha
    if cams.shape[0] == 0:
        return np.ones(cams.shape[1:], dtype=np.float32)
    return np.clip(1.0 - cams.max(axis=0), 0.0, None) ** alpha


def with_background(cams: np.ndarray, alpha: float) -> np.ndarray:
    """Stack [M_bg; M_1..M_K] with M_bg = (1 - max_c M_c)^alpha, shape (K+1, H, W)."""
    return np.concatenate([background(cams, alpha)[None], cams], axis=0).astype(np.float32)


def cam_labels(cams: np.ndarray, classes, threshold: float) -> np.ndarray:
    """label = argmax([threshold, M_1..M_K]) mapped to class ids (0 = background)."""
    lut = np.asarray([0, *classes], dtype=np.uint8)
    scores = np.concatenate([np.full((1, *cams.shape[1:]), threshold, np.float32), cams.astype(np.float32)])
    return lut[scores.argmax(axis=0)]


# ------------------------------------------------------------------ affinity labels
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


# --------------------------------------------------------------------------- pairs
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


def affinity_loss(affinity: torch.Tensor, pos_fg, pos_bg, neg, eps: float = 1e-5) -> torch.Tensor:
    """L = L+fg/4 + L+bg/4 + L-/2 with L+ = mean(-log W) over its pairs and L- = mean(-log(1 - W))."""

    def mean_over(values, mask):
        return values[mask].sum() / mask.sum().clamp(min=1)

    pos_term = -torch.log(affinity + eps)
    neg_term = -torch.log(1.0 - affinity + eps)
    return mean_over(pos_term, pos_fg) / 4 + mean_over(pos_term, pos_bg) / 4 + mean_over(neg_term, neg) / 2


# ----------------------------------------------------------------------- random walk
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


def transition(affinity: torch.Tensor, beta: float) -> torch.Tensor:
    """T = D^-1 W^beta over the neighbourhood layout of ``neighbour_affinity``; each pixel's row sums to 1.

    affinity: (N, H, W) or batched (B, N, H, W); the sum runs over the N neighbours.
    """
    powered = affinity ** beta
    return powered.div_(powered.sum(dim=-3, keepdim=True).clamp(min=1e-12))  # in place: one N x H x W buffer


def sparse_transition(affinity: torch.Tensor, beta: float, radius: int) -> torch.Tensor:
    """T = D^-1 W^beta as a sparse CSR matrix with N entries per image pixel; block-diagonal over a batch.

    affinity: (N, H, W) or (B, N, H, W) from ``neighbour_affinity``. Rows and columns index the pixels
    of each image's grid padded by q = radius - 1 (the largest offset) on every side, image after
    image: index b Hq Wq + (y + q) Wq + (x + q) is pixel (y, x) of image b, with Hq = H + 2q and
    Wq = W + 2q. Every image pixel's row holds its N neighbours, all on the padded grid, columns
    ascending (entries for neighbours outside the image are stored as 0, as W has them); the rows
    of padding pixels are empty. No masking and no HW x HW intermediate: the matrix takes the
    N HW values and N HW column indices, built directly in CSR form.
    """
    if affinity.dim() == 3:
        affinity = affinity[None]
    b, n, h, w = affinity.shape
    offsets = full_offsets(radius)
    if n != len(offsets):
        raise ValueError(f"affinity with {n} neighbours does not fit radius {radius} ({len(offsets)} neighbours)")
    device = affinity.device
    q = radius - 1
    hq, wq = h + 2 * q, w + 2 * q
    size = b * hq * wq
    # 32-bit indices where they fit: what MKL and cuSPARSE use natively (about 10 % faster), half the memory
    index = torch.int32 if max(size, b * h * w * n) < 2**31 else torch.int64
    order = sorted(range(n), key=lambda i: offsets[i])  # lexicographic (dy, dx) = ascending column, as |dx| <= q
    shift = torch.tensor([offsets[i][0] * wq + offsets[i][1] for i in order], dtype=index, device=device)
    values = transition(affinity[:, order], beta).permute(0, 2, 3, 1).contiguous().flatten()
    padded = torch.arange(size, dtype=index, device=device).view(b, hq, wq)[:, q:q + h, q:q + w]
    columns = (padded.unsqueeze(-1) + shift).flatten()  # (B, H, W, N): row-major pixels, then neighbours
    inner = torch.zeros(b, hq, wq, dtype=index, device=device)
    inner[:, q:q + h, q:q + w] = n
    rows = torch.zeros(size + 1, dtype=index, device=device)
    rows[1:] = inner.flatten().cumsum(dim=0, dtype=index)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(rows, columns, values, (size, size), check_invariants=False)


@torch.no_grad()
def propagate(cams: torch.Tensor, affinity: torch.Tensor, beta: float, t: int, radius: int) -> torch.Tensor:
    """vec(M*_c) = T^t vec(M_c) with T = D^-1 W^beta, for every class c, over the radius neighbourhood only.

    cams: (K, H, W) with affinity (N, H, W) from ``neighbour_affinity`` with the same ``radius``, or a
    batch: cams (B, K, H, W) with affinity (B, N, H, W), each image walked with its own T; returns
    the shape of ``cams``. No gradient is recorded.

    T is never built as an HW x HW dense matrix (1 GiB at 128 x 128): it is the sparse CSR matrix of
    ``sparse_transition`` (N entries per pixel; for a batch, block-diagonal with one block per
    image), and the walk is t sparse @ dense products with the pixels of all images as rows and
    the K classes as columns - MKL's sparse kernels on the CPU, cuSPARSE on the GPU. The state
    lives on the padded grid of ``sparse_transition``; its padding stays 0.
    """
    batched = cams.dim() == 4
    if not batched:
        cams, affinity = cams[None], affinity[None]
    b, k, h, w = cams.shape
    if affinity.dim() != 4 or affinity.shape[0] != b or affinity.shape[2:] != (h, w):
        raise ValueError(f"affinity of shape {tuple(affinity.shape)} does not fit cams of shape {tuple(cams.shape)}")
    dtype = torch.promote_types(cams.dtype, affinity.dtype)
    matrix = sparse_transition(affinity.to(dtype), beta, radius)
    q = radius - 1
    grid = cams.new_zeros(b, h + 2 * q, w + 2 * q, k, dtype=dtype)  # (pixels of the padded grids, classes)
    grid[:, q:q + h, q:q + w] = cams.permute(0, 2, 3, 1)
    state, spare = grid.view(-1, k), torch.empty(grid.numel() // k, k, dtype=dtype, device=cams.device)
    for _ in range(t):  # two buffers in turn: no allocation per step
        torch.mm(matrix, state, out=spare)
        state, spare = spare, state
    result = state.view(b, h + 2 * q, w + 2 * q, k)[:, q:q + h, q:q + w].permute(0, 3, 1, 2).contiguous()
    return result if batched else result[0]


def dense_transition(affinity: torch.Tensor, beta: float, radius: int) -> torch.Tensor:
    """The dense HW x HW matrix T = D^-1 W^beta from the neighbourhood affinity (reference for tests and benchmarks)."""
    _, h, w = affinity.shape
    trans = transition(affinity, beta)
    dense = torch.zeros(h * w, h * w, dtype=affinity.dtype, device=affinity.device)
    ys, xs = torch.meshgrid(torch.arange(h, device=affinity.device), torch.arange(w, device=affinity.device),
                            indexing="ij")
    for n, (dy, dx) in enumerate(full_offsets(radius)):
        yy, xx = ys + dy, xs + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        dense[(ys * w + xs)[inside], (yy * w + xx)[inside]] = trans[n][inside]
    return dense


# --------------------------------------------------------------------------- metrics
def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore: int = NEUTRAL) -> np.ndarray:
    """C[g, p] = number of pixels with ground truth g and prediction p, pixels with gt == ignore skipped."""
    keep = gt != ignore
    g = gt[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    p = np.where(p < num_classes, p, 0) if p.size else p
    return np.bincount(g * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU_c = C[c, c] / (sum_g C[g, c] + sum_p C[c, p] - C[c, c]); NaN for a class absent from both."""
    tp = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)


def mean_iou(conf: np.ndarray) -> float:
    """mIoU = nanmean_c IoU_c."""
    return float(np.nanmean(iou_per_class(conf)))
