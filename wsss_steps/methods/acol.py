"""ACoL, adversarial complementary learning (Zhang et al., CVPR 2018): two classifier heads on the same
features; head B sees the features with the region where head A's normalised map of a present class exceeds
delta erased (set to zero), so it must find the object's other parts; the localisation map fuses both heads,
M = max(M_A, M_B). Selected with ``classifier.method: acol``; the second head lives in ``nets.classifier.ACoLNet``.
"""

from __future__ import annotations

import torch


def erased_region(cam_a: torch.Tensor, present: torch.Tensor, delta: float, eps: float = 1e-5) -> torch.Tensor:
    """E = OR over present classes c of [ReLU(A_c) / max ReLU(A_c) > delta]: cam_a (B, C, h, w), present (B, C) -> (B, h, w)."""
    cam = torch.relu(cam_a)
    normalised = cam / (cam.flatten(2).amax(dim=2)[:, :, None, None] + eps)
    return ((normalised > delta) & (present[:, :, None, None] > 0)).any(dim=1)


def erase(features: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """f'(x, y) = 0 inside the erased region E, f(x, y) elsewhere: features (B, K, h, w), region (B, h, w)."""
    return features * (~region)[:, None].to(features.dtype)


def fuse(cam_a: torch.Tensor, cam_b: torch.Tensor) -> torch.Tensor:
    """M = max(M_A, M_B), element by element."""
    return torch.maximum(cam_a, cam_b)


def acol_maps(model, batch: torch.Tensor, index) -> torch.Tensor:
    """The fused map max(M_A, M_B) of an ACoLNet for the class positions ``index``: (B, len(index), h, w)."""
    cam_a, cam_b = model.cam_pair(batch)
    return fuse(cam_a, cam_b)[:, index]
