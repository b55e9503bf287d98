"""AffinityNet training helpers on tiny tensors with hand-worked answers."""

import torch

from wsss_steps.methods.affinitynet import feature_labels


def test_feature_labels_take_the_centre_pixel_of_each_cell():
    # 16 x 16 labels whose value encodes the pixel: 100 * row + col; a 2 x 2 feature map has
    # cells of 8 x 8 pixels whose centres are pixels 4 and 12 (not 0 and 8, the top-left corners).
    rows, cols = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    labels = (100 * rows + cols)[None]
    got = feature_labels(labels, (2, 2))
    assert got.tolist() == [[[404, 412], [1204, 1212]]]


def test_feature_labels_stay_inside_an_image_that_is_not_a_multiple_of_the_stride():
    labels = torch.arange(10)[None, None].repeat(1, 3, 1)  # 3 x 10, feature map 1 x 2
    got = feature_labels(labels, (1, 2))
    assert got.tolist() == [[[2, 7]]]
