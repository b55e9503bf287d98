"""Known-answer tests for the maths in wsss_steps.algorithms."""

import numpy as np
import pytest
import torch

from wsss_steps.lib import metrics
from wsss_steps.methods import affinitynet
from wsss_steps.methods import cam as cam_method
from wsss_steps.methods import random_walk as rw


def test_normalize_cam_relu_then_divide_by_class_max():
    cam = torch.tensor([[[0.0, 2.0], [-1.0, 4.0]], [[-3.0, -1.0], [0.5, 0.25]]])
    out = cam_method.normalize_cam(cam, eps=0.0)
    assert torch.allclose(out[0], torch.tensor([[0.0, 0.5], [0.0, 1.0]]))
    assert torch.allclose(out[1], torch.tensor([[0.0, 0.0], [1.0, 0.5]]))


def test_background_is_one_minus_max_to_the_alpha():
    cams = np.array([[[0.5, 0.0]], [[0.2, 0.9]]], np.float32)  # max over classes: 0.5, 0.9
    np.testing.assert_allclose(cam_method.background(cams, 2), [[0.25, 0.01]], rtol=1e-6)
    np.testing.assert_allclose(cam_method.background(cams, 1), [[0.5, 0.1]], rtol=1e-6)
    # no foreground class: everything is background
    np.testing.assert_array_equal(cam_method.background(np.zeros((0, 2, 3), np.float32), 4), np.ones((2, 3)))


def test_cam_labels_uses_fixed_threshold_and_class_ids():
    cams = np.array([[[0.1, 0.6, 0.3]], [[0.05, 0.7, 0.1]]], np.float32)
    assert cam_method.cam_labels(cams, [2, 5], 0.2).tolist() == [[0, 5, 2]]


def test_affinity_labels_without_crf():
    # one class; M = 0.9 (fg in both), 0.15 (neutral: bg under alpha_low, fg under alpha_high), 0.0 (bg)
    cam = np.array([[[0.9, 0.15, 0.0]]], np.float32)
    out = affinitynet.affinity_labels(cam, [3], alpha_low=4, alpha_high=24, crf=None)
    # alpha 4: bg = 0.85^4 = 0.52 > 0.15 -> bg (not fg); alpha 24: bg = 0.85^24 = 0.02 < 0.15 -> fg (not bg)
    assert out.tolist() == [[3, 255, 0]]


def test_pair_offsets_radius_5_gives_psa_34_half_plane_offsets():
    offsets = affinitynet.pair_offsets(5)
    assert len(offsets) == 34
    assert offsets[:4] == [(0, 1), (0, 2), (0, 3), (0, 4)]
    assert (1, -4) in offsets and (4, 0) in offsets and (3, 3) in offsets
    assert (4, 3) not in offsets  # 16 + 9 = 25 is not < 25
    assert all(dy > 0 or (dy == 0 and dx > 0) for dy, dx in offsets)
    assert len(set(offsets)) == 34
    assert len(affinitynet.pair_offsets(1)) == 0 and len(affinitynet.pair_offsets(2)) == 4


def test_pair_labels_on_a_row():
    labels = torch.tensor([[[1, 1, 0, 255, 2]]])
    pos_fg, pos_bg, neg = affinitynet.pair_labels(labels, [(0, 1)])
    # pairs: (1,1) fg+, (1,0) neg, (0,255) ignored, (255,2) ignored
    assert pos_fg.tolist() == [True, False, False, False]
    assert pos_bg.tolist() == [False, False, False, False]
    assert neg.tolist() == [False, True, False, False]
    pos_fg, pos_bg, neg = affinitynet.pair_labels(torch.tensor([[[0, 0, 2]]]), [(0, 1), (0, 2)])
    assert pos_bg.tolist() == [True, False, False] and neg.tolist() == [False, True, True]


def test_pair_affinities_are_exp_of_minus_mean_abs_difference():
    f = torch.zeros(1, 2, 1, 2)
    f[0, :, 0, 1] = torch.tensor([1.0, 3.0])  # mean |diff| = 2
    assert torch.allclose(affinitynet.pair_affinities(f, [(0, 1)]), torch.exp(torch.tensor([-2.0])))


