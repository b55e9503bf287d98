"""A classifier that never learns one class: training goes on for classifier.max_cycles schedules, then the stage
stops with one sentence naming the class and the remedy, writes no weights and keeps its checkpoint, so that raising
max_cycles continues the training and health.stop_on: [] writes the weights as trained (docs/health.md)."""

import json

import h5py
import pytest
import torch

from wsss_steps import train_classifier
from wsss_steps.lib import health
from wsss_steps.data.synthetic import generate
from wsss_steps.lib.runtime import run_stage

CLASSES = ["background", "kite", "bug", "boat"]
BOAT = CLASSES.index("boat") - 1  # its logit's column


@pytest.fixture
def never_boat(monkeypatch):
    """build_classifier whose model's boat logit is always -20: a classifier that never learns the class."""
    build = train_classifier.build_classifier

    def stub(*args, **kwargs):
        model = build(*args, **kwargs)
        forward = model.forward

        def never(x):
            logits = forward(x)
            mask = torch.ones_like(logits)
            mask[:, BOAT] = 0
            return logits * mask - 20 * (1 - mask)

        model.forward = never
        return model

    monkeypatch.setattr(train_classifier, "build_classifier", stub)


def _argv(root, out, checkpoint, log, max_cycles, stop=True):
    dataset = {"name": "t", "root": str(root), "classes": CLASSES, "ignore_index": 255,
               "train_split": "train", "val_split": "val"}
    backbone = {"name": "tiny", "output_stride": 8, "weights": None, "width": 8}
    params = {"steps": 12, "batch_size": 4, "lr": 0.05, "weight_decay": 0.0001, "crop_size": 64,
              "scale_range": [0.8, 1.2], "max_cycles": max_cycles}
    return (["--dataset", json.dumps(dataset), "--backbone", json.dumps(backbone), "--params", json.dumps(params),
             "--split", "train", "--health-splits", "train", "val", "--seed", "3", "--threads", "1",
             "--device", "cpu", "--out", str(out), "--checkpoint", str(checkpoint), "--log", str(log)]
            + (["--stop-unlearnt"] if stop else []))


def test_a_class_never_learnt_stops_the_stage_and_its_training_is_kept(never_boat, tmp_path):
    root = tmp_path / "data"
    generate(root, CLASSES, 64, 24, 4, seed=1)
    out, checkpoint, log = tmp_path / "classifier.weights.h5", tmp_path / "ckpt.h5", tmp_path / "train.log"

    assert run_stage(train_classifier.main, _argv(root, out, checkpoint, log, max_cycles=2)) == 1
    text = log.read_text()
    # kite and bug are learnt in the second schedule; boat never is
    assert "after 12 steps: not yet learnt on the training images: class 'kite'" in text
    assert "after 24 steps: not yet learnt on the training images: class 'boat' (precision none" in text
    assert "ERROR train_classifier: after 24 steps (2 schedule(s), classifier.max_cycles) the classifier has not " \
           "learnt class 'boat' (precision none, recall 0.00, 19 images) on the training images" in text
    assert "raise classifier.max_cycles" in text and "health.stop_on: []" in text
    assert not out.exists() and checkpoint.exists()  # nothing half-written; the training kept

    assert run_stage(train_classifier.main, _argv(root, out, checkpoint, log, max_cycles=3)) == 1
    text = log.read_text()
    assert "resuming from checkpoint" in text and "training schedule 3 of at most 3" in text
    assert "after 36 steps (3 schedule(s)" in text

    assert run_stage(train_classifier.main, _argv(root, out, checkpoint, log, max_cycles=3, stop=False)) == 0
    text = log.read_text()
    assert "training schedule" not in text  # nothing trained again: the weights are the checkpoint's
    assert not checkpoint.exists()
    with h5py.File(out, "r") as store:
        record = health.read(store.attrs)
        assert int(store.attrs["steps_trained"]) == 36
    assert ("recall_train", "boat") in {(w["check"], w["class"]) for w in record["warnings"]}
    assert "WARNING health: train_classifier: image-level recall on train is low (class 'boat': 0.00" in text
