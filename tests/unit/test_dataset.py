"""The built-in dataset generator and the VOC-layout reader."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from wsss_steps.data import DatasetError, VOCLayout
from wsss_steps.data.synthetic import generate, make_image

CLASSES = ["background", "kite", "bug", "boat"]


def _digest(root: Path):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    generate(tmp_path / "a", CLASSES, 48, 6, 3, seed=7)
    generate(tmp_path / "b", CLASSES, 48, 6, 3, seed=7)
    generate(tmp_path / "c", CLASSES, 48, 6, 3, seed=8)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    assert a != c
    assert "ImageSets/Segmentation/train.txt" in a and "SaliencyMaps/val_00002.png" in a


def test_several_processes_write_the_same_files_as_one(tmp_path):
    generate(tmp_path / "one", CLASSES, 48, 6, 3, seed=7)
    generate(tmp_path / "two", CLASSES, 48, 6, 3, seed=7, jobs=2)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")


def test_generated_tree_reads_as_voc(tmp_path):
    generate(tmp_path / "ds", CLASSES, 64, 40, 4, seed=0)
    layout = VOCLayout(tmp_path / "ds", tuple(CLASSES))
    ids = layout.ids("train")
    assert len(ids) == 40 and len(layout.ids("val")) == 4
    table = layout.label_table("train")
    counts = [len(v) for v in table.values()]
    assert 0 in counts and max(counts) >= 2  # empty images and multi-object images both occur
    # the labels come from VOC-style annotations (cheap at VOC scale) and name exactly the mask's classes
    assert layout.label_source() == "annotations"
    assert table == {i: layout.labels_from_mask(i) for i in ids}
    for image_id in ids[:5]:
        assert layout.image(image_id).shape == (64, 64, 3)
        mask = layout.mask(image_id)
        assert set(np.unique(mask)) <= {0, 1, 2, 3, 255}


def test_objects_have_a_small_mark_on_a_large_body():
    rng = np.random.default_rng(3)
    mark_pixels = object_pixels = 0
    for _ in range(20):
        image, mask, sal, _ = make_image(rng, 128, 4, empty_rate=0.0)
        assert (mask == 255).any()  # void band on borders
        fg = (mask > 0) & (mask < 255)
        assert fg.any()
        # marks are painted in bright class colours; body colours never reach 200 in any channel
        mark_pixels += int((image.max(axis=-1) > 200)[fg].sum())
        object_pixels += int(fg.sum())
        assert sal.shape == mask.shape and sal.dtype == np.uint8
    assert 0.02 < mark_pixels / object_pixels < 0.35


def test_boat_co_occurs_with_water():
    rng = np.random.default_rng(0)
    with_boat = without_boat = water_with = water_without = 0
    for _ in range(150):
        image, mask, _, _ = make_image(rng, 64, 4)
        bottom = image[-3:].reshape(-1, 3).mean(0)
        water = bottom[2] > bottom[0] + 60  # strongly blue bottom rows
        if (mask == 3).any():
            with_boat += 1
            water_with += water
        else:
            without_boat += 1
            water_without += water
    assert water_with / with_boat > 2 * water_without / without_boat


def test_missing_list_and_image_name_the_file(tmp_path):
    layout = VOCLayout(tmp_path, tuple(CLASSES))
    with pytest.raises(DatasetError, match="train.txt"):
        layout.ids("train")
    with pytest.raises(DatasetError, match="nope.jpg"):
        layout.image("nope")
