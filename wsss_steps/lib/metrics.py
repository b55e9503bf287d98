"""Scores of label maps against ground truth (numpy only): confusion matrix, IoU per class, mIoU, confusion ratio."""

from __future__ import annotations

import numpy as np

IGNORE = 255  # void pixels of VOC masks and neutral pixels of affinity labels


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore: int = IGNORE) -> np.ndarray:
    """C[g, p] = number of pixels with ground truth g and prediction p, pixels with gt == ignore skipped."""
    keep = gt != ignore
    g = gt[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    p = np.where(p < num_classes, p, 0) if p.size else p
    return np.bincount(g * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU_c = C[c, c] / (sum_g C[g, c] + sum_p C[c, p] - C[c, c]); NaN for a class absent from both."""
    tp = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)


def mean_iou(conf: np.ndarray) -> float:
    """mIoU = nanmean_c IoU_c."""
    return float(np.nanmean(iou_per_class(conf)))


def confusion_counts(pred: np.ndarray, gt: np.ndarray, context: np.ndarray, c: int) -> tuple[int, int]:
    """(|context AND pred == c|, |gt == c AND pred == c|): the two counts of EPS's confusion ratio for one image."""
    predicted = pred == c
    return int((predicted & context).sum()), int((predicted & (gt == c)).sum())


def confusion_ratio(k_as_c: int, tp_c: int) -> float:
    """m_{k,c} = (pixels of context k predicted as c) / (true positives of c) (Lee et al. 2021); lower is better."""
    return k_as_c / tp_c if tp_c else float("nan")


def score(conf: np.ndarray, classes) -> dict:
    """mIoU and per-class IoU (0-100) from a confusion matrix."""
    iou = iou_per_class(conf)
    return {"miou": round(100 * mean_iou(conf), 2),
            "iou": {name: (None if np.isnan(v) else round(100 * float(v), 2)) for name, v in zip(classes, iou)}}
