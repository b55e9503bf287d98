"""Puzzle-CAM (Jo & Yu, ICIP 2021): the training image is split into n x n tiles, each tile's features are
computed alone and stitched back, and the CAMs of the whole image A^s and of the stitched tiles A^re are pulled
together: L = L_cls(full) + L_p-cls(stitched) + alpha * L_re, with L_re = ||A^s - A^re||_1 over the present
classes and alpha ramped linearly to its maximum over the first part of training. No new parameters;
CAMs are read at test time as plain CAMs. Selected with ``classifier.method: puzzle_cam``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def tile(images: torch.Tensor, n: int = 2) -> torch.Tensor:
    """Split (B, C, H, W) into its n x n tiles, (B n^2, C, H/n, W/n), tiles of an image row by row; H, W divisible by n."""
    b, c, h, w = images.shape
    if h % n or w % n:
        raise ValueError(f"a {h} x {w} image does not split into {n} x {n} equal tiles")
    tiles = images.reshape(b, c, n, h // n, n, w // n).permute(0, 2, 4, 1, 3, 5)
    return tiles.reshape(b * n * n, c, h // n, w // n)


def stitch(tiles: torch.Tensor, n: int = 2) -> torch.Tensor:
    """The inverse of ``tile``: (B n^2, C, h, w) -> (B, C, n h, n w)."""
    bn, c, h, w = tiles.shape
    b = bn // (n * n)
    return tiles.reshape(b, n, n, c, h, w).permute(0, 3, 1, 4, 2, 5).reshape(b, c, n * h, n * w)


def reconstruction_loss(cam_full: torch.Tensor, cam_stitched: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """L_re = mean over images, classes and pixels of |A^s - A^re| * y_c (the present classes y_c = 1 only)."""
    return ((cam_full - cam_stitched).abs() * present[:, :, None, None]).mean()


def alpha_at(progress: float, alpha: float, ramp: float) -> float:
    """alpha_t = alpha * min(1, progress / ramp): the weight of L_re after ``progress`` (0-1) of training."""
    return alpha * min(1.0, progress / ramp) if ramp > 0 else alpha


def check_crop(crop_size: int, n: int, stride: int) -> None:
    """ValueError unless a crop splits into n x n tiles whose stride-``stride`` features stitch back exactly."""
    if crop_size % (n * stride):
        raise ValueError(f"Puzzle-CAM splits each crop into {n} x {n} tiles whose features must stitch back exactly; "
                         f"use a multiple of {n * stride} (tiles x backbone stride), not {crop_size}")


def training_loss(settings: dict):
    """L = L_cls(full) + L_p-cls(stitched tiles) + alpha_t * L_re, as a loss function for training.fit (with its terms)."""
    n = settings["tiles"]

    def loss_fn(net, batch, progress=0.0):
        images, target = batch["image"], batch["target"]
        cam_full = net.cam(images)
        cam_stitched = stitch(net.cam(tile(images, n)), n)
        cls = F.multilabel_soft_margin_loss(net.cam_scores(cam_full), target)
        p_cls = F.multilabel_soft_margin_loss(net.cam_scores(cam_stitched), target)
        alpha, re = alpha_at(progress, settings["alpha"], settings["ramp"]), reconstruction_loss(cam_full, cam_stitched, target)
        return cls + p_cls + alpha * re, {"cls": cls.item(), "p_cls": p_cls.item(), "re": re.item(), "alpha": alpha}

    return loss_fn
