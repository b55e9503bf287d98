"""Health checks: known answers for their maths, and each kind of collapse seeded on tiny data must be named.

The seeded collapses run the real stages on the tiny run's artifacts: a walk whose background drowns every
class (psa's background map with alpha far below 1), and a segmentation net trained on pseudo-labels that are
background everywhere (it predicts one class). Each must leave a WARNING naming the stage and the classes in
its log and artifact, and evaluate must carry it into the summary and fail under evaluate.strict.

The tests here run no workflow; those that do are in tests/workflow/test_health_run.py.
"""

import json

import h5py
import numpy as np
import torch

from wsss_steps.lib import health
from wsss_steps.methods.affinitynet import full_offsets
from wsss_steps.methods.random_walk import propagate, scores_at_stride, threshold_labels, walk_labels
from wsss_steps.train_segmentation import prediction_health
from wsss_steps.lib.training import schedule



def test_precision_recall_by_hand():
    predicted = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], bool)
    target = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], bool)
    precision, recall = health.precision_recall(predicted, target)
    assert precision.tolist() == [0.5, 1.0]  # class 0: TP 1 of 2 predicted; class 1: 2 of 2
    assert recall.tolist() == [0.5, 1.0]  # class 0: 1 of 2 labelled; class 1: 2 of 2


def test_survival_and_tally():
    assert health.survived(10, 100) and not health.survived(9, 100)  # share 0.1
    tally = health.Tally()
    for cls, ok in [(1, True), (1, False), (1, True), (1, True), (2, False)]:
        tally.add(cls, ok)
    assert tally.rates(["background", "cat", "dog"]) == {"cat": {"rate": 0.75, "images": 4},
                                                         "dog": {"rate": 0.0, "images": 1}}
    warnings = health.low_rates("random_walk", "survival", tally.rates(["background", "cat", "dog"]),
                                health.MIN_SURVIVAL, "random_walk.alpha", "the walk erases the class")
    assert [(w["class"], w["stage"]) for w in warnings] == [("cat", "random_walk"), ("dog", "random_walk")]
    assert "random_walk: the walk erases the class (class 'dog': 0.00" in warnings[1]["message"]


def test_whole_image_by_hand():
    assert health.covers_image(90, 100) and not health.covers_image(89, 100)  # share 0.9
    rates = {"cat": {"rate": 0.5, "images": 4}, "dog": {"rate": 0.75, "images": 4}}
    warnings = health.whole_image_warnings("extract_cams", rates, "classifier.method")
    assert [(w["class"], w["check"]) for w in warnings] == [("dog", "whole_image")]  # above 0.5 only
    assert "covers the whole image in most of its images" in warnings[0]["message"]


def test_walk_growth_by_hand():
    cam = np.array([[0, 0, 1, 1],
                    [0, 0, 1, 1]])
    walk = np.array([[0, 1, 1, 1],
                     [1, 1, 1, 0]])
    confident = np.array([[0, 0, 255, 1],
                          [0, 255, 1, 0]])
    # class 1: 6 walked pixels; 3 of them were CAM background ((0,1), (1,0), (1,1)); of those, (0,1) and (1,0)
    # are confident background in the affinity labels
    assert health.walk_growth(cam, walk, confident, [1]) == {1: {"walk": 6, "moved": 3, "onto_background": 2}}
    assert health.walk_growth(cam, walk, None, [1])[1]["onto_background"] is None
    assert health.grew(9, 4) and not health.grew(8, 4) and health.grew(1, 0) and not health.grew(0, 0)
    share = health.PixelShare()
    share.add(1, 2, 6)
    share.add(1, 1, 4)
    share.add(2, 0, 0)
    assert share.rates(["background", "cat", "dog"]) == {"cat": {"rate": 0.3, "images": 2},
                                                          "dog": {"rate": 0.0, "images": 1}}
    warnings = health.confident_background_warnings({"cat": {"rate": 0.3, "images": 2}, "dog": {"rate": 0.2, "images": 1}})
    assert [(w["class"], w["check"], w["stage"]) for w in warnings] == [("cat", "confident_background", "random_walk")]
    assert "random_walk.beta / random_walk.t" in warnings[0]["message"]


