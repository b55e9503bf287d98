"""EPS, explicit pseudo-pixel supervision (Lee et al., CVPR 2021): a classifier with C + 1 maps (background
last) learns from the image-level labels and from a saliency map S. Per pixel, p = softmax over the C + 1
maps; each present class whose map overlaps S by more than tau joins the foreground, the other present
classes and the background map join the background; the estimated saliency
S_hat = lambda * sum_fg p + (1 - lambda) * (1 - sum_bg p) is pulled to S:
L = L_cls(GAP of the C class maps) + MSE(S_hat, S). The localisation map is read as the authors' code reads it
(halbielee/EPS infer.py:124-137): p = softmax over the C + 1 maps, its class channels, so the background map
competes at every pixel. Selected with ``classifier.method: eps``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_probabilities(cam: torch.Tensor) -> torch.Tensor:
    """p = softmax over the C + 1 maps at each pixel: (B, C + 1, h, w) -> (B, C + 1, h, w)."""
    return torch.softmax(cam, dim=1)


def saliency_overlap(p: torch.Tensor, saliency: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """O_c = |round(p_c) AND round(S)| / |round(p_c)| for the C classes: p (B, C + 1, h, w), S (B, h, w) -> (B, C)."""
    region = torch.round(p[:, :-1])
    salient = torch.round(saliency)[:, None]
    return (region * salient).flatten(2).sum(dim=2) / (region.flatten(2).sum(dim=2) + eps)


def split_classes(overlap: torch.Tensor, present: torch.Tensor, tau: float):
    """(foreground, background) channel masks (B, C + 1): present classes with O_c > tau are foreground; the other
    present classes and the background map (last) are background."""
    fg = (present > 0) & (overlap > tau)
    bg = (present > 0) & ~fg
    last = torch.zeros_like(fg[:, :1])
    return torch.cat([fg, last], dim=1), torch.cat([bg, ~last], dim=1)


def estimated_saliency(p: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, lam: float) -> torch.Tensor:
    """S_hat = lambda * sum_{c in fg} p_c + (1 - lambda) * (1 - sum_{c in bg} p_c): (B, h, w)."""
    fg_map = (p * fg[:, :, None, None]).sum(dim=1)
    bg_map = (p * bg[:, :, None, None]).sum(dim=1)
    return lam * fg_map + (1 - lam) * (1 - bg_map)


def saliency_loss(cam: torch.Tensor, saliency: torch.Tensor, present: torch.Tensor, tau: float, lam: float):
    """MSE(S_hat, S) with S resized (bilinear) to the maps' size; the fg/bg split uses detached maps."""
    saliency = F.interpolate(saliency[:, None], size=cam.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    p = pixel_probabilities(cam)
    fg, bg = split_classes(saliency_overlap(p.detach(), saliency), present, tau)
    return F.mse_loss(estimated_saliency(p, fg, bg, lam), saliency)


def eps_maps(model, batch: torch.Tensor, index) -> torch.Tensor:
    """Localisation maps p_c = softmax over the C + 1 maps of an EPSNet, for the class positions ``index``:
    (B, len(index), h, w)."""
    return pixel_probabilities(model.cam(batch))[:, index]


def training_loss(settings: dict):
    """L = L_cls(GAP of the C class maps) + MSE(S_hat, S), for training.fit (tau, lam from ``settings``)."""
    tau, lam = settings["tau"], settings["lam"]

    def loss_fn(net, batch, progress=0.0):
        cam, target = net.cam(batch["image"]), batch["target"]
        classification = F.multilabel_soft_margin_loss(net.cam_scores(cam[:, :-1]), target)
        return classification + saliency_loss(cam, batch["saliency"], target, tau, lam)

    return loss_fn
