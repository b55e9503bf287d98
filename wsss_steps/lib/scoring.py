"""Scores of a run's stored maps against the dataset's masks, shared by the stages that score (evaluate, sweep)."""

from __future__ import annotations

import numpy as np

from .artifacts import read_array
from ..data import VOCLayout
from .log import progress
from ..methods.cam import cam_labels
from .metrics import confusion_matrix, mean_iou, score


def evaluate_cams(layout: VOCLayout, cams, ids, threshold: float, curve) -> dict:
    """CAM mIoU at the fixed background ``threshold`` and at each threshold of ``curve``."""
    thresholds = sorted(set([threshold, *curve]))
    n = layout.num_classes
    confs = {thr: np.zeros((n, n), np.int64) for thr in thresholds}
    for image_id in progress(ids, desc="score CAM"):
        gt = layout.mask(image_id)
        cam = read_array(cams, image_id).astype(np.float32)
        classes = [int(c) for c in cams[image_id].attrs["classes"]]
        for thr in thresholds:
            confs[thr] += confusion_matrix(cam_labels(cam, classes, thr), gt, n, layout.ignore_index)
    result = score(confs[threshold], layout.classes)
    result.update(threshold=threshold, images=len(ids),
                  curve=[{"threshold": thr, "miou": round(100 * mean_iou(confs[thr]), 2)} for thr in thresholds])
    return result
