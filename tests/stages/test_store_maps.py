"""Label maps are read from their stores per item (StoreMaps), never all into memory, with the same results."""

import json
import pickle
import subprocess
import sys

import h5py
import numpy as np
import pytest

from wsss_steps.lib.artifacts import ArtifactError, write_store
from wsss_steps.data.label_png import load_label_png
from wsss_steps.data.loader import StoreMaps
from wsss_steps.data.synthetic import generate
from wsss_steps.data.voc import VOCLayout

CLASSES = ["background", "kite", "bug", "boat"]


def label_store(path, root, ids, stage="make_affinity_labels"):
    """A label store of the dataset's masks (what the training stages read), made as the stages make theirs."""
    with write_store(path, {"stage": stage, "ids": json.dumps(ids), "classes": CLASSES, "dataset_root": str(root)}) as store:
        for image_id in ids:
            store.create_dataset(image_id, data=load_label_png(root / "SegmentationClass" / f"{image_id}.png"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("maps") / "data"
    splits = generate(root, CLASSES, 64, 12, 4, seed=1)
    return root, splits["train"]


def test_store_maps_give_the_stored_maps_without_reading_them_up_front(data, tmp_path):
    root, ids = data
    layout = VOCLayout(str(root), CLASSES)
    path = tmp_path / "labels.h5"
    label_store(path, root, ids)
    maps = StoreMaps(path, "make_affinity_labels", layout)
    assert maps._items._store is None  # nothing read yet: construction only checks the file
    assert list(maps) == ids and len(maps) == len(ids)
    assert ids[0] in maps and "nope" not in maps and maps._items._store is None  # membership reads no array
    with h5py.File(path, "r") as store:
        whole = {image_id: store[image_id][()] for image_id in ids}
    for image_id in ids:
        np.testing.assert_array_equal(maps[image_id], whole[image_id])
    with pytest.raises(KeyError):
        maps["nope"]
    again = pickle.loads(pickle.dumps(maps))  # spawn workers get a copy without the open handle
    np.testing.assert_array_equal(again[ids[3]], whole[ids[3]])
    with pytest.raises(ArtifactError, match="random_walk"):
        StoreMaps(path, "random_walk", layout)


def _train_affinity(root, labels, out, workers):
    dataset = {"name": "t", "root": str(root), "classes": CLASSES, "ignore_index": 255}
    backbone = {"name": "tiny", "output_stride": 8, "weights": None, "width": 8}
    params = {"radius": 3, "init_from_classifier": False, "head_channels": [8, 8, 8], "steps": 5, "batch_size": 4,
              "lr": 0.02, "weight_decay": 0.0001, "crop_size": 64, "scale_range": [0.8, 1.2]}
    cmd = [sys.executable, "-m", "wsss_steps.train_affinity", "--dataset", json.dumps(dataset),
           "--backbone", json.dumps(backbone), "--params", json.dumps(params), "--labels", str(labels),
           "--seed", "3", "--threads", "1", "--device", "cpu", "--workers", str(workers), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)  # a hang guard
    assert proc.returncode == 0, proc.stderr[-3000:]
    with h5py.File(out, "r") as store:
        return {k: store["state_dict"][k][()] for k in store["state_dict"]}


def test_affinity_training_reading_labels_per_item_is_the_same_with_two_loader_workers(data, tmp_path):
    root, ids = data
    labels = tmp_path / "labels.h5"
    label_store(labels, root, ids)
    alone = _train_affinity(root, labels, tmp_path / "w0.h5", 0)
    workers = _train_affinity(root, labels, tmp_path / "w2.h5", 2)
    assert alone.keys() == workers.keys()
    for key in alone:
        np.testing.assert_array_equal(alone[key], workers[key], err_msg=key)
