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


def test_the_affinity_loss_is_psa_s():
    from wsss_steps.methods.affinitynet import affinity_loss

    torch.manual_seed(0)
    aff = torch.rand(50) * 0.98 + 0.01
    bg_label, fg_label, neg_label = (torch.rand(50) < 0.3).float(), (torch.rand(50) < 0.3).float(), (torch.rand(50) < 0.3).float()
    # jiwoon-ahn/psa train_aff.py:107-115 (commit a43f0c4): each term summed over its pairs and divided by its count
    bg_count, fg_count, neg_count = bg_label.sum() + 1e-5, fg_label.sum() + 1e-5, neg_label.sum() + 1e-5
    bg_loss = torch.sum(-bg_label * torch.log(aff + 1e-5)) / bg_count
    fg_loss = torch.sum(-fg_label * torch.log(aff + 1e-5)) / fg_count
    neg_loss = torch.sum(-neg_label * torch.log(1.0 + 1e-5 - aff)) / neg_count
    official = bg_loss / 4 + fg_loss / 4 + neg_loss / 2
    ours = affinity_loss(aff, fg_label.bool(), bg_label.bool(), neg_label.bool())
    torch.testing.assert_close(ours, official, rtol=1e-5, atol=1e-6)  # counts: ours clamp(min=1), psa's + 1e-5