def test_a_walk_with_affinities_of_one_spreads_the_class_over_confident_background():
    """refine on features that are equal everywhere (affinity exp(0) = 1): the walked map is flat, so the class
    takes every pixel, the confident background of the affinity labels included, and the check fires."""
    from wsss_steps.methods.random_walk import refine

    class Flat(torch.nn.Module):
        backbone = type("Backbone", (), {"stride": 8})()

        def forward(self, x):
            return torch.zeros(1, 4, x.shape[-2] // 8, x.shape[-1] // 8)

    cam = np.zeros((1, 32, 32), np.float32)
    cam[0, 8:24, 8:24] = 1.0  # the object in the middle
    confident = np.zeros((32, 32), np.uint8)  # affinity labels: the object, confident background around it
    confident[8:24, 8:24] = 1
    labels = refine(Flat(), torch.zeros(3, 32, 32), cam, [1], alpha=16, beta=8, t=64, radius=3, stride=8,
                    background="threshold", bg_threshold=0.5)
    assert (labels == 1).all()
    moved = health.walk_growth(health_cam_labels(cam), labels, confident, [1])[1]
    assert moved == {"walk": 1024, "moved": 768, "onto_background": 768}
    share = health.PixelShare()
    share.add(1, moved["onto_background"], moved["walk"])
    assert [w["class"] for w in health.confident_background_warnings(share.rates(["background", "horse"]))] == ["horse"]


def health_cam_labels(cam):
    from wsss_steps.methods.cam import cam_labels

    return cam_labels(cam, [1], health.CAM_THRESHOLD)


def test_a_check_an_artifact_predates_is_listed_as_not_run_not_passed():
    from wsss_steps.evaluate import health_markdown, health_section

    def attrs(figures):
        return {"health": json.dumps({"figures": figures, "warnings": []})}

    rates = {"cat": {"rate": 1.0, "images": 4}}
    stores = {"extract_cams": attrs({"confident_share": rates}),  # made before the whole-image check
              "random_walk": attrs({"survival": rates, "whole_image_share": rates, "growth": rates,
                                          "confident_background": rates}),
              "train_segmentation": {}}  # made before any check
    section = health_section(stores)
    assert section["unchecked"] == ["extract_cams (whole_image_share)", "train_segmentation"]
    text = health_markdown(section)
    assert "All checks passed" not in text and "extract_cams (whole_image_share)" in text
    assert health_section({"random_walk": stores["random_walk"]})["unchecked"] == []
    assert "All checks passed" in health_markdown(health_section({"random_walk": stores["random_walk"]}))


def test_cams_covering_the_whole_image_are_named(tmp_path):
    """extract's health on a stub classifier: one class's map is flat (it wins the whole image), the other's a square."""
    from types import SimpleNamespace

    from wsss_steps.extract_cams import extract

    class Stub(torch.nn.Module):
        backbone = SimpleNamespace(stride=1)

    def maps(model, batch, index):  # index 0 (class 1): flat; index 1 (class 2): a 4 x 4 square
        out = torch.zeros(batch.shape[0], len(index), *batch.shape[-2:])
        for k, i in enumerate(index.tolist()):
            if i == 0:
                out[:, k] = 1.0
            else:
                out[:, k, 2:6, 2:6] = 1.0
        return out

    layout = SimpleNamespace(classes=["background", "cat", "dog"],
                             image=lambda image_id: np.full((8, 10, 3), 128, np.uint8))
    table = {"a": [1], "b": [1], "c": [2], "d": [2]}
    with h5py.File(tmp_path / "cams.h5", "w") as store:
        extract(Stub(), layout, list(table), table, [1.0], False, "cpu", store, maps=maps)
        record = health.read(store.attrs)
    assert record["figures"]["whole_image_share"] == {"cat": {"rate": 1.0, "images": 2}, "dog": {"rate": 0.0, "images": 2}}
    assert [(w["stage"], w["class"]) for w in record["warnings"]] == [("extract_cams", "cat")]
    assert "most likely at fault: the classifier's method" in record["warnings"][0]["message"]


def test_threshold_labels_by_hand():
    walked = torch.tensor([[[0.0, 2.0, 8.0]], [[1.0, 0.1, 0.0]]])  # class 5 peaks at 8, class 7 at 1
    # rescaled: class 5 -> 0, 0.25, 1; class 7 -> 1, 0.1, 0; background 0.3
    assert threshold_labels(walked, [5, 7], 0.3).tolist() == [[7, 0, 5]]


def test_threshold_background_keeps_a_class_that_the_power_background_drowns():
    """A small object in a large background, walked with affinities that join everything: psa's walked
    background covers the object (the class is erased); walking the classes only keeps it."""
    h = w = 8
    cams = np.zeros((1, h, w), np.float32)
    cams[0, 3:5, 3:5] = [[1.0, 0.6], [0.6, 0.3]]
    radius = 2
    affinity = torch.ones(len(full_offsets(radius)), h, w)
    power = walk_labels(scores_at_stride(cams, 16, 1, (h, w)), affinity, [3], 8, 32, radius, (h, w), (h, w))
    assert not (power == 3).any()
    threshold = walk_labels(scores_at_stride(cams, None, 1, (h, w)), affinity, [3], 8, 32, radius, (h, w), (h, w),
                            bg_threshold=0.25)
    assert (threshold == 3).any() and (threshold == 0).any()


def test_propagate_keeps_each_class_mass_apart():
    """Walking the classes without a background row is the same walk, class by class."""
    torch.manual_seed(0)
    cams = torch.rand(2, 5, 6)
    affinity = torch.rand(len(full_offsets(2)), 5, 6)
    both = propagate(cams, affinity, 4, 3, 2)
    one = propagate(cams[1:], affinity, 4, 3, 2)
    assert torch.allclose(both[1:], one)


def test_schedule_in_steps_does_not_follow_the_dataset_size():
    assert schedule({"epochs": 3}, 10) == (3, 30)
    assert schedule({"steps": 25}, 10) == (3, 25)
    assert schedule({"steps": 25}, 100) == (1, 25)


def test_prediction_health_names_a_class_never_predicted():
    class Layout:
        classes = ["background", "cat", "dog"]
        num_classes = 3

    labels = {"a": np.array([[0, 1], [2, 255]], np.uint8)}
    predicted = {"train": np.array([4, 0, 0]), "val": np.array([10, 0, 2])}
    figures, warnings = prediction_health(Layout, labels, predicted)
    assert figures["pseudo_label_share"] == {"background": round(1 / 3, 4), "cat": round(1 / 3, 4),
                                             "dog": round(1 / 3, 4)}
    named = {(w["check"], w["class"]) for w in warnings}
    assert named == {("predicted_vs_pseudo", "cat"), ("predicted_vs_pseudo", "dog"), ("never_predicted_val", "cat")}
