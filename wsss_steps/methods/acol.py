"""ACoL, adversarial complementary learning (Zhang et al., CVPR 2018): two classifier heads on the same
features; head B sees the features with the region where head A's min-max normalised map of a present class
reaches delta erased (set to zero), so it must find the object's other parts; the localisation map fuses both
heads, M = max(N(M_A), N(M_B)) with N the min-max normalisation of each map. Both as the authors' code
(xiaomengyc/ACoL models/vgg/vgg_v1.py) and clovaai/wsolevaluation compute them. Selected with
``classifier.method: acol``; the second head lives in ``nets.classifier.ACoLNet``.

Where we differ: the official heads are three convolutions (1024 channels) on VGG features after a 3x3 average
pool, single-label; here each head is one bias-free 1x1 conv on the backbone's last features, and an image with
several classes erases the union of their regions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def min_max(cam: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """N(A) = (A - min A) / (max A - min A) per image and class over the map's cells: (B, C, h, w) -> (B, C, h, w).

    A constant map gives 0 everywhere (the official code divides by zero there, and its NaN never reaches delta).
    """
    flat = cam.flatten(2)
    low, high = flat.amin(dim=2)[:, :, None, None], flat.amax(dim=2)[:, :, None, None]
    return (cam - low) / (high - low).clamp(min=eps)


def erased_region(cam_a: torch.Tensor, present: torch.Tensor, delta: float) -> torch.Tensor:
    """E = OR over present classes c of [N(A_c) >= delta]: cam_a (B, C, h, w), present (B, C) -> (B, h, w)."""
    return ((min_max(cam_a) >= delta) & (present[:, :, None, None] > 0)).any(dim=1)


def erase(features: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """f'(x, y) = 0 inside the erased region E, f(x, y) elsewhere: features (B, K, h, w), region (B, h, w)."""
    return features * (~region)[:, None].to(features.dtype)


def fuse(cam_a: torch.Tensor, cam_b: torch.Tensor) -> torch.Tensor:
    """M = max(N(M_A), N(M_B)), element by element, each head's map min-max normalised on its own: (B, C, h, w)."""
    return torch.maximum(min_max(cam_a), min_max(cam_b))


def acol_maps(model, batch: torch.Tensor, index) -> torch.Tensor:
    """The fused map max(N(M_A), N(M_B)) of an ACoLNet for the class positions ``index``: (B, len(index), h, w)."""
    cam_a, cam_b = model.cam_pair(batch)
    return fuse(cam_a[:, index], cam_b[:, index])


def training_loss(settings: dict):
    """L = L_cls(GAP(M_A)) + L_cls(GAP(M_B on the features erased where N(A) reaches delta)), for training.fit."""
    delta = settings["delta"]

    def loss_fn(net, batch, progress=0.0):
        features, target = net.backbone(batch["image"])[-1], batch["target"]
        cam_a = net.classifier(features)
        region = erased_region(cam_a.detach(), target, delta)
        cam_b = net.classifier_b(erase(features, region))
        return (F.multilabel_soft_margin_loss(net.cam_scores(cam_a), target)
                + F.multilabel_soft_margin_loss(net.cam_scores(cam_b), target))

    return loss_fn
