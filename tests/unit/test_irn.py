"""IRN's building blocks (wsss_steps/methods/irn.py) against answers worked out by hand and against irn's own formulas,
transcribed here from jiwoon-ahn/irn at a2ece00 (file and line in each comment)."""

import math

import numpy as np
import torch

from wsss_steps.methods.affinitynet import pair_offsets
from wsss_steps.methods.irn import boundary_affinities, boundary_loss, segment_cells, transition_matrix, walk_labels


def irn_path_cells(dy, dx):
    """misc/indexing.py:38-46: the cells of the box of (0, 0) and dir = (dy, dx) with
    dist_sq = (dir[0] * x - dir[1] * y) ** 2 / length_sq < 1."""
    length_sq = dy ** 2 + dx ** 2
    return sorted((y, x) for y in range(min(0, dy), max(0, dy) + 1) for x in range(min(0, dx), max(0, dx) + 1)
                  if (dy * x - dx * y) ** 2 / length_sq < 1)


def test_a_pair_s_path_is_the_cells_its_segment_crosses():
    assert segment_cells(0, 2) == [(0, 0), (0, 1), (0, 2)]
    assert sorted(segment_cells(1, 1)) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # each off-diagonal cell at 1/2 < 1
    assert sorted(segment_cells(1, -2)) == [(0, -2), (0, -1), (0, 0), (1, -2), (1, -1), (1, 0)]  # 0.8, 0.2, 0
    # (2, 3): (2x - 3y)^2 / 13 below 1 except at (0,2) 16/13, (0,3) 36/13, (2,0) 36/13, (2,1) 16/13
    assert sorted(segment_cells(2, 3)) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3)]
    for dy, dx in pair_offsets(5):  # irn's search directions at radius 5 (misc/indexing.py:24-31)
        assert sorted(segment_cells(dy, dx)) == irn_path_cells(dy, dx), (dy, dx)
    # irn: (0, x) for x < r, then y = 1 .. r-1 with x * x + y * y < r ** 2 (misc/indexing.py:24-31)
    assert pair_offsets(2) == [(0, 1), (1, -1), (1, 0), (1, 1)]


def test_a_straight_boundary_cuts_the_affinities_of_the_pairs_that_cross_it():
    boundary = np.zeros((3, 4))
    boundary[:, 2] = 1.0  # a vertical boundary in column 2
    a = boundary_affinities(boundary, radius=2)
    right, down_left, down, down_right = a  # offsets (0,1), (1,-1), (1,0), (1,1)
    assert right[:, 0].tolist() == [1.0, 1.0, 1.0]  # (y,0)->(y,1): the path misses column 2
    assert right[:, 1].tolist() == [0.0, 0.0, 0.0]  # (y,1)->(y,2) ends on the boundary
    assert right[:, 3].tolist() == [0.0, 0.0, 0.0]  # (y,3)->(y,4) leaves the image
    assert down[:2, 0].tolist() == [1.0, 1.0] and down[2, 0] == 0.0  # the last row's pair leaves the image
    assert down[0, 2] == 0.0 and down_right[0, 0] == 1.0 and down_right[0, 1] == 0.0 and down_left[0, 3] == 0.0
    soft = boundary_affinities(np.full((2, 2), 0.25), radius=2)
    assert soft[0, 0, 0] == 0.75  # 1 - max B along the path


def test_the_boundary_loss_is_irn_s():
    affinity = torch.tensor([0.9, 0.2, 0.6, 0.99])
    fg, bg, neg = (torch.tensor(v, dtype=torch.float32) for v in ([1, 0, 0, 0], [0, 0, 1, 1], [0, 1, 0, 0]))
    # net/resnet50_irn.py:206-207 and step/train_irn.py:58-61, 69 (the displacement terms left out)
    pos_aff = [-math.log(a + 1e-5) for a in affinity.tolist()]
    neg_aff = [-math.log(1.0 + 1e-5 - a) for a in affinity.tolist()]
    bg_pos = (pos_aff[2] + pos_aff[3]) / (2 + 1e-5)
    fg_pos = pos_aff[0] / (1 + 1e-5)
    neg_loss = neg_aff[1] / (1 + 1e-5)
    expected = (bg_pos / 2 + fg_pos / 2 + neg_loss) / 2
    assert math.isclose(boundary_loss(affinity, fg, bg, neg).item(), expected, rel_tol=1e-6)
    # no pair of a kind: that term is 0, not NaN
    assert math.isclose(boundary_loss(affinity, fg * 0, bg, neg).item(), (bg_pos / 2 + neg_loss) / 2, rel_tol=1e-6)


def test_the_walk_is_irn_s_transition_matrix_and_background_threshold():
    # misc/indexing.py:133-137: T = A^beta / column sums, squared exp_times times
    a = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.5], [0.0, 0.5, 1.0]])
    scaled = a ** 2
    step = scaled / scaled.sum(axis=0, keepdims=True)
    assert np.allclose(transition_matrix(a, beta=2, exp_times=3), np.linalg.matrix_power(step, 8))
    assert np.allclose(transition_matrix(a, beta=2, exp_times=0), step)
    # misc/indexing.py:162 (x * (1 - edge)), step/make_sem_seg_labels.py:44-47 (rw / max, bg channel, argmax)
    cams = np.array([[[0.9, 0.1, 0.0]]]).reshape(1, 1, 3)
    boundary = np.array([[0.0, 0.0, 0.0]])
    identity = np.eye(3)
    assert walk_labels(cams, boundary, identity, bg_threshold=0.25).tolist() == [[1, 0, 0]]  # 0.1/0.9 < 0.25
    apart = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])  # pixel 2 cut off by a boundary
    walked = walk_labels(cams, boundary, transition_matrix(apart, beta=1, exp_times=4), bg_threshold=0.25)
    assert walked.tolist() == [[1, 1, 0]]  # the walk spreads the class to its neighbour, not across the cut
    assert walk_labels(cams, np.array([[1.0, 0.0, 0.0]]), identity, 0.25).tolist() == [[0, 1, 0]]  # B = 1 erases
