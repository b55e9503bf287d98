"""IRN's building blocks (wsss_steps/methods/irn.py) against answers worked out by hand and against irn's own formulas,
transcribed here from jiwoon-ahn/irn at a2ece00 (file and line in each comment)."""

import math

import numpy as np
import torch

from wsss_steps.methods import irn
from wsss_steps.methods.affinitynet import affinity_labels, full_offsets, pair_labels, pair_offsets
from wsss_steps.methods.irn import boundary_affinities, boundary_loss, segment_cells, transition_matrix, walk_labels
from wsss_steps.methods.random_walk import dense_transition
from wsss_steps.nets.boundary import BoundaryNet, build_boundary_net


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


def test_the_training_affinities_are_the_reference_ones_over_the_pairs_inside_the_image():
    rng = np.random.default_rng(0)
    boundary = rng.random((2, 6, 7))
    offsets = pair_offsets(4)
    got = irn.path_affinities(torch.from_numpy(boundary), offsets).numpy()
    # pair_labels' order: per offset, image 0's pairs then image 1's, each over the sources of pairs inside the image
    per_offset = [np.concatenate([boundary_affinities(boundary[b], 4)[o][0:6 - dy, max(0, -dx):min(7, 7 - dx)].ravel()
                                  for b in range(2)]) for o, (dy, dx) in enumerate(offsets)]
    assert np.allclose(got, np.concatenate(per_offset))
    labels = torch.zeros(2, 6, 7, dtype=torch.long)
    assert got.shape == pair_labels(labels, offsets)[0].shape  # one affinity per labelled pair


def test_the_walk_s_affinities_are_symmetric_with_ones_on_the_diagonal_and_zero_outside():
    rng = np.random.default_rng(1)
    boundary = rng.random((5, 6))
    radius = 3
    got = irn.neighbour_boundary_affinity(torch.from_numpy(boundary), radius).numpy()
    half = boundary_affinities(boundary, radius)
    offsets = full_offsets(radius)
    assert np.all(got[offsets.index((0, 0))] == 1.0)  # misc/indexing.py:116-119, the identity added to A
    for o, (dy, dx) in enumerate(pair_offsets(radius)):
        assert np.allclose(got[offsets.index((dy, dx))], half[o])
        back = got[offsets.index((-dy, -dx))]  # a(i, i - o) = a(i - o, i): the same segment
        for y in range(5):
            for x in range(6):
                sy, sx = y - dy, x - dx
                inside = 0 <= sy < 5 and 0 <= sx < 6
                assert math.isclose(back[y, x], half[o][sy, sx] if inside else 0.0), (dy, dx, y, x)
    # T = D^-1 A^beta of these affinities is irn's column-normalised A^beta, transposed (A is symmetric)
    dense = dense_transition(torch.from_numpy(got), beta=10, radius=radius).numpy()
    a = np.zeros((30, 30))
    for k, (dy, dx) in enumerate(offsets):
        for y in range(5):
            for x in range(6):
                if 0 <= y + dy < 5 and 0 <= x + dx < 6:
                    a[y * 6 + x, (y + dy) * 6 + x + dx] = got[k, y, x]
    assert np.allclose(a, a.T)
    assert np.allclose(dense.T, transition_matrix(a, beta=10, exp_times=0))