def test_affinity_loss_sign_and_weighting():
    w = torch.tensor([0.5, 0.25, 0.8, 0.1])
    pos_fg = torch.tensor([True, True, False, False])
    pos_bg = torch.tensor([False, False, True, False])
    neg = torch.tensor([False, False, False, True])
    expected = (-(np.log(0.5) + np.log(0.25)) / 2) / 4 + (-np.log(0.8)) / 4 + (-np.log(0.9)) / 2
    assert affinitynet.affinity_loss(w, pos_fg, pos_bg, neg, eps=0.0).item() == pytest.approx(expected, rel=1e-6)
    # perfect affinities give zero loss; swapping positives and negatives makes it large
    perfect = torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert affinitynet.affinity_loss(perfect, pos_fg, pos_bg, neg, eps=0.0).item() == pytest.approx(0.0, abs=1e-6)
    assert affinitynet.affinity_loss(1 - perfect, pos_fg, pos_bg, neg).item() > 5
    # an empty pair set contributes nothing instead of NaN
    none = torch.zeros(4, dtype=torch.bool)
    assert affinitynet.affinity_loss(w, pos_fg, none, none, eps=0.0).item() == pytest.approx(-(np.log(0.5) + np.log(0.25)) / 8)


def test_transition_rows_sum_to_one():
    torch.manual_seed(0)
    aff = affinitynet.neighbour_affinity(torch.rand(4, 5, 6), radius=3)
    trans = rw.transition(aff, beta=8)
    assert torch.allclose(trans.sum(dim=0), torch.ones(5, 6), atol=1e-5)
    dense = rw.dense_transition(aff, beta=8, radius=3)
    assert torch.allclose(dense.sum(dim=1), torch.ones(30), atol=1e-5)


def test_random_walk_mass_stays_in_its_region():
    # two regions with very different features: left 3 columns, right 3 columns
    feats = torch.zeros(1, 4, 6)
    feats[0, :, 3:] = 20.0
    aff = affinitynet.neighbour_affinity(feats, radius=2)
    cams = torch.zeros(1, 4, 6)
    cams[0, 1, 1] = 1.0  # a seed in the left region
    out = rw.propagate(cams, aff, beta=1, t=50, radius=2)
    left, right = out[0, :, :3], out[0, :, 3:]
    assert right.max().item() < 1e-6
    assert left.min().item() > 0.01  # spread over the whole left region
    assert torch.allclose(left, torch.full_like(left, left.mean().item()), atol=1e-3)  # converged to its average


def _walk_by_dense_formula(cams, affinity, beta, t, radius):
    """T^t vec(M) with T the dense HW x HW matrix, one image (K, H, W)."""
    k, h, w = cams.shape
    dense = torch.linalg.matrix_power(rw.dense_transition(affinity, beta, radius), t)
    return (dense @ cams.reshape(k, -1).T).T.reshape(k, h, w)


@pytest.mark.parametrize("radius, beta, t, shape", [
    (1, 1, 3, (1, 4, 5)),      # radius 1: the only neighbour is the pixel itself, T = I
    (2, 1, 1, (2, 5, 7)),
    (3, 2, 5, (2, 5, 7)),
    (3, 8, 16, (3, 9, 11)),    # grid not a multiple of the tile, more than one tile
    (5, 8, 7, (4, 17, 10)),
    (4, 3, 0, (1, 6, 6)),      # t = 0 leaves the CAMs as they are
])
def test_sparse_walk_equals_dense_formula(radius, beta, t, shape):
    gen = torch.Generator().manual_seed(radius * 100 + t)
    k, h, w = shape
    feats = torch.rand(3, h, w, dtype=torch.float64, generator=gen) * 2
    cams = torch.rand(k, h, w, dtype=torch.float64, generator=gen)
    aff = affinitynet.neighbour_affinity(feats, radius=radius)
    walked = rw.propagate(cams, aff, beta=beta, t=t, radius=radius)
    assert walked.shape == cams.shape
    assert torch.allclose(walked, _walk_by_dense_formula(cams, aff, beta, t, radius), atol=1e-12)


