"""SEC (segmentation.method: sec): seed, expand and constrain losses on hand-made arrays, and the stage on the tiny run.

The tests here run no workflow; those that do are in tests/workflow/test_sec_run.py.
"""

import math

import numpy as np
import pytest
import torch

from wsss_steps.methods.sec import constrain_loss, crf_of, expand_loss, gwrp, seed_loss


def test_global_weighted_rank_pooling_is_the_mean_at_d_1_the_max_as_d_goes_to_0_and_weights_ranks():
    scores = torch.tensor([[[0.1, 0.9], [0.4, 0.2]]])
    assert gwrp(scores, 1.0).item() == pytest.approx(0.4)  # (0.1 + 0.9 + 0.4 + 0.2) / 4
    assert gwrp(scores, 1e-9).item() == pytest.approx(0.9)
    # d = 0.5: sorted 0.9, 0.4, 0.2, 0.1 weighted 1, 0.5, 0.25, 0.125 over 1.875
    assert gwrp(scores, 0.5).item() == pytest.approx((0.9 + 0.2 + 0.05 + 0.0125) / 1.875)


def test_seed_loss_averages_minus_log_f_over_each_images_seeds_and_skips_images_without_seeds():
    probs = torch.tensor([[[[0.8, 0.5], [0.3, 0.6]],
                           [[0.2, 0.5], [0.7, 0.4]]]])  # (1, K=2, 2, 2), background at 0
    seeds = torch.tensor([[[0, 255], [1, 255]]])
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert seed_loss(probs.log(), seeds).item() == pytest.approx(expected)
    two = torch.cat([probs, probs]).log()
    no_seeds = torch.full((1, 2, 2), 255)
    assert seed_loss(two, torch.cat([seeds, no_seeds])).item() == pytest.approx(expected)


def test_expand_loss_pools_present_classes_absent_classes_and_background_by_hand():
    probs = torch.tensor([[[[0.5, 0.5]],   # background
                           [[0.5, 0.1]],   # class 1, present
                           [[0.0, 0.4]]]])  # class 2, absent
    present = torch.tensor([[1.0, 0.0]])
    loss = expand_loss(probs, present, d_fg=1.0, d_absent=0.0, d_bg=1.0, eps=0.0)
    # -log mean(0.5, 0.1) - log(1 - max(0, 0.4)) - log mean(0.5, 0.5)
    assert loss.item() == pytest.approx(-math.log(0.3) - math.log(0.6) - math.log(0.5))


def test_constrain_loss_is_zero_when_the_prediction_equals_its_crf_and_positive_otherwise():
    f = torch.tensor([[[[0.7, 0.2]], [[0.3, 0.8]]]])
    assert constrain_loss(f, f.clone()).item() == pytest.approx(0.0, abs=1e-6)
    q = torch.tensor([[[[0.9, 0.1]], [[0.1, 0.9]]]])
    expected = np.mean([0.9 * math.log(0.9 / 0.7) + 0.1 * math.log(0.1 / 0.3),
                        0.1 * math.log(0.1 / 0.2) + 0.9 * math.log(0.9 / 0.8)])
    assert constrain_loss(f, q).item() == pytest.approx(expected, rel=1e-4)


def test_the_crf_of_a_prediction_follows_the_image_edges():
    image = np.zeros((1, 8, 8, 3), np.uint8)
    image[0, :, 4:] = 255  # a sharp edge down the middle
    probs = np.full((1, 2, 8, 8), 0.5, np.float32)
    probs[0, 1, :, :3], probs[0, 0, :, :3] = 0.1, 0.9  # left confident background, undecided elsewhere
    probs[0, 1, :, 5:], probs[0, 0, :, 5:] = 0.9, 0.1  # right confident class 1
    crf = {"iterations": 5, "gaussian_sxy": 1, "gaussian_compat": 3, "bilateral_sxy": 4, "bilateral_srgb": 13,
           "bilateral_compat": 10}
    q = crf_of(image, probs, crf)
    assert q.shape == probs.shape
    assert (q[0, 0, :, 3] > 0.5).all() and (q[0, 1, :, 4] > 0.5).all()  # the undecided columns join their side
