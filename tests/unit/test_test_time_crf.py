"""Dense-CRF post-processing of the segmentation network's predictions (evaluate.crf): known answers and the summary.

The tests here run no workflow; those that do are in tests/workflow/test_test_time_crf_run.py.
"""


import numpy as np

from wsss_steps.methods.crf import crf_labels, label_probs

CRF = dict(iterations=10, gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=20, bilateral_srgb=13, bilateral_compat=10)


def test_label_probs_put_gt_prob_on_the_predicted_class_and_share_the_rest():
    labels = np.array([[0, 2], [2, 5]])
    p = label_probs(labels, [0, 2, 5], 0.7)
    assert p.shape == (3, 2, 2)
    np.testing.assert_allclose(p[:, 0, 1], [0.15, 0.7, 0.15])
    np.testing.assert_allclose(p[:, 1, 1], [0.15, 0.15, 0.7])
    np.testing.assert_allclose(p.sum(0), 1.0)


def _two_halves(h=40, w=60):
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = (30, 30, 30)
    image[:, w // 2:] = (220, 200, 40)
    truth = np.zeros((h, w), np.uint8)
    truth[:, w // 2:] = 7
    return image, truth


def test_crf_removes_isolated_wrong_pixels_and_keeps_a_prediction_that_follows_the_edges():
    image, truth = _two_halves()
    assert np.array_equal(crf_labels(image, truth, 0.7, **CRF), truth)
    noisy = truth.copy()
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(0, 40, 12), rng.integers(0, 60, 12)
    noisy[ys, xs] = np.where(noisy[ys, xs] == 7, 0, 7)  # 12 pixels flipped to the other class
    assert not np.array_equal(noisy, truth)
    assert np.array_equal(crf_labels(image, noisy, 0.7, **CRF), truth)


def test_crf_of_a_single_class_prediction_is_that_prediction():
    image, _ = _two_halves()
    only = np.full((40, 60), 3, np.uint8)
    assert np.array_equal(crf_labels(image, only, 0.7, **CRF), only)