def test_batched_walk_uses_each_images_own_transition():
    gen = torch.Generator().manual_seed(7)
    feats = torch.rand(3, 4, 9, 13, dtype=torch.float64, generator=gen) * 3
    cams = torch.rand(3, 2, 9, 13, dtype=torch.float64, generator=gen)
    aff = torch.stack([affinitynet.neighbour_affinity(f, radius=3) for f in feats])
    walked = rw.propagate(cams, aff, beta=4, t=9, radius=3)
    assert walked.shape == (3, 2, 9, 13)
    for b in range(3):
        assert torch.allclose(walked[b], _walk_by_dense_formula(cams[b], aff[b], 4, 9, 3), atol=1e-12)
    with pytest.raises(ValueError, match="does not fit"):
        rw.propagate(cams, aff[:2], beta=4, t=1, radius=3)
    with pytest.raises(ValueError, match="does not fit"):
        rw.propagate(cams, aff, beta=4, t=1, radius=2)


def test_sparse_transition_is_the_dense_matrix_block_diagonal_over_a_batch():
    gen = torch.Generator().manual_seed(3)
    aff = torch.stack([affinitynet.neighbour_affinity(torch.rand(2, 6, 7, dtype=torch.float64, generator=gen), radius=3)
                       for _ in range(3)])
    sparse = rw.sparse_transition(aff, beta=2, radius=3)
    # rows and columns: each image's 6 x 7 grid padded by radius - 1 = 2, so 10 x 11 per image
    assert sparse.layout == torch.sparse_csr and sparse.shape == (330, 330)
    image = torch.zeros(3, 10, 11, dtype=torch.bool)
    image[:, 2:8, 2:9] = True
    per_row = sparse.crow_indices().long().diff()
    assert torch.equal(per_row, image.flatten().long() * len(affinitynet.full_offsets(3)))  # N per pixel, none for padding
    columns, starts = sparse.col_indices().long(), sparse.crow_indices().long()[:-1][per_row > 0]
    new_row = torch.zeros(len(columns), dtype=torch.bool)
    new_row[starts] = True
    assert (columns.diff() > 0)[~new_row[1:]].all()  # columns strictly ascending within each row
    dense = sparse.to_dense()
    pixels = image.flatten().nonzero()[:, 0]
    expected = torch.block_diag(*[rw.dense_transition(a, beta=2, radius=3) for a in aff])
    assert torch.allclose(dense[pixels][:, pixels], expected, atol=1e-15)
    assert dense[:, ~image.flatten()].abs().max() == 0  # nothing flows in from the padding
    assert torch.allclose(dense.sum(dim=1)[pixels], torch.ones(126, dtype=torch.float64))  # rows of T sum to 1
    single = rw.sparse_transition(aff[0], beta=2, radius=3).to_dense()
    assert torch.allclose(single, dense[:110, :110], atol=1e-15)


def test_dense_transition_known_answer_and_plain_loop():
    # a 1 x 3 row at radius 2: neighbours are left, self, right; W(0,1) = 1, W(1,2) = exp(-ln 2) = 1/2
    aff = affinitynet.neighbour_affinity(torch.tensor([[[0.0, 0.0, np.log(2.0)]]], dtype=torch.float64), radius=2)
    dense = rw.dense_transition(aff, beta=1, radius=2)
    expected = torch.tensor([[1 / 2, 1 / 2, 0], [2 / 5, 2 / 5, 1 / 5], [0, 1 / 3, 2 / 3]], dtype=torch.float64)
    assert torch.allclose(dense, expected, atol=1e-12)
    # the vectorised construction equals a plain loop over pixels and offsets
    aff = affinitynet.neighbour_affinity(torch.rand(3, 4, 5, dtype=torch.float64), radius=3)
    trans = rw.transition(aff, beta=3)
    loop = torch.zeros(20, 20, dtype=torch.float64)
    for n, (dy, dx) in enumerate(affinitynet.full_offsets(3)):
        for y in range(4):
            for x in range(5):
                if 0 <= y + dy < 4 and 0 <= x + dx < 5:
                    loop[y * 5 + x, (y + dy) * 5 + x + dx] = trans[n, y, x]
    assert torch.equal(rw.dense_transition(aff, beta=3, radius=3), loop)


