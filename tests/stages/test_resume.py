"""A training job killed with SIGKILL and started again ends with the same weights as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys

import h5py
import numpy as np

from wsss_steps.lib.artifacts import read_curve
from wsss_steps.data.synthetic import generate

CLASSES = ["background", "kite", "bug", "boat"]


def _command(root, out, checkpoint, epochs):
    dataset = {"name": "t", "root": str(root), "classes": CLASSES, "ignore_index": 255,
               "train_split": "train", "val_split": "val"}
    backbone = {"name": "tiny", "output_stride": 8, "weights": None, "width": 8}
    params = {"epochs": epochs, "batch_size": 4, "lr": 0.02, "weight_decay": 0.0001, "crop_size": 64,
              "scale_range": [0.8, 1.2]}
    return [sys.executable, "-m", "wsss_steps.train_classifier", "--dataset", json.dumps(dataset),
            "--backbone", json.dumps(backbone), "--params", json.dumps(params), "--split", "train", "--seed", "3",
            "--threads", "1", "--device", "cpu", "--out", str(out), "--checkpoint", str(checkpoint)]


def _weights(path):
    with h5py.File(path, "r") as store:
        return {k: store["state_dict"][k][()] for k in store["state_dict"]}


def _epoch_of(checkpoint):
    try:
        with h5py.File(checkpoint, "r") as store:
            return int(store.attrs["epoch"])
    except (OSError, KeyError):
        return 0


def test_sigkill_during_classifier_training_then_rerun_gives_the_clean_runs_weights(tmp_path):
    root = tmp_path / "data"
    generate(root, CLASSES, 64, 24, 4, seed=1)
    epochs = 6
    clean = subprocess.run(_command(root, tmp_path / "clean.h5", tmp_path / "clean.ckpt.h5", epochs),
                           capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert not (tmp_path / "clean.ckpt.h5").exists()  # removed once training is done

    # The job kills itself with SIGKILL right after its epoch-2 checkpoint (fault injection), so the test does not
    # depend on catching it mid-training at the machine's speed.
    out, checkpoint = tmp_path / "killed.h5", tmp_path / "killed.ckpt.h5"
    job = subprocess.run(_command(root, out, checkpoint, epochs), capture_output=True, text=True, timeout=900,
                         env=dict(os.environ, WSSS_FAULT_KILL_AT="classifier epoch 2"))
    assert job.returncode == -signal.SIGKILL, job.stderr[-3000:]
    killed_at = _epoch_of(checkpoint)
    assert killed_at == 2 and not out.exists()

    resumed = subprocess.run(_command(root, out, checkpoint, epochs), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"after epoch {killed_at}" in resumed.stderr
    a, b = _weights(tmp_path / "clean.h5"), _weights(out)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    with h5py.File(tmp_path / "clean.h5", "r") as clean_file, h5py.File(out, "r") as resumed_file:
        clean_curve, resumed_curve = (read_curve(f["training_curve"]) for f in (clean_file, resumed_file))
    assert [r["step"] for r in clean_curve] == list(range(1, len(clean_curve) + 1))
    assert resumed_curve == clean_curve  # the steps before the kill come back from the checkpoint


def test_a_checkpoint_made_with_other_settings_is_ignored(tmp_path):
    import torch

    from wsss_steps.lib.training import save_checkpoint

    root = tmp_path / "data"
    generate(root, CLASSES, 64, 8, 2, seed=1)
    checkpoint = tmp_path / "c.ckpt.h5"
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    save_checkpoint(checkpoint, model, optimizer, torch.Generator(), 1, 2, [0.5], fingerprint="other settings")
    proc = subprocess.run(_command(root, tmp_path / "a.h5", checkpoint, 2), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "made with other settings" in proc.stderr and "resuming" not in proc.stderr
    assert (tmp_path / "a.h5").is_file() and not checkpoint.exists()
