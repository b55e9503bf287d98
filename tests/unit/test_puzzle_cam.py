"""Puzzle-CAM (classifier.method: puzzle_cam): tiling, stitching, the loss and its ramp on tiny arrays."""

import pytest
import torch

from wsss_steps.methods import puzzle_cam
from wsss_steps.methods.cam import classification_loss
from wsss_steps.methods.puzzle_cam import alpha_at, reconstruction_loss, stitch, tile
from wsss_steps.nets.backbones import make_backbone
from wsss_steps.nets.classifier import CAMNet


def test_tiles_are_the_quarters_row_by_row_and_stitching_inverts_the_split_exactly():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    tiles = tile(images, 2)
    assert tiles.shape == (8, 3, 2, 3)
    assert torch.equal(tiles[0], images[0, :, :2, :3]) and torch.equal(tiles[1], images[0, :, :2, 3:])
    assert torch.equal(tiles[2], images[0, :, 2:, :3]) and torch.equal(tiles[7], images[1, :, 2:, 3:])
    assert torch.equal(stitch(tiles, 2), images)
    assert torch.equal(stitch(tile(images[:, :, :3, :6], 3), 3), images[:, :, :3, :6])
    with pytest.raises(ValueError, match="5 x 6"):
        tile(torch.zeros(1, 1, 5, 6), 2)


def test_reconstruction_loss_counts_the_present_classes_only():
    full = torch.zeros(1, 2, 2, 2)
    stitched = torch.zeros(1, 2, 2, 2)
    stitched[0, 0, 0, 0] = 4.0  # class 1 present: |0 - 4| over 1 x 2 x 2 x 2 = 8 values -> 0.5
    stitched[0, 1] = 100.0  # class 2 absent: ignored
    assert reconstruction_loss(full, stitched, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.5)


def test_alpha_rises_linearly_over_the_ramp_then_stays():
    assert alpha_at(0.0, 4, 0.5) == 0 and alpha_at(0.25, 4, 0.5) == pytest.approx(2)
    assert alpha_at(0.5, 4, 0.5) == 4 and alpha_at(0.9, 4, 0.5) == 4 and alpha_at(0.3, 4, 0) == 4


def test_puzzle_loss_is_two_classifications_plus_the_weighted_reconstruction():
    torch.manual_seed(0)
    net = CAMNet(make_backbone("tiny", width=4), 3).eval()
    batch = {"image": torch.rand(2, 3, 32, 32), "target": torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])}
    settings = {"tiles": 2, "alpha": 4, "ramp": 0.5}
    with torch.no_grad():
        full = net.cam(batch["image"])
        stitched = stitch(net.cam(tile(batch["image"], 2)), 2)
        tiles_cls = torch.nn.functional.multilabel_soft_margin_loss(stitched.mean(dim=(-2, -1)), batch["target"])
        re = reconstruction_loss(full, stitched, batch["target"])
        start, start_terms = puzzle_cam.training_loss(settings)(net, batch, 0.0)
        later, later_terms = puzzle_cam.training_loss(settings)(net, batch, 0.75)
    assert re > 0  # the tiles see less context: their stitched CAM differs from the crop's
    torch.testing.assert_close(start, classification_loss(net, batch) + tiles_cls)
    torch.testing.assert_close(later, start + 4 * re)
    assert start_terms["alpha"] == 0 and later_terms["alpha"] == 4
    assert later_terms["re"] == pytest.approx(re.item(), rel=1e-5)


def test_a_crop_size_whose_tiles_do_not_stitch_back_is_refused_by_name(tmp_path):
    from fake_voc import VOC_CLASSES, write_fake_voc
    from wsss_steps.lib.config import ConfigError
    from wsss_steps.data import VOCLayout
    from wsss_steps.train_classifier import train

    write_fake_voc(tmp_path / "VOC2012", n_train=2)
    layout = VOCLayout(tmp_path / "VOC2012", VOC_CLASSES)
    params = {"steps": 1, "batch_size": 2, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "crop_size": 40,
              "scale_range": [0.9, 1.0], "method": "puzzle_cam", "puzzle_cam": {"tiles": 2, "alpha": 4, "ramp": 0.5}}
    with pytest.raises(ConfigError, match=r"classifier.crop_size.*multiple of 16"):
        train(layout, "train", {"name": "tiny", "width": 4, "weights": None}, params, 0, "cpu")
    params["crop_size"] = 32
    model, history = train(layout, "train", {"name": "tiny", "width": 4, "weights": None}, params, 0, "cpu")
    assert len(history) == 1 and history[0] > 0


def test_reconstruction_loss_and_alpha_are_the_official_script_s():
    torch.manual_seed(0)
    features, re_features = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    # OFRIN/PuzzleCAM train_classification_with_puzzle.py:352-355 (re_loss_option 'masking', the default):
    # class_mask = labels.unsqueeze(2).unsqueeze(3); re_loss = L1_Loss(features, re_features) * class_mask;
    # re_loss = re_loss.mean(), the mean over all B x C x H x W elements
    official = (torch.abs(features - re_features) * labels.unsqueeze(2).unsqueeze(3)).mean()
    torch.testing.assert_close(reconstruction_loss(features, re_features, labels), official)
    # train_classification_with_puzzle.py:376-379: alpha = min(args.alpha * iteration / (max_iteration *
    # args.alpha_schedule), args.alpha)
    max_iteration, alpha, schedule = 200, 4.0, 0.5
    for iteration in (0, 1, 50, 99, 100, 101, 199):
        expected = min(alpha * iteration / (max_iteration * schedule), alpha)
        assert alpha_at(iteration / max_iteration, alpha, schedule) == pytest.approx(expected)
