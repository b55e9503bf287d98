"""Dense CRF (Kraehenbuehl & Koltun) through pydensecrf, with psa's kernels."""

from __future__ import annotations

import numpy as np


def dense_crf(image: np.ndarray, probs: np.ndarray, iterations: int, gaussian_sxy: float, gaussian_compat: float,
              bilateral_sxy: float, bilateral_srgb: float, bilateral_compat: float) -> np.ndarray:
    """Q = meanfield(unary -log p, gaussian(sxy) + bilateral(sxy, srgb; image)); probs (K, H, W) -> (K, H, W)."""
    k, h, w = probs.shape
    if iterations == 0 or k < 2:
        return probs
    import pydensecrf.densecrf as dcrf

    crf = dcrf.DenseCRF2D(w, h, k)
    unary = -np.log(np.clip(probs.reshape(k, -1), 1e-5, None)).astype(np.float32)
    crf.setUnaryEnergy(np.ascontiguousarray(unary))
    crf.addPairwiseGaussian(sxy=gaussian_sxy, compat=gaussian_compat)
    # pydensecrf needs a writeable buffer; np.asarray(PIL image) is read-only (the 1-process path of stage 3)
    rgb = np.require(image, dtype=np.uint8, requirements=["C", "W"])
    crf.addPairwiseBilateral(sxy=bilateral_sxy, srgb=bilateral_srgb, rgbim=rgb, compat=bilateral_compat)
    return np.asarray(crf.inference(iterations), dtype=np.float32).reshape(k, h, w)


def label_probs(labels: np.ndarray, classes, gt_prob: float) -> np.ndarray:
    """Unary from a label map: p_k = gt_prob where labels == classes[k], else (1 - gt_prob) / (K - 1); (K, H, W)."""
    k = len(classes)
    rest = (1 - gt_prob) / max(1, k - 1)
    return np.stack([np.where(labels == c, gt_prob, rest) for c in classes]).astype(np.float32)


def crf_labels(image: np.ndarray, labels: np.ndarray, gt_prob: float, **crf) -> np.ndarray:
    """Dense-CRF post-processing of a predicted label map: argmax_k Q_k with Q = dense_crf(label_probs(labels)),
    over the classes the prediction contains (psa's test-time CRF, read from labels as irn's crf_inference_label)."""
    classes = np.unique(labels)
    if len(classes) < 2:
        return labels.copy()
    q = dense_crf(image, label_probs(labels, classes, gt_prob), **crf)
    return classes[np.argmax(q, axis=0)].astype(labels.dtype)
