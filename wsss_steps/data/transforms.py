"""Image transforms shared by training and inference: normalisation, random scale/flip/crop, padding to a stride."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> normalised float (3, H, W)."""
    array = (image.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def multi_hot(classes, num_classes: int) -> torch.Tensor:
    """Vector over foreground classes 1..C-1 with 1 for each present class."""
    vec = torch.zeros(num_classes - 1)
    for c in classes:
        vec[c - 1] = 1.0
    return vec


def random_scale_crop(rng: np.random.Generator, image: np.ndarray, extra: list[np.ndarray], crop: int,
                      scale_range: tuple[float, float], ignore: int = 255, fills=None):
    """Random rescale, horizontal flip and crop (padding with mean colour / ``ignore``) of an image and label maps.

    ``fills`` gives each extra map its own padding value (default ``ignore`` for every map).
    """
    scale = rng.uniform(*scale_range)
    h, w = image.shape[:2]
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
    extra = [np.asarray(Image.fromarray(e).resize((nw, nh), Image.NEAREST)) for e in extra]
    if rng.random() < 0.5:
        image = image[:, ::-1]
        extra = [e[:, ::-1] for e in extra]
    ph, pw = max(crop, nh), max(crop, nw)
    canvas = np.empty((ph, pw, 3), np.uint8)
    canvas[:] = (MEAN * 255).astype(np.uint8)
    canvas[:nh, :nw] = image
    canvases = []
    for e, fill in zip(extra, fills if fills is not None else [ignore] * len(extra)):
        c = np.full((ph, pw), fill, np.uint8)
        c[:nh, :nw] = e
        canvases.append(c)
    y = int(rng.integers(0, ph - crop + 1))
    x = int(rng.integers(0, pw - crop + 1))
    return canvas[y:y + crop, x:x + crop], [c[y:y + crop, x:x + crop] for c in canvases]


def pad_to_stride(x: torch.Tensor, stride: int):
    """Pad (B, 3, H, W) at the bottom/right with zeros (the mean colour after normalisation) to a multiple of stride."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    return F.pad(x, (0, pw, 0, ph)), (h, w)
