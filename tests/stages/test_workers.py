"""DataLoader workers change no result: every crop is seeded by (seed, epoch, image), not by the process drawing it."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from wsss_steps.data.synthetic import generate
from wsss_steps.lib.runtime import loader_workers

CLASSES = ["background", "kite", "bug", "boat"]


def _train(root, out, workers, method):
    dataset = {"name": "t", "root": str(root), "classes": CLASSES, "ignore_index": 255,
               "train_split": "train", "val_split": "val"}
    backbone = {"name": "tiny", "output_stride": 8, "weights": None, "width": 8}
    params = {"steps": 5, "batch_size": 4, "lr": 0.02, "weight_decay": 0.0001, "crop_size": 64,
              "scale_range": [0.8, 1.2], "method": method, "hide_and_seek": {"patch_sizes": [0, 16], "p": 0.5}}
    cmd = [sys.executable, "-m", "wsss_steps.train_classifier", "--dataset", json.dumps(dataset),
           "--backbone", json.dumps(backbone), "--params", json.dumps(params), "--split", "train", "--seed", "3",
           "--threads", "1", "--device", "cpu", "--workers", str(workers), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)  # a hang guard
    assert proc.returncode == 0, proc.stderr[-3000:]
    with h5py.File(out, "r") as store:
        return {k: store["state_dict"][k][()] for k in store["state_dict"]}


@pytest.mark.parametrize("method", ["cam", "hide_and_seek"])
def test_two_loader_workers_train_the_same_weights_as_none(tmp_path, method):
    root = tmp_path / "data"
    generate(root, CLASSES, 64, 12, 4, seed=1)  # 12 images, batches of 4: 5 steps cross an epoch boundary
    alone = _train(root, tmp_path / "w0.h5", 0, method)
    workers = _train(root, tmp_path / "w2.h5", 2, method)
    assert alone.keys() == workers.keys()
    for key in alone:
        np.testing.assert_array_equal(alone[key], workers[key], err_msg=key)


def test_loader_workers_auto_uses_the_threads_on_cuda_and_none_on_the_cpu():
    assert loader_workers("auto", 4, "cuda") == 4
    assert loader_workers(None, 8, "cuda") == 8
    assert loader_workers("auto", 4, "cpu") == 0
    assert loader_workers("3", 4, "cpu") == 3
    assert loader_workers(0, 4, "cuda") == 0
    with pytest.raises(ValueError, match="workers must be auto"):
        loader_workers("-1", 4, "cpu")
