"""Adversarial erasing (AE-PSL, Wei et al. CVPR 2017): round r trains a classifier on the training images with
every region mined in rounds < r erased (filled with the training set's mean colour), reads its CAMs on those
erased images, and mines the regions above delta of each labelled class; the union of the mined regions is the
localisation. Here the union is kept as a map, U_r = max(U_{r-1}, M_r) of the normalised CAMs M_r, so that
{U_r > delta} is exactly the union of the mined regions and the later stages still get scores, not a binary mask.
Selected with the ``adversarial_erasing`` config section (rules/adversarial_erasing.smk).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .hide_and_seek import hide


def mined_region(cam: np.ndarray, delta: float) -> np.ndarray:
    """The pixels mined from a (K, H, W) normalised CAM of the image's classes: any M_c > delta, as (H, W) bool."""
    if cam.shape[0] == 0:
        return np.zeros(cam.shape[1:], bool)
    return (cam > delta).any(axis=0)


def union_map(previous: np.ndarray | None, current: np.ndarray) -> np.ndarray:
    """U_r = max(U_{r-1}, M_r) per class and pixel (U_1 = M_1): its region above delta only grows over rounds."""
    return current.copy() if previous is None else np.maximum(previous, current)


def erase(image: np.ndarray, region: np.ndarray, mean) -> np.ndarray:
    """x' = the training mean colour where ``region``, x elsewhere (image (H, W, 3) uint8, mean in 0-255)."""
    return hide(image, region, mean)


def round_succeeded(recall: dict, min_recall: float) -> bool:
    """Whether a round's classifier still classifies the erased training images: the mean over classes of its
    image-level recall on them (classes with images) is at least ``min_recall`` (AE-PSL's "while training succeeds")."""
    values = [figures["recall"] for figures in recall.values() if figures.get("recall") is not None]
    return bool(values) and float(np.mean(values)) >= min_recall


def erase_mined(image: np.ndarray, union: np.ndarray, delta: float, mean) -> np.ndarray:
    """The image with the region mined from its union map (any class above delta) filled with ``mean``."""
    return erase(image, mined_region(union, delta), mean)


def prohibitive_labels(f, v):
    """AE-PSL's online label: S(x) = argmax_c ([1, v]_c * f_c(x)) for segmentation scores f (B, C+1, h, w), background
    first, and foreground class weights v (B, C); a class of weight 0 (absent from the image) can never win."""
    weights = torch.cat([torch.ones_like(v[:, :1]), v], dim=1)
    return (weights[:, :, None, None] * f).argmax(dim=1)


def psl_training_loss(settings: dict, ignore_index: int):
    """loss_fn(net, batch, progress) for AE-PSL's prohibitive segmentation learning: cross-entropy on the pseudo-labels
    + multi-label soft margin of the classification branch on the image labels + online_weight x cross-entropy on the
    online labels argmax([1, v] * f), v the branch's probabilities of the image's classes (absent classes 0)."""

    def loss_fn(net, batch, progress=0.0):
        output = net(batch["image"])
        scores, target = output["out"], batch["target"]
        with torch.no_grad():
            online = prohibitive_labels(scores.softmax(1), output["image"].sigmoid() * target)
        terms = {"pseudo": F.cross_entropy(scores, batch["labels"], ignore_index=ignore_index),
                 "classification": F.multilabel_soft_margin_loss(output["image"], target),
                 "online": settings["online_weight"] * F.cross_entropy(scores, online)}
        return sum(terms.values()), {k: v.item() for k, v in terms.items()}

    return loss_fn
