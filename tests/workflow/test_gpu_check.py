"""benchmarks/gpu_check.py (the GPU check for whoever has a GPU): its readings, on the tiny run's real logs and stores."""

import importlib.util
import json
import shutil

import h5py
import pytest

from conftest import REPO


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _module()


def test_every_stage_log_of_the_tiny_run_ends_with_a_usage_line_the_check_reads(tiny_run):
    workdir, _ = tiny_run
    for stage in gpu_check.STAGES:
        usage = gpu_check.stage_usage((workdir / "results" / "tiny" / "logs" / f"{stage}.log").read_text())
        assert usage is not None and usage["seconds"] > 0 and usage["peak_mib"] > 0, stage
    line = "12:00:00 INFO stage took 3.5 s, peak memory 812 MiB, peak CUDA memory 1024 MiB"
    assert gpu_check.stage_usage(line) == {"seconds": 3.5, "peak_mib": 812, "cuda_mib": 1024}
    assert gpu_check.stage_usage("no usage here") is None


def test_label_agreement_counts_the_pixels_that_differ(tiny_run, tmp_path):
    workdir, _ = tiny_run
    store = workdir / "results" / "tiny" / "pseudo_labels_train.h5"
    assert gpu_check.label_agreement(store, store) == 1.0
    changed = tmp_path / "changed.h5"
    shutil.copy(store, changed)
    with h5py.File(changed, "r+") as f:
        ids = json.loads(f.attrs["ids"])
        total = sum(f[i].size for i in ids)
        labels = f[ids[0]][()]
        labels[0, :4] = (labels[0, :4] + 1) % 4  # four pixels changed
        f[ids[0]][...] = labels
    assert gpu_check.label_agreement(store, changed) == pytest.approx(1 - 4 / total)


def test_weights_difference_is_zero_for_the_same_file_and_images_through_follows_the_config(tiny_run):
    workdir, _ = tiny_run
    weights = workdir / "results" / "tiny" / "classifier.weights.h5"
    assert gpu_check.weights_difference(weights, weights) == 0
    config = {"classifier": {"steps": 10, "batch_size": 4}, "affinity": {"epochs": 2, "batch_size": 8},
              "segmentation": {"epochs": 1, "batch_size": 8}}
    assert gpu_check.images_through("train_classifier", config, 24, 8) == 40
    assert gpu_check.images_through("train_affinity", config, 24, 8) == 48
    assert gpu_check.images_through("train_segmentation", config, 24, 8) == 24 + 32  # trains, then predicts both
    assert gpu_check.images_through("extract_cams", config, 24, 8) == 24