class _Fixed(torch.nn.Module):
    """A stand-in for BoundaryNet that returns a fixed boundary logit map at stride 4 (the same for the flipped image,
    flipped back): irn.refine must use it as B."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.backbone = torch.nn.Module()
        self.backbone.stride = 4

    def forward(self, x):
        h, w = x.shape[-2] // 4, x.shape[-1] // 4
        one = self.logits[:h, :w]
        return torch.stack([one, one.flip(-1)])[:, None]


def test_the_irn_walk_stops_at_a_boundary_and_reads_the_background_against_the_common_maximum():
    # a 16 x 32 image, stride-4 grid 4 x 8, a vertical boundary at grid column 4; the kite's CAM left of it only
    logits = torch.full((4, 8), -30.0)
    logits[:, 4] = 30.0
    cams = np.zeros((2, 16, 32), dtype=np.float32)
    cams[0, :, 0:8] = 1.0  # kite: grid columns 0-1
    image = torch.zeros(3, 16, 32)
    labels = irn.refine(_Fixed(logits), image, cams, [1, 2], beta=10, t=256, radius=5, stride=4, bg_threshold=0.25)
    assert (labels[:, :14] == 1).all()  # spread along its side of the boundary
    assert (labels[:, 18:] == 0).all()  # not across it: the walk never crosses a = 1 - max B = 0
    # the kite fills its side (walked: 1), the second class the other side at 0.2, below bg_threshold 0.25 of the
    # common maximum: irn divides by the maximum over every class (step/make_sem_seg_labels.py:44-47), so the class
    # is background; divided by its own maximum it would be 1
    cams[0, :, 0:16] = 1.0
    cams[1, :, 20:32] = 0.2
    labels = irn.refine(_Fixed(logits), image, cams, [1, 2], beta=10, t=256, radius=5, stride=4, bg_threshold=0.25)
    assert not (labels == 2).any() and (labels[:, :14] == 1).all()
    cams[1, :, 20:32] = 0.3
    labels = irn.refine(_Fixed(logits), image, cams, [1, 2], beta=10, t=256, radius=5, stride=4, bg_threshold=0.25)
    assert (labels[:, 24:] == 2).all()


def test_psa_s_alphas_give_irn_s_confident_thresholds():
    # step/cam_to_ir_label.py:27-40 with run_sample.py's conf_fg_thres 0.30, conf_bg_thres 0.05, before the CRF:
    # fg = keys[argmax([0.30; M])], bg where argmax([0.05; M]) and fg are both background, else 255
    rng = np.random.default_rng(2)
    cams = rng.random((2, 9, 9)) ** 3
    classes = [1, 3]
    keys = np.array([0, *classes])
    fg = keys[np.argmax(np.concatenate([np.full((1, 9, 9), 0.30), cams]), axis=0)]
    bg = keys[np.argmax(np.concatenate([np.full((1, 9, 9), 0.05), cams]), axis=0)]
    expected = fg.copy()
    expected[fg == 0] = 255
    expected[(bg + fg) == 0] = 0
    got = affinity_labels(cams, classes, irn.alpha_for_threshold(0.30), irn.alpha_for_threshold(0.05))
    assert (got == expected).all()
    assert math.isclose(irn.alpha_for_threshold(0.30), math.log(0.3) / math.log(0.7))


def test_the_boundary_net_learns_its_head_only_on_a_frozen_backbone():
    torch.manual_seed(0)
    net = build_boundary_net({"name": "tiny", "output_stride": 8, "width": 8}, pretrained=False).train()
    assert isinstance(net, BoundaryNet) and not net.backbone.training  # irn: backbone.eval() in train()
    before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    image = torch.randn(2, 3, 36, 44)
    assert net(image).shape == (2, 1, 9, 11)  # stride 4
    labels = torch.randint(0, 3, (2, 36, 44))
    optimiser = torch.optim.SGD([p for group in net.trainable_parameters() for p in group], lr=0.1)
    loss, terms = irn.boundary_loss_fn(radius=4)(net, {"image": image, "labels": labels})
    loss.backward()
    optimiser.step()
    assert set(terms) == {"pos_fg", "pos_bg", "neg"} and math.isfinite(loss.item())
    assert all(p.grad is None for p in net.backbone.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.backbone.state_dict().items())  # BatchNorm statistics too
    assert all(p.grad is not None for p in net.trainable_parameters()[1])


def test_boundary_precision_and_recall_count_pixels_within_the_tolerance_of_the_other_boundary():
    mask = np.zeros((6, 6), np.uint8)
    mask[:, :3] = 1  # the class boundary: columns 2 and 3, 12 pixels
    predicted = np.zeros((6, 6), bool)
    predicted[:, 0] = predicted[:, 3] = True  # column 3 on it, column 0 two pixels away
    got = irn.boundary_precision_recall(predicted, mask, tolerance=1)
    assert got == {"predicted": 12, "predicted_near": 6, "true": 12, "true_near": 12}
    assert irn.boundary_precision_recall(predicted, mask, tolerance=2)["predicted_near"] == 12
    mask[0] = 255  # a void band: row 1 borders it (4 more boundary pixels); void pixels count on neither side
    got = irn.boundary_precision_recall(predicted, mask, tolerance=1)
    # predicted: column 3 (5, on the boundary) and column 0 rows 1-2 (within 1 px of row 1); true: all but (1, 5)
    assert got == {"predicted": 10, "predicted_near": 7, "true": 14, "true_near": 13}
