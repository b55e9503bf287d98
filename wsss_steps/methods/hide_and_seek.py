"""Hide-and-Seek (Singh & Lee, ICCV 2017): during classifier training, every cell of an S x S grid of the
training image is hidden with probability p, its pixels set to the training set's mean colour (not zero, so
the statistics a filter sees at test time, with nothing hidden, match those of training). S is drawn per image
from a set of sizes, 0 hiding nothing, as the authors' code does (kkanshul/Hide-and-Seek hide_patch.py:15-30:
grid sizes 0, 16, 32, 44, 56 for 224 px crops, hide_prob 0.5). Test-time CAMs are read from whole images,
unchanged. Selected with ``classifier.method: hide_and_seek``.
"""

from __future__ import annotations

import numpy as np


def draw_patch_size(rng: np.random.Generator, patch_sizes) -> int:
    """S drawn uniformly from ``patch_sizes``, one per image (0: nothing hidden)."""
    return int(patch_sizes[rng.integers(len(patch_sizes))])


def hidden_cells(rng: np.random.Generator, shape, patch_size: int, p: float) -> np.ndarray:
    """Mask (H, W) of the pixels hidden: each patch_size x patch_size cell (from the top left) with probability p;
    patch_size 0 hides nothing."""
    h, w = shape
    if patch_size == 0:
        return np.zeros((h, w), dtype=bool)
    rows, cols = -(-h // patch_size), -(-w // patch_size)
    cells = rng.random((rows, cols)) < p
    return np.repeat(np.repeat(cells, patch_size, axis=0), patch_size, axis=1)[:h, :w]


def hide(image: np.ndarray, hidden: np.ndarray, mean) -> np.ndarray:
    """x'_ij = mean colour where hidden_ij, x_ij elsewhere; image (H, W, 3) uint8, mean 3 values in 0-255."""
    out = np.array(image, copy=True)
    out[hidden] = np.round(np.asarray(mean, dtype=np.float64)).astype(image.dtype)
    return out


def mean_colour(images) -> np.ndarray:
    """The mean RGB over every pixel of ``images`` (an iterable of (H, W, 3) arrays), in 0-255."""
    total, count = np.zeros(3, dtype=np.float64), 0
    for image in images:
        total += image.reshape(-1, 3).sum(axis=0, dtype=np.float64)
        count += image.shape[0] * image.shape[1]
    return total / max(count, 1)
