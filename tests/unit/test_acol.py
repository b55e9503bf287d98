"""ACoL (classifier.method: acol): the erased region, the erasing, the fused map and the two-head network."""

import pytest
import torch

from fake_voc import VOC_CLASSES, write_fake_voc
from wsss_steps.lib.artifacts import save_weights
from wsss_steps.data import VOCLayout
from wsss_steps.methods import acol
from wsss_steps.methods.acol import acol_maps, erase, erased_region, fuse
from wsss_steps.nets.backbones import make_backbone
from wsss_steps.nets.classifier import ACoLNet, CAMNet, classifier_method, load_classifier
from wsss_steps.train_classifier import train


def official_normalise(atten_map):
    """xiaomengyc/ACoL models/vgg/vgg_v1.py:139-149 (normalize_atten_maps), per image and class:
    (atten_map - min) / (max - min) over the map's cells, on the raw map (no ReLU)."""
    flat = atten_map.flatten(2)
    low, high = flat.min(dim=2).values, flat.max(dim=2).values
    return (atten_map - low[:, :, None, None]) / (high - low)[:, :, None, None]


def test_the_erased_region_is_where_the_min_max_normalised_raw_map_reaches_delta():
    cam = torch.tensor([[[[-4.0, 0.0], [2.0, 4.0]],     # class 1: min -4, max 4, normalised 0, .5, .75, 1
                         [[8.0, 0.0], [-3.0, 0.0]]]])   # class 2, absent here
    # vgg_v1.py:123-137 (erase_feature_maps): pos = torch.ge(normalised, threshold), the mask 0 there
    official = official_normalise(cam)[:, 0] >= 0.5
    region = erased_region(cam, torch.tensor([[1.0, 0.0]]), delta=0.5)
    assert region.tolist() == official.tolist() == [[[False, True], [True, True]]]
    region = erased_region(cam, torch.tensor([[1.0, 1.0]]), delta=0.5)  # class 2 (8 -> 1, 0 -> 3/11) adds the top left
    assert region.tolist() == [[[True, True], [True, True]]]
    peak_only = erased_region(cam, torch.tensor([[1.0, 0.0]]), delta=1.0 - 1e-7)  # the peak, 1 >= delta
    assert peak_only.tolist() == [[[False, False], [False, True]]]
    flat = erased_region(torch.full((1, 1, 2, 2), 3.0), torch.tensor([[1.0]]), delta=0.6)
    assert not flat.any()  # a constant map erases nothing (the official NaN never reaches delta)


def test_the_fused_map_is_the_max_of_the_separately_normalised_head_maps():
    a = torch.tensor([[[[-2.0, 0.0], [2.0, 6.0]]]])  # normalised 0, .25, .5, 1
    b = torch.tensor([[[[1.0, 3.0], [1.0, 1.0]]]])   # normalised 0, 1, 0, 0
    # vgg_v1.py:104-107 (get_localization_maps): torch.max(normalize_atten_maps(map1), normalize_atten_maps(map_erase))
    official = torch.max(official_normalise(a), official_normalise(b))
    torch.testing.assert_close(fuse(a, b), official)
    assert fuse(a, b).flatten().tolist() == [0.0, 1.0, 0.5, 1.0]


def test_erasing_zeroes_every_channel_inside_the_region_only():
    features = torch.arange(1.0, 9.0).reshape(1, 2, 2, 2)
    region = torch.tensor([[[True, False], [False, True]]])
    out = erase(features, region)
    assert out[0, :, 0, 0].tolist() == [0, 0] and out[0, :, 1, 1].tolist() == [0, 0]
    assert out[0, :, 0, 1].tolist() == [2, 6] and out[0, :, 1, 0].tolist() == [3, 7]


def test_acol_loss_trains_head_b_on_the_erased_features():
    torch.manual_seed(0)
    net = ACoLNet(make_backbone("tiny", width=4), 2).eval()
    batch = {"image": torch.rand(2, 3, 32, 32), "target": torch.tensor([[1.0, 0.0], [1.0, 1.0]])}
    loss_fn = acol.training_loss({"delta": 0.5})
    loss = loss_fn(net, batch)
    with torch.no_grad():
        features = net.backbone(batch["image"])[-1]
        cam_a = net.classifier(features)
        region = erased_region(cam_a, batch["target"], 0.5)
        cam_b = net.classifier_b(erase(features, region))
        soft = torch.nn.functional.multilabel_soft_margin_loss
        expected = soft(cam_a.mean(dim=(-2, -1)), batch["target"]) + soft(cam_b.mean(dim=(-2, -1)), batch["target"])
    assert region.any() and not region.all()
    torch.testing.assert_close(loss.detach(), expected)
    loss.backward()
    assert net.classifier_b.weight.grad.abs().sum() > 0
    maps = acol_maps(net, batch["image"], [1])
    a, b = net.cam_pair(batch["image"])
    torch.testing.assert_close(maps, torch.maximum(official_normalise(a[:, [1]]), official_normalise(b[:, [1]])))


def test_a_classifier_trained_with_acol_is_rebuilt_with_its_second_head(tmp_path):
    write_fake_voc(tmp_path / "VOC2012", n_train=2)
    layout = VOCLayout(tmp_path / "VOC2012", VOC_CLASSES)
    backbone = {"name": "tiny", "width": 4, "weights": None}
    params = {"steps": 1, "batch_size": 2, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "crop_size": 32,
              "scale_range": [0.9, 1.0], "method": "acol", "acol": {"delta": 0.6}}
    model, _ = train(layout, "train", backbone, params, 0, "cpu")
    assert isinstance(model, ACoLNet)
    path = tmp_path / "classifier.weights.h5"
    save_weights(path, model, {"stage": "train_classifier", "params": '{"method": "acol"}',
                               "classes": list(VOC_CLASSES)})
    assert classifier_method(path) == "acol"
    loaded = load_classifier(path, backbone, VOC_CLASSES)
    assert isinstance(loaded, ACoLNet)
    torch.testing.assert_close(loaded.classifier_b.weight, model.classifier_b.weight)
    save_weights(tmp_path / "plain.h5", CAMNet(make_backbone("tiny", width=4), 20),
                 {"stage": "train_classifier", "params": "{}", "classes": list(VOC_CLASSES)})
    assert type(load_classifier(tmp_path / "plain.h5", backbone, VOC_CLASSES)) is CAMNet
    with pytest.raises(Exception, match="do not fit"):  # an ACoL file read as plain CAMNet would lose a head
        from wsss_steps.lib.artifacts import load_weights
        load_weights(path, CAMNet(make_backbone("tiny", width=4), 20))
