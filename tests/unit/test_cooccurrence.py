"""EPS's confusion ratio: the counts on tiny arrays, the context masks, the config check and the tiny run's summary.

The tests here run no workflow; those that do are in tests/workflow/test_cooccurrence_run.py.
"""

import math

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import TINY
from wsss_steps.lib.config import ConfigError, validate_config
from wsss_steps.data import VOCLayout
from wsss_steps.data.synthetic import make_image
from wsss_steps.data.voc import DatasetError
from wsss_steps.lib.metrics import confusion_counts, confusion_ratio


def test_confusion_ratio_counts_context_pixels_predicted_as_the_class_over_its_true_positives():
    gt = np.array([[3, 3, 0, 0]])
    pred = np.array([[3, 0, 3, 3]])
    water = np.array([[False, False, True, True]])
    assert confusion_counts(pred, gt, water, 3) == (2, 1)  # two water pixels called boat, one boat pixel right
    assert confusion_ratio(2, 1) == 2.0
    assert confusion_counts(np.zeros_like(pred), gt, water, 3) == (0, 0) and math.isnan(confusion_ratio(0, 0))


def test_the_generator_marks_the_water_band_around_boats(tmp_path):
    rng = np.random.default_rng(3)
    found = False
    for _ in range(20):
        _, mask, _, water = make_image(rng, 64, 4, empty_rate=0.0)
        assert not (water.astype(bool) & (mask != 0)).any()  # water is background, never an object or void
        found |= bool(water.any())
    assert found


def test_a_context_is_a_class_or_a_folder_and_a_missing_one_is_named(tmp_path):
    root = tmp_path / "d"
    for sub in ("JPEGImages", "SegmentationClass", "ContextMasks/water"):
        (root / sub).mkdir(parents=True)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(root / "JPEGImages" / "a.jpg")
    Image.fromarray(np.array([[0, 1, 1], [0, 0, 1]], np.uint8)).save(root / "SegmentationClass" / "a.png")
    Image.fromarray(np.array([[255, 0, 0], [255, 0, 0]], np.uint8)).save(root / "ContextMasks" / "water" / "a.png")
    layout = VOCLayout(root, ("background", "boat"))
    assert layout.context("a", "water").tolist() == [[True, False, False], [True, False, False]]
    assert layout.context("a", "boat").tolist() == [[False, True, True], [False, False, True]]
    with pytest.raises(DatasetError, match=r"ContextMasks/sky/a\.png: context mask not found"):
        layout.context("a", "sky")


def test_a_pair_naming_an_unknown_class_stops_the_config():
    config = yaml.safe_load(TINY.read_text())
    config["dataset"]["cooccurrence"] = [{"class": "train", "context": "water"}]
    with pytest.raises(ConfigError, match="dataset.cooccurrence.*'train' is not a class"):
        validate_config(config)
