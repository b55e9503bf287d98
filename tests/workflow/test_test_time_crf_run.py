"""Dense-CRF post-processing of the segmentation network's predictions (evaluate.crf): known answers and the summary.

The tests here run the workflow; those that do not are in tests/unit/test_test_time_crf.py.
"""

import json
import subprocess
import sys

import yaml

from conftest import TINY

CRF = dict(iterations=10, gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=20, bilateral_srgb=13, bilateral_compat=10)


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