def test_batched_transition_rows_sum_to_one_and_constant_maps_stay_constant():
    aff = torch.stack([affinitynet.neighbour_affinity(torch.rand(4, 6, 5) * 4, radius=r) for r in (3, 3)])
    assert torch.allclose(rw.transition(aff, beta=8).sum(dim=1), torch.ones(2, 6, 5), atol=1e-5)
    # rows of T sum to 1, so T 1 = 1: a constant map is a fixed point of the walk, on a grid whose
    # dense T would take 160^4 * 4 bytes = 2.6 GB (the walk must never build it)
    aff = affinitynet.neighbour_affinity(torch.rand(2, 160, 160), radius=5)
    walked = rw.propagate(torch.full((2, 160, 160), 0.25), aff, beta=8, t=3, radius=5)
    assert torch.allclose(walked, torch.full_like(walked, 0.25), atol=1e-5)


def test_miou_from_hand_made_confusion_matrix():
    conf = np.array([[8, 2, 0], [1, 4, 0], [0, 0, 0]])
    iou = metrics.iou_per_class(conf)
    assert iou[0] == pytest.approx(8 / (8 + 2 + 1))
    assert iou[1] == pytest.approx(4 / (4 + 2 + 1))
    assert np.isnan(iou[2])
    assert metrics.mean_iou(conf) == pytest.approx((8 / 11 + 4 / 7) / 2)


def test_confusion_matrix_skips_ignore():
    gt = np.array([[0, 1, 255], [1, 1, 0]])
    pred = np.array([[0, 1, 1], [0, 1, 1]])
    conf = metrics.confusion_matrix(pred, gt, 2)
    assert conf.tolist() == [[1, 1], [1, 2]]


def test_affinity_labels_high_alpha_background_overrides_low_alpha_class():
    # a CRF that flips the second pixel to background in the high-alpha map only
    cam = np.array([[[0.9, 0.9]]], np.float32)

    def crf(probs):
        out = probs.copy()
        if probs[0, 0, 1] < 1e-20:  # the high-alpha map: (1 - 0.9)^24
            out[0, 0, 1] = 1.0
        return out

    assert affinitynet.affinity_labels(cam, [2], alpha_low=4, alpha_high=24, crf=crf).tolist() == [[2, 0]]


def test_diagnose_splits_pairs_by_ground_truth_and_oracle_walk_is_exact():
    from wsss_steps.diagnose import affinity_by_region, oracle_affinity

    labels = np.array([[0, 0, 1, 1]], np.uint8)
    aff = affinitynet.neighbour_affinity(torch.tensor([[[0.0, 0.0, 5.0, 5.0]]]), radius=2).numpy()
    parts = affinity_by_region(aff, labels, radius=2)
    # radius 2 neighbours on a row: left/right only; pairs (0,1) bg, (2,3) object, (1,2) cross, each both ways
    assert len(parts["background"]) == 2 and len(parts["object"]) == 2 and len(parts["cross"]) == 2
    np.testing.assert_allclose(parts["object"], 1.0) and np.testing.assert_allclose(parts["cross"], np.exp(-5.0))
    oracle = oracle_affinity(labels, radius=2)
    cams = torch.tensor([[[0.0, 0.0, 1.0, 0.0]]], dtype=torch.float64)
    walked = rw.propagate(cams, oracle, beta=1, t=30, radius=2)
    assert walked[0, 0, :2].abs().max() < 1e-12 and walked[0, 0, 2:].min() > 0.4
