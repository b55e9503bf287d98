"""Dense-CRF post-processing of the segmentation network's predictions (evaluate.crf): known answers and the summary."""

import json
import subprocess
import sys

import numpy as np
import yaml

from conftest import TINY
from wsss_steps.methods.crf import crf_labels, label_probs

CRF = dict(iterations=10, gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=20, bilateral_srgb=13, bilateral_compat=10)


def test_label_probs_put_gt_prob_on_the_predicted_class_and_share_the_rest():
    labels = np.array([[0, 2], [2, 5]])
    p = label_probs(labels, [0, 2, 5], 0.7)
    assert p.shape == (3, 2, 2)
    np.testing.assert_allclose(p[:, 0, 1], [0.15, 0.7, 0.15])
    np.testing.assert_allclose(p[:, 1, 1], [0.15, 0.15, 0.7])
    np.testing.assert_allclose(p.sum(0), 1.0)


def _two_halves(h=40, w=60):
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = (30, 30, 30)
    image[:, w // 2:] = (220, 200, 40)
    truth = np.zeros((h, w), np.uint8)
    truth[:, w // 2:] = 7
    return image, truth


def test_crf_removes_isolated_wrong_pixels_and_keeps_a_prediction_that_follows_the_edges():
    image, truth = _two_halves()
    assert np.array_equal(crf_labels(image, truth, 0.7, **CRF), truth)
    noisy = truth.copy()
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(0, 40, 12), rng.integers(0, 60, 12)
    noisy[ys, xs] = np.where(noisy[ys, xs] == 7, 0, 7)  # 12 pixels flipped to the other class
    assert not np.array_equal(noisy, truth)
    assert np.array_equal(crf_labels(image, noisy, 0.7, **CRF), truth)


def test_crf_of_a_single_class_prediction_is_that_prediction():
    image, _ = _two_halves()
    only = np.full((40, 60), 3, np.uint8)
    assert np.array_equal(crf_labels(image, only, 0.7, **CRF), only)


def test_evaluate_with_crf_scores_segmentation_with_and_without_it(tiny_run, tmp_path):
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    config = yaml.safe_load(TINY.read_text())
    dataset = {k: v for k, v in config["dataset"].items() if k not in ("generate", "score_split", "cooccurrence")}
    params = dict(config["evaluate"], crf={"gt_prob": 0.7, **CRF})
    cmd = [sys.executable, "-m", "wsss_steps.evaluate", "--dataset", json.dumps(dataset), "--params", json.dumps(params),
           "--run-name", "tiny", "--cams", results / "cams_train.h5", "--affinity-labels",
           results / "affinity_labels_train.h5", "--pseudo-labels", results / "pseudo_labels_train.h5",
           "--predictions", results / "segmentation_predictions.h5", "--train-split", "train", "--val-split", "val",
           "--score-split", "train", "--summary", tmp_path / "summary.json", "--table", tmp_path / "summary.md",
           "--examples", tmp_path / "examples.png"]
    proc = subprocess.run([str(c) for c in cmd], cwd=workdir, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours, plain = json.loads((tmp_path / "summary.json").read_text()), json.loads((results / "summary.json").read_text())
    assert ours["seg"] == plain["seg"] and "seg_crf" not in plain  # without the block: no CRF row
    assert ours["seg_crf"]["split"] == "val" and set(ours["seg_crf"]["iou"]) == set(config["dataset"]["classes"])
    assert 0 <= ours["seg_crf"]["miou"] <= 100
    assert "| DeepLabV3 on CAM + RW, + CRF | val |" in (tmp_path / "summary.md").read_text()
