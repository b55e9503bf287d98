"""The random walk of AffinityNet (Ahn & Kwak, CVPR 2018): T = D^-1 W^beta over the pairs within ``radius``,
vec(M*) = T^t vec(M), on a sparse transition matrix (never a dense HW x HW one), and the pseudo-label read
from the walked maps in one of two ways (``BACKGROUNDS``):

- ``power`` (psa): walk [M_bg; M] with M_bg = (1 - max_c M_c)^alpha, label = argmax;
- ``threshold`` (irn's reading): walk the object classes M only, rescale each walked map by its maximum,
  label = argmax([bg_threshold; M*_c / max M*_c]); the background is decided after the walk, so no mass
  of a large background can flow over a small object and erase its class.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..data.transforms import pad_to_stride
from .affinitynet import full_offsets, neighbour_affinity
from .cam import with_background

WALK_STRIDES = (4, 8)  # random_walk.stride: 8 = psa's walk on the feature map, 4 = irn's finer walk
BACKGROUNDS = ("power", "threshold")  # random_walk.background


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


def check_walk_stride(stride) -> int:
    """The walk's stride if it is one of WALK_STRIDES, else ValueError naming the allowed values."""
    if stride not in WALK_STRIDES:
        raise ValueError(f"random_walk stride must be one of {WALK_STRIDES}, not {stride!r}")
    return stride


def scores_at_stride(cams: np.ndarray, alpha: float | None, stride: int, size) -> torch.Tensor:
    """[M_bg; M] with M_bg = (1 - max_c M_c)^alpha (M alone when alpha is None), zero-padded to ``size``, average-pooled by stride."""
    cams = cams.astype(np.float32)
    scores = torch.from_numpy(cams if alpha is None else with_background(cams, alpha))
    h, w = scores.shape[-2:]
    scores = F.pad(scores, (0, size[1] - w, 0, size[0] - h))
    return F.avg_pool2d(scores[None], stride, stride)[0]


def threshold_labels(walked: torch.Tensor, classes, bg_threshold: float) -> np.ndarray:
    """label = argmax([bg_threshold; M*_c / max M*_c]) as class ids; walked is (K, H, W) of the K ``classes``."""
    lut = np.asarray([0, *classes], dtype=np.uint8)
    peak = walked.flatten(1).max(dim=1).values.clamp(min=1e-12).view(-1, 1, 1)
    scores = torch.cat([torch.full_like(walked[:1], bg_threshold), walked / peak])
    return lut[scores.argmax(dim=0).cpu().numpy()]


def walk_labels(small: torch.Tensor, affinity: torch.Tensor, classes, beta: float, t: int, radius: int, size,
                crop, bg_threshold: float | None = None) -> np.ndarray:
    """Class ids of the walked maps T^t M (T = D^-1 W^beta), upsampled to ``size`` and cropped to ``crop``.

    bg_threshold None (``power``): ``small`` is [M_bg; M] and the label is the argmax; a number
    (``threshold``): ``small`` is M alone and the label is ``threshold_labels`` of the walked maps.
    """
    walked = propagate(small.to(affinity), affinity, beta, t, radius)
    up = F.interpolate(walked[None], size=tuple(size), mode="bilinear", align_corners=False)[0, :, :crop[0], :crop[1]]
    if bg_threshold is not None:
        return threshold_labels(up, classes, bg_threshold)
    lut = np.asarray([0, *classes], dtype=np.uint8)
    return lut[up.argmax(dim=0).cpu().numpy()]


def check_background(background) -> str:
    """The walk's background mode if it is one of BACKGROUNDS, else ValueError naming the allowed values."""
    if background not in BACKGROUNDS:
        raise ValueError(f"random_walk background must be one of {BACKGROUNDS}, not {background!r}")
    return background


def features_at_stride(model, image: torch.Tensor, stride: int):
    """AffinityNet features f on the image's stride-``stride`` grid, bilinearly upsampled when the backbone is coarser.

    The image (3, H, W) is padded to a multiple of lcm(stride, backbone stride). Returns
    (features (C, H'/stride, W'/stride), padded size (H', W'), image size (H, W)).
    """
    padded, size = pad_to_stride(image[None], math.lcm(stride, model.backbone.stride))
    grid = (padded.shape[-2] // stride, padded.shape[-1] // stride)
    features = model(padded)
    if features.shape[-2:] != grid:
        features = F.interpolate(features, size=grid, mode="bilinear", align_corners=False)
    return features[0], padded.shape[-2:], size


@torch.no_grad()
def refine(model, image: torch.Tensor, cams: np.ndarray, classes, alpha: float, beta: float, t: int,
           radius: int, stride: int | None = None, background: str = "power", bg_threshold: float = 0.25) -> np.ndarray:
    """Pseudo-label of the walk T^t M on the stride-``stride`` grid, T = D^-1 W^beta, read as ``background`` says; class ids (H, W).

    ``stride`` (4 or 8; None = the backbone's stride) is the grid the walk runs on: the features are
    upsampled to it, the maps are average-pooled to it and ``radius`` counts its pixels. ``background``
    ``power`` walks [(1 - max M)^alpha; M] (psa); ``threshold`` walks M and thresholds the rescaled result
    at ``bg_threshold`` (irn); alpha is then unused.
    """
    stride = stride or model.backbone.stride
    check_background(background)
    by_threshold = background == "threshold"
    features, padded_size, crop = features_at_stride(model, image, stride)
    if len(classes) == 0 and by_threshold:
        return np.zeros(tuple(crop), dtype=np.uint8)
    small = scores_at_stride(cams, None if by_threshold else alpha, stride, padded_size)
    return walk_labels(small, neighbour_affinity(features, radius), classes, beta, t, radius, padded_size, crop,
                       bg_threshold if by_threshold else None)
