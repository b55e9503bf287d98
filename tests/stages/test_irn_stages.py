"""affinity.method irn through the two stages it changes: train_affinity trains IRN's boundary head on a frozen
backbone, random_walk walks on its boundary affinities; both as the rules call them, on a tiny generated dataset."""

import json
import subprocess
import sys

import h5py
import numpy as np

from wsss_steps.data.label_png import load_label_png
from wsss_steps.data.synthetic import generate
from wsss_steps.lib.artifacts import put_array, write_store

CLASSES = ["background", "kite", "bug", "boat"]
DATASET = {"name": "t", "classes": CLASSES, "ignore_index": 255}
BACKBONE = {"name": "tiny", "output_stride": 8, "weights": None, "width": 8}
AFFINITY = {"method": "irn", "irn": {"train_radius": 5}, "radius": 3, "init_from_classifier": False,
            "head_channels": [8, 8, 8], "steps": 3, "batch_size": 4, "lr": 0.02, "weight_decay": 0.0001,
            "crop_size": 64, "scale_range": [0.8, 1.2]}
WALK = {"alpha": 16, "beta": 10, "t": 16, "stride": 4, "background": "threshold", "bg_threshold": 0.25}


def _run(stage, *args):
    proc = subprocess.run([sys.executable, "-m", f"wsss_steps.{stage}", *args, "--seed", "0", "--threads", "1",
                           "--device", "cpu"], capture_output=True, text=True, timeout=900)  # a hang guard
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def test_irn_trains_its_boundary_head_and_walks_on_the_boundary_affinities(tmp_path):
    root = tmp_path / "data"
    ids = generate(root, CLASSES, 60, 8, 2, seed=1)["train"]  # 60 px: not a multiple of the strides (padding)
    masks = {i: load_label_png(root / "SegmentationClass" / f"{i}.png") for i in ids}
    base = {"ids": json.dumps(ids), "classes": CLASSES, "dataset_root": str(root)}
    with write_store(tmp_path / "labels.h5", {"stage": "make_affinity_labels", **base}) as store:
        for i in ids:
            store.create_dataset(i, data=masks[i])
    with write_store(tmp_path / "cams.h5", {"stage": "extract_cams", **base}) as store:
        for i in ids:  # the masks as CAMs: one map per class of the image
            present = [c for c in range(1, len(CLASSES)) if (masks[i] == c).any()]
            cam = np.stack([(masks[i] == c).astype(np.float32) for c in present]) if present else \
                np.zeros((0, *masks[i].shape), np.float32)
            put_array(store, i, cam, classes=np.asarray(present, dtype=np.int64))
    dataset = json.dumps({**DATASET, "root": str(root)})
    weights = tmp_path / "irn.h5"
    _run("train_affinity", "--dataset", dataset, "--backbone", json.dumps(BACKBONE), "--params", json.dumps(AFFINITY),
         "--labels", str(tmp_path / "labels.h5"), "--out", str(weights))
    with h5py.File(weights, "r") as store:
        keys = set(store["state_dict"])
    assert any(k.startswith("heads.") for k in keys) and "fuse.bias" in keys  # IRN's head, not AffinityNet's
    log = _run("random_walk", "--dataset", dataset, "--backbone", json.dumps(BACKBONE), "--params", json.dumps(WALK),
               "--affinity-params", json.dumps(AFFINITY), "--cams", str(tmp_path / "cams.h5"),
               "--affinity", str(weights), "--out", str(tmp_path / "walk.h5"))
    assert "IRN: walking on boundary affinities" in log
    with h5py.File(tmp_path / "walk.h5", "r") as store:
        assert json.loads(store.attrs["params"])["affinity_method"] == "irn"
        for i in ids:
            labels = store[i][()]
            assert labels.shape == masks[i].shape
            present = {0} | {c for c in range(1, len(CLASSES)) if (masks[i] == c).any()}
            assert set(np.unique(labels)) <= present  # only the image's classes
    _run("diagnose", "--dataset", dataset, "--backbone", json.dumps(BACKBONE), "--affinity-params", json.dumps(AFFINITY),
         "--random-walk-params", json.dumps(WALK), "--cams", str(tmp_path / "cams.h5"), "--affinity", str(weights),
         "--out", str(tmp_path / "diagnose.json"))
    report = json.loads((tmp_path / "diagnose.json").read_text())
    assert report["images"] == len(ids) and 0 <= report["boundary"]["precision"] <= 1
    assert report["boundary"]["true"] > 0 and set(report["walk_miou"]) == {"learned", "oracle"}
