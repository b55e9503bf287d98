"""ACoL (classifier.method: acol): the erased region, the erasing, the fused map and the two-head network."""

import pytest
import torch

from fake_voc import VOC_CLASSES, write_fake_voc
from wsss_steps.artifacts import save_weights
from wsss_steps.data import VOCLayout
from wsss_steps.methods.acol import acol_maps, erase, erased_region, fuse
from wsss_steps.nets.backbones import make_backbone
from wsss_steps.nets.classifier import ACoLNet, CAMNet, classifier_method, load_classifier
from wsss_steps.train_classifier import acol_loss_fn, train


def test_the_erased_region_is_exactly_where_a_present_class_exceeds_delta():
    cam = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]],      # class 1, max 4: normalised 0, .25, .5, 1
                         [[8.0, 0.0], [-3.0, 0.0]]]])   # class 2, absent here
    region = erased_region(cam, torch.tensor([[1.0, 0.0]]), delta=0.4)
    assert region.tolist() == [[[False, False], [True, True]]]
    region = erased_region(cam, torch.tensor([[1.0, 1.0]]), delta=0.4)  # class 2 (max 8) adds the top left
    assert region.tolist() == [[[True, False], [True, True]]]
    peak_only = erased_region(cam, torch.tensor([[1.0, 0.0]]), delta=0.99)  # normalised peak 1 > 0.99
    assert peak_only.tolist() == [[[False, False], [False, True]]]


def test_erasing_zeroes_every_channel_inside_the_region_only():
    features = torch.arange(1.0, 9.0).reshape(1, 2, 2, 2)
    region = torch.tensor([[[True, False], [False, True]]])
    out = erase(features, region)
    assert out[0, :, 0, 0].tolist() == [0, 0] and out[0, :, 1, 1].tolist() == [0, 0]
    assert out[0, :, 0, 1].tolist() == [2, 6] and out[0, :, 1, 0].tolist() == [3, 7]
    assert fuse(torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])).tolist() == [1.0, 3.0]


def test_acol_loss_trains_head_b_on_the_erased_features():
    torch.manual_seed(0)
    net = ACoLNet(make_backbone("tiny", width=4), 2).eval()
    batch = {"image": torch.rand(2, 3, 32, 32), "target": torch.tensor([[1.0, 0.0], [1.0, 1.0]])}
    loss_fn = acol_loss_fn(0.5)
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
    torch.testing.assert_close(maps, torch.maximum(a, b)[:, [1]])


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
        from wsss_steps.artifacts import load_weights
        load_weights(path, CAMNet(make_backbone("tiny", width=4), 20))
