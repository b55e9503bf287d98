"""EPS (classifier.method: eps): the fg/bg split by saliency overlap, the estimated saliency, the saliency maps."""

import numpy as np
import pytest
import torch
from PIL import Image

from fake_voc import VOC_CLASSES, write_fake_voc
from wsss_steps.data import VOCLayout
from wsss_steps.data.loader import CropDataset
from wsss_steps.data.voc import DatasetError
from wsss_steps.methods.eps import estimated_saliency, saliency_loss, saliency_overlap, split_classes
from wsss_steps.nets.classifier import EPSNet
from wsss_steps.train_classifier import train


def test_a_present_class_joins_the_foreground_when_it_overlaps_the_saliency_map_by_more_than_tau():
    # 1 x 4 pixels, classes 1 and 2 and the background map; p already one-hot where a class wins
    p = torch.tensor([[[[0.9, 0.8, 0.1, 0.1]],    # class 1 wins pixels 0, 1
                       [[0.05, 0.1, 0.8, 0.7]],   # class 2 wins pixels 2, 3
                       [[0.05, 0.1, 0.1, 0.2]]]])  # background
    saliency = torch.tensor([[[1.0, 1.0, 0.0, 0.6]]])  # pixels 0, 1, 3 salient
    overlap = saliency_overlap(p, saliency)
    torch.testing.assert_close(overlap, torch.tensor([[1.0, 0.5]]), atol=1e-3, rtol=0)  # class 2: 1 of its 2 pixels
    fg, bg = split_classes(overlap, torch.tensor([[1.0, 1.0]]), tau=0.6)
    assert fg.tolist() == [[True, False, False]] and bg.tolist() == [[False, True, True]]
    fg, bg = split_classes(overlap, torch.tensor([[1.0, 1.0]]), tau=0.4)
    assert fg.tolist() == [[True, True, False]] and bg.tolist() == [[False, False, True]]
    fg, bg = split_classes(overlap, torch.tensor([[0.0, 1.0]]), tau=0.4)  # an absent class is in neither
    assert fg.tolist() == [[False, True, False]] and bg.tolist() == [[False, False, True]]


def test_estimated_saliency_mixes_the_foreground_and_one_minus_the_background():
    p = torch.tensor([[[[0.6]], [[0.3]], [[0.1]]]])
    fg, bg = torch.tensor([[True, False, False]]), torch.tensor([[False, True, True]])
    s_hat = estimated_saliency(p, fg, bg, lam=0.5)
    torch.testing.assert_close(s_hat, torch.tensor([[[0.5 * 0.6 + 0.5 * (1 - 0.4)]]]))


def test_saliency_loss_is_zero_when_the_maps_explain_the_saliency_exactly():
    cam = torch.full((1, 2, 2, 2), -20.0)
    cam[0, 0, :, :1] = 20.0   # class 1 on the left column
    cam[0, 1, :, 1:] = 20.0   # background on the right
    saliency = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    loss = saliency_loss(cam, saliency, torch.tensor([[1.0]]), tau=0.4, lam=0.5)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    flipped = saliency_loss(cam, 1 - saliency, torch.tensor([[1.0]]), tau=0.4, lam=0.5)
    assert flipped.item() > 0.2  # class 1 no longer overlaps: it joins the background, the salient side is missed


def write_saliency(layout, ids, value=200):
    (layout.root / layout.saliency_dir).mkdir(exist_ok=True)
    for image_id in ids:
        h, w = layout.image_size(image_id)
        Image.fromarray(np.full((h, w), value, np.uint8)).save(layout.root / layout.saliency_dir / f"{image_id}.png")


def test_training_crops_carry_the_saliency_map_and_a_missing_map_is_named(tmp_path):
    write_fake_voc(tmp_path / "VOC2012", n_train=2)
    layout = VOCLayout(tmp_path / "VOC2012", VOC_CLASSES)
    table = layout.label_table("train")
    with pytest.raises(DatasetError, match=r"SaliencyMaps/2007_000000\.png: saliency map not found"):
        layout.saliency("2007_000000")
    write_saliency(layout, table)
    item = CropDataset(layout, table, 80, (1.0, 1.0), seed=0, image_labels=table, saliency=True)[0]
    saliency = item["saliency"]
    assert saliency.shape == (80, 80)  # the fake images are at most 60 px: the crop is padded
    h, w = layout.image_size(list(table)[0])
    np.testing.assert_allclose(np.unique(saliency.numpy()), [0.0, 200 / 255], rtol=1e-6)  # padding not salient
    assert (saliency > 0).sum().item() == h * w


def test_eps_training_uses_a_background_map_and_the_saliency(tmp_path):
    write_fake_voc(tmp_path / "VOC2012", n_train=2)
    layout = VOCLayout(tmp_path / "VOC2012", VOC_CLASSES)
    params = {"steps": 1, "batch_size": 2, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "crop_size": 32,
              "scale_range": [0.9, 1.0], "method": "eps", "eps": {"tau": 0.4, "lam": 0.5}}
    backbone = {"name": "tiny", "width": 4, "weights": None}
    with pytest.raises(DatasetError, match="saliency map not found"):  # before any training step
        train(layout, "train", backbone, params, 0, "cpu")
    write_saliency(layout, layout.label_table("train"))
    model, history = train(layout, "train", backbone, params, 0, "cpu")
    assert isinstance(model, EPSNet) and np.isfinite(history[0])
    image = torch.rand(1, 3, 32, 32)
    assert model(image).shape == (1, 20) and model.cam(image).shape[1] == 21


def test_eps_localisation_maps_are_the_softmax_class_channels_as_the_official_inference_reads_them():
    from wsss_steps.extract_cams import method_maps
    from wsss_steps.methods.cam import multiscale_cam
    from wsss_steps.methods.eps import eps_maps
    from wsss_steps.nets.backbones import make_backbone

    torch.manual_seed(0)
    model = EPSNet(make_backbone("tiny", width=4), 3).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(20)  # maps far from uniform, so the background map takes pixels
    image = torch.rand(3, 32, 40)  # a multiple of the stride: one scale without flip is one pass of infer.py
    classes = [1, 3]
    label = torch.tensor([1.0, 0.0, 1.0])
    ours = multiscale_cam(model, image, classes, [1.0], flip=False, maps=eps_maps)
    # halbielee/EPS infer.py:124-131: cam = F.softmax(cam, dim=1); cam = F.interpolate(cam, (H, W), bilinear,
    # align_corners=False); cam_fg = cam[:-1] * label; infer.py:187: norm_cam = sum_cam / (max over H, W + 1e-5)
    with torch.no_grad():
        cam = torch.softmax(model.cam(image[None]), dim=1)
        cam = torch.nn.functional.interpolate(cam, size=(32, 40), mode="bilinear", align_corners=False)[0]
        fg = cam[:-1] * label[:, None, None]
        official = fg / (fg.flatten(1).amax(dim=1)[:, None, None] + 1e-5)
    torch.testing.assert_close(ours, official[[0, 2]])
    assert (cam[-1] > cam[:-1].max(dim=0).values).any()  # the background channel competes at some pixels
    assert method_maps({"method": "cam"}, trained_with="eps") is eps_maps  # what extract_cams reads for EPS
