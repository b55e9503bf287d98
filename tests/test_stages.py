"""Each stage runs from the command line; bad inputs fail early with one sentence naming the file."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from wsss_steps.io import ArtifactError, load_weights, open_store, read_array, save_weights, write_store, put_array
from wsss_steps.models import CAMNet, TinyBackbone
from wsss_steps.runtime import DeviceError, resolve_device

STAGES = ["make_dataset", "train_classifier", "extract_cams", "make_affinity_labels", "train_affinity",
          "random_walk", "train_segmentation", "evaluate", "diagnose"]


@pytest.mark.parametrize("stage", STAGES)
def test_stage_has_a_command_line(stage):
    proc = subprocess.run([sys.executable, "-m", f"wsss_steps.{stage}", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"wsss_steps.{stage}" in proc.stdout and "--dataset" in proc.stdout


def test_cuda_request_fails_at_once_without_cuda():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda" and resolve_device("auto").type == "cuda"
    else:
        with pytest.raises(DeviceError, match="no CUDA device"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"
    assert resolve_device("cpu").type == "cpu"


def test_weights_round_trip_and_mismatch(tmp_path):
    model = CAMNet(TinyBackbone(4), 3)
    save_weights(tmp_path / "w.h5", model, {"stage": "train_classifier"})
    other = CAMNet(TinyBackbone(4), 3)
    load_weights(tmp_path / "w.h5", other, stage="train_classifier")
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ArtifactError, match=r"w\.h5: weights do not fit"):
        load_weights(tmp_path / "w.h5", CAMNet(TinyBackbone(4), 5))
    with pytest.raises(ArtifactError, match="made by 'train_classifier'"):
        load_weights(tmp_path / "w.h5", other, stage="train_affinity")


def test_truncated_store_names_the_file(tmp_path):
    path = tmp_path / "cams.h5"
    with write_store(path, {"stage": "extract_cams"}) as store:
        put_array(store, "img", np.zeros((2, 8, 8), np.float16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ArtifactError, match=r"cams\.h5: not a readable HDF5 file"):
        open_store(path)
    with pytest.raises(ArtifactError, match="file not found"):
        open_store(tmp_path / "missing.h5")


def test_missing_dataset_inside_a_store_is_named(tmp_path):
    path = tmp_path / "labels.h5"
    with write_store(path, {"stage": "make_affinity_labels"}) as store:
        put_array(store, "a", np.zeros((4, 4), np.uint8))
    with open_store(path, "make_affinity_labels") as store:
        with pytest.raises(ArtifactError, match="no dataset 'b'"):
            read_array(store, "b")


def test_failed_writer_leaves_nothing_behind(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with write_store(path, {"stage": "x"}) as store:
            put_array(store, "a", np.zeros((4, 4), np.uint8))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with h5py.File(tmp_path / "ok.h5", "w"):
        pass
