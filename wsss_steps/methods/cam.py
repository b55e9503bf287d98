"""Class activation maps (Zhou et al. 2016) as psa and irn read them: M_c = w_c^T f(x, y), ReLU, per-class max
normalisation, multi-scale and flip inference, and the background score of AffinityNet (Ahn & Kwak 2018).

Array conventions: CAMs are ``(K, H, W)`` for the K classes present in the image, in [0, 1];
``classes`` are their 1-based class indices (0 is background).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.transforms import pad_to_stride


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


def cam_maps(model, batch: torch.Tensor, index) -> torch.Tensor:
    """M_c = w_c^T f(x, y) of the class positions ``index``: (B, len(index), h, w) at the backbone's stride."""
    return model.cam(batch)[:, index]


@torch.no_grad()
def multiscale_cam(model, image: torch.Tensor, classes, scales, flip: bool, maps=cam_maps) -> torch.Tensor:
    """sum over scales s (and flips) of ReLU(upsample(CAM(resize(image, s)))), then M_c / max M_c, for ``classes`` only.

    image: normalised (3, H, W); classes: 1-based class indices; returns (len(classes), H, W).
    ``maps(model, batch, index)`` gives the raw maps (``cam_maps``, or Grad-CAM's ``gradcam_maps``).
    """
    h, w = image.shape[-2:]
    stride = model.backbone.stride
    index = torch.as_tensor([c - 1 for c in classes], dtype=torch.long)
    total = torch.zeros(len(classes), h, w, device=image.device)
    if not classes:
        return total
    for scale in scales:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        scaled = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        batch = torch.cat([scaled, scaled.flip(-1)]) if flip else scaled
        padded, _ = pad_to_stride(batch, stride)
        cam = maps(model, padded, index)
        cam = F.interpolate(cam, size=padded.shape[-2:], mode="bilinear", align_corners=False)[..., :size[0], :size[1]]
        cam = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)
        cam = F.relu(cam)
        total += cam[0] + (cam[1].flip(-1) if flip else 0)
    return normalize_cam(total)


def classification_loss(net, batch, progress=0.0):
    """L_cls = multilabel soft margin of GAP(M) against the image-level labels (plain CAM training)."""
    return F.multilabel_soft_margin_loss(net(batch["image"]), batch["target"])


def training_loss(settings: dict | None = None):
    """Plain CAM's loss function for training.fit: ``classification_loss`` (no settings)."""
    return classification_loss
