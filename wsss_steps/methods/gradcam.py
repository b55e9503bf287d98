"""Grad-CAM (Selvaraju et al., ICCV 2017): class maps weighted by the gradient of the class score,
L^c = ReLU(sum_k alpha^c_k A^k) at a chosen layer A, with alpha^c_k = sum_ij dy^c / dA^k_ij as the authors'
code computes it (ramprs/grad-cam, misc/utils.lua:121, a sum over the map's cells; the paper writes (1/Z) sum_ij).

The 1/Z is a constant per map that cancels once one map is normalised, but not when the maps of several scales
are summed before normalising (cam.multiscale_cam): a mean would divide each scale by its own cell count and
weigh the coarsest scale most. With the sum, for a GAP + linear classifier read at its last layer,
dy^c / dA^k_ij = w_ck / Z everywhere, so alpha^c_k = w_ck and Grad-CAM is the CAM ReLU(w_c^T A) exactly; at an
inner layer it differs. Grad-CAM takes the ReLU before resizing the map (as the authors' code), the CAM after.
Selected with ``cams.method: gradcam``; ``cams.gradcam.layer`` picks the layer (GRADCAM_LAYERS).
"""

from __future__ import annotations

import torch

GRADCAM_LAYERS = ("last", "previous")  # the backbone's last stage, or the stage before it


def gradcam_weights(gradients: torch.Tensor) -> torch.Tensor:
    """alpha^c_k = sum_ij dy^c / dA^k_ij: gradients (B, K, h, w) -> (B, K)."""
    return gradients.sum(dim=(-2, -1))


def gradcam_map(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """L^c = ReLU(sum_k alpha^c_k A^k): features (B, K, h, w), weights (B, K) -> (B, h, w)."""
    return torch.relu((weights[:, :, None, None] * features).sum(dim=1))


def gradcam(features: torch.Tensor, scores: torch.Tensor, index) -> torch.Tensor:
    """Grad-CAM of the classes ``index`` (positions in ``scores``' last axis): (B, len(index), h, w).

    features A: (B, K, h, w), part of the graph that computed scores y: (B, C). Each image's class
    score depends on that image's features only, so one backward per class serves the whole batch.
    """
    maps = []
    for position, c in enumerate(index):
        (gradients,) = torch.autograd.grad(scores[:, c].sum(), features, retain_graph=position < len(index) - 1)
        maps.append(gradcam_map(features.detach(), gradcam_weights(gradients)))
    return torch.stack(maps, dim=1) if maps else features.new_zeros(features.shape[0], 0, *features.shape[-2:])


def gradcam_maps(model, batch: torch.Tensor, index, layer: str = "last") -> torch.Tensor:
    """Grad-CAM of a CAMNet for the class positions ``index`` at ``layer`` (GRADCAM_LAYERS): (B, len(index), h, w)."""
    if layer not in GRADCAM_LAYERS:
        raise ValueError(f"Grad-CAM layer must be one of {GRADCAM_LAYERS}, not {layer!r}")
    with torch.enable_grad():
        stages = model.backbone(batch)
        level = len(stages) - 1 if layer == "last" else len(stages) - 2
        features = stages[level].detach().requires_grad_(True)
        scores = model.scores_from(level, features)
        return gradcam(features, scores, [int(i) for i in index])
