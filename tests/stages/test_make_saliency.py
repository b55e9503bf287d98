"""make_saliency: OpenCV's static saliency for EPS where a dataset ships no saliency maps."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fake_voc import VOC_CLASSES, write_fake_voc
from wsss_steps.data import VOCLayout
from wsss_steps.make_saliency import static_saliency

HORSE_STREET = Path(__file__).resolve().parents[3] / "shared" / "data" / "horse-street"


def _square_on_grey(h=96, w=128):
    image = np.full((h, w, 3), 120, np.uint8)
    image[36:60, 52:76] = (250, 30, 30)  # one red square: the only thing that stands out
    return image


@pytest.mark.parametrize("method", ["spectral_residual", "fine_grained"])
def test_a_lone_square_is_the_salient_part_and_the_map_spans_0_to_255(method):
    image = _square_on_grey()
    saliency = static_saliency(image, method)
    assert saliency.shape == image.shape[:2] and saliency.dtype == np.uint8
    assert saliency.min() == 0 and saliency.max() == 255
    near = np.zeros(image.shape[:2], bool)
    near[30:66, 46:82] = True  # the square and a 6 px ring: the edge is what both methods respond to
    assert saliency[near].mean() > 3 * saliency[~near].mean()


def _stage(root, out, *extra):
    dataset = {"name": "v", "root": str(root), "classes": list(VOC_CLASSES), "ignore_index": 255,
               "train_split": "train", "val_split": "val"}
    cmd = [sys.executable, "-m", "wsss_steps.make_saliency", "--dataset", json.dumps(dataset), "--splits", "train",
           "--threads", "1", "--out", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # a hang guard


def test_the_stage_writes_one_map_per_image_in_the_layout_eps_reads(tmp_path):
    lists = write_fake_voc(tmp_path / "VOC2012", n_train=3)
    out = tmp_path / "run" / "saliency"
    proc = _stage(tmp_path / "VOC2012", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    layout = VOCLayout(tmp_path / "VOC2012", VOC_CLASSES, saliency_dir=str(out))
    for image_id in lists["train"]:
        assert layout.saliency(image_id).shape == layout.image_size(image_id)
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(lists["train"])
    assert json.loads((out / "provenance.json").read_text())["method"] == "spectral_residual"
    assert not list(tmp_path.joinpath("run").glob(".*tmp"))
    assert _stage(tmp_path / "VOC2012", out, "--method", "fine_grained").returncode == 0  # its own folder: replaced


def test_the_stage_never_replaces_a_folder_it_did_not_write(tmp_path):
    write_fake_voc(tmp_path / "VOC2012", n_train=2)
    mine = tmp_path / "my_maps"
    mine.mkdir()
    (mine / "keep.png").write_bytes(b"user data")
    proc = _stage(tmp_path / "VOC2012", mine)
    assert proc.returncode == 1 and "was not written by make_saliency" in proc.stderr
    assert (mine / "keep.png").read_bytes() == b"user data"


@pytest.mark.skipif(not HORSE_STREET.is_dir(), reason="../shared/data/horse-street is not on this machine")
def test_on_real_horse_photos_the_horse_is_more_salient_than_its_background():
    layout = VOCLayout(HORSE_STREET, ("background", "horse"))
    labels = layout.label_table("train")  # read once: it reads every mask of the split
    ids = [i for i in layout.ids("train") if 1 in labels[i]][:20]
    inside, outside = [], []
    for image_id in ids:
        saliency, mask = static_saliency(layout.image(image_id), "spectral_residual"), layout.mask(image_id)
        inside.append(saliency[mask == 1].mean())
        outside.append(saliency[mask == 0].mean())
    assert np.mean(inside) > 1.2 * np.mean(outside), (np.mean(inside), np.mean(outside))
