"""Each stage runs from the command line; bad inputs fail early with one sentence naming the file."""

import json
import pickle
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from wsss_steps.data.loader import StoreDataset
from wsss_steps.lib.artifacts import (ArtifactError, load_weights, open_store, put_array, read_array, save_weights,
                           write_store)
from wsss_steps.nets.backbones import TinyBackbone
from wsss_steps.nets.classifier import CAMNet
from wsss_steps.lib.runtime import DeviceError, resolve_device

STAGES = ["make_dataset", "train_classifier", "extract_cams", "make_affinity_labels", "train_affinity",
          "random_walk", "train_segmentation", "evaluate", "diagnose", "figures", "comparison_figures", "sweep"]


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


def test_store_dataset_reads_through_two_workers(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"img{i}": rng.random((1 + i % 3, 20 + i, 31 - i)).astype(np.float16) for i in range(10)}
    path = tmp_path / "cams.h5"
    with write_store(path, {"stage": "extract_cams", "ids": json.dumps(list(arrays))}) as store:
        for i, (name, array) in enumerate(arrays.items()):
            put_array(store, name, array, classes=np.arange(array.shape[0]) + i)
    dataset = StoreDataset(path, stage="extract_cams")
    assert len(dataset) == 10 and dataset.names == list(arrays)
    name, first, attrs = dataset[0]  # the main process opens its own handle first; workers must not reuse it
    assert name == "img0" and np.array_equal(first, arrays["img0"]) and attrs["classes"].tolist() == [0]
    assert pickle.loads(pickle.dumps(dataset))._store is None  # spawn workers get no handle either
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=True, num_workers=2,
                                         multiprocessing_context="fork")
    seen = {}
    for name, array, attrs in loader:
        seen[name] = array
        assert attrs["classes"].tolist() == (np.arange(array.shape[0]) + list(arrays).index(name)).tolist()
    assert set(seen) == set(arrays)
    for name, array in seen.items():
        assert array.dtype == torch.float16 and np.array_equal(array.numpy(), arrays[name])
    dataset.close()
    with pytest.raises(ArtifactError, match="made by 'extract_cams'"):
        StoreDataset(path, stage="random_walk")
    with pytest.raises(ArtifactError, match="no dataset 'img99'"):
        StoreDataset(path, names=["img99"])[0]


def test_put_array_chunks_by_plane(tmp_path):
    with write_store(tmp_path / "s.h5", {"stage": "x"}) as store:
        small = put_array(store, "cam", np.zeros((3, 375, 500), np.float16)).chunks
        label = put_array(store, "label", np.zeros((375, 500), np.uint8)).chunks
        big = put_array(store, "big", np.zeros((2, 1024, 1025), np.uint8)).chunks  # plane over 1 MiB: h5py's chunks
    assert small == (1, 375, 500) and label == (375, 500)
    assert big is not None and big[-2:] != (1024, 1025)


def test_dense_crf_accepts_a_read_only_image():
    from PIL import Image

    from wsss_steps.methods.crf import dense_crf

    rgb = np.asarray(Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)))
    assert not rgb.flags.writeable  # what VOCLayout.image gives the single-process path of make_affinity_labels
    probs = np.random.default_rng(1).dirichlet(np.ones(3), size=(12, 10)).transpose(2, 0, 1).astype(np.float32)
    out = dense_crf(rgb, probs, iterations=2, gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=20, bilateral_srgb=13,
                    bilateral_compat=10)
    assert out.shape == probs.shape and np.allclose(out.sum(axis=0), 1, atol=1e-4)
