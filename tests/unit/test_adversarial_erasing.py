"""Adversarial erasing (AE-PSL): erasing and the union on tiny arrays, the round jobs of the workflow, and the
early stop when a round's classifier no longer classifies the erased images.

The tests here run no workflow; those that do are in tests/workflow/test_adversarial_erasing_run.py.
"""


import numpy as np
import torch

from wsss_steps.methods.adversarial_erasing import erase, mined_region, prohibitive_labels, round_succeeded, union_map

DOWNSTREAM = {"make_affinity_labels": 1, "train_affinity": 1, "random_walk": 1, "train_segmentation": 1,
              "evaluate": 1, "figures": 1, "all": 1}


def test_erasing_fills_exactly_the_mined_pixels_with_the_mean_colour():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    cam = np.array([[[0.9, 0.2, 0.0], [0.6, 0.5, 0.1]],    # class a: > 0.5 at (0, 0) and (1, 0)
                    [[0.0, 0.0, 0.7], [0.0, 0.0, 0.0]]])   # class b: > 0.5 at (0, 2)
    region = mined_region(cam, 0.5)
    assert region.tolist() == [[True, False, True], [True, False, False]]  # 0.5 itself is not above delta
    out = erase(image, region, (10.4, 20.6, 30.0))
    assert (out[region] == [10, 21, 30]).all() and (out[~region] == image[~region]).all()
    assert mined_region(np.zeros((0, 2, 3)), 0.5).sum() == 0  # an image without classes mines nothing


def test_the_union_of_mined_regions_grows_monotonically_over_rounds():
    rng = np.random.default_rng(0)
    union, regions = None, []
    for _ in range(4):
        union = union_map(union, rng.random((2, 5, 5)))
        regions.append(mined_region(union, 0.7))
    for before, after in zip(regions, regions[1:]):
        assert (after >= before).all()
    assert regions[-1].sum() > regions[0].sum()


def test_a_round_succeeds_while_its_mean_recall_reaches_min_recall():
    assert round_succeeded({"a": {"recall": 0.8}, "b": {"recall": 0.4}}, 0.6)
    assert not round_succeeded({"a": {"recall": 0.8}, "b": {"recall": 0.3}}, 0.6)
    assert not round_succeeded({"a": {"recall": None}}, 0.1) and not round_succeeded({}, 0.1)


def test_prohibitive_labels_weigh_the_scores_by_one_for_background_and_v_for_each_class():
    f = torch.tensor([[[[0.5, 0.2]],    # background
                       [[0.3, 0.5]],    # class 1
                       [[0.2, 0.3]]]])  # class 2
    # v = (0.9, 0): pixel 0 keeps background (0.5 > 0.27); pixel 1 goes to class 1 (0.45 > 0.2); class 2 prohibited
    assert prohibitive_labels(f, torch.tensor([[0.9, 0.0]])).tolist() == [[[0, 1]]]
    # v = (0.1, 1): class 1 weighs 0.03 / 0.05, so class 2 wins pixel 1 (0.3 > 0.2 > 0.05)
    assert prohibitive_labels(f, torch.tensor([[0.1, 1.0]])).tolist() == [[[0, 2]]]
