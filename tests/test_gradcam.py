"""Grad-CAM (cams.method: gradcam): known answers on tiny arrays and on a GAP + linear classifier."""

import torch

from wsss_steps.methods.cam import cam_maps, multiscale_cam
from wsss_steps.methods.gradcam import gradcam, gradcam_maps
from wsss_steps.nets.backbones import ResNet50Backbone, make_backbone
from wsss_steps.nets.classifier import CAMNet


def test_gradcam_weights_each_channel_by_its_mean_gradient():
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[4.0, 0.0], [0.0, 8.0]]]], requires_grad=True)
    # y_0 = 2 mean(A^0) - mean(A^1): dy/dA^0_ij = 2/4 and dy/dA^1_ij = -1/4, so alpha = (0.5, -0.25)
    # y_1 = max(A^0): the gradient is 1 at the maximum only, so alpha = (1/4, 0)
    scores = torch.stack([2 * features[:, 0].mean(dim=(-2, -1)) - features[:, 1].mean(dim=(-2, -1)),
                          features[:, 0].amax(dim=(-2, -1))], dim=1)
    maps = gradcam(features, scores, [0, 1])
    a0, a1 = features.detach()[0]
    torch.testing.assert_close(maps[0, 0], torch.relu(0.5 * a0 - 0.25 * a1))  # [[0, 1], [1.5, 0]]
    torch.testing.assert_close(maps[0, 0], torch.tensor([[0.0, 1.0], [1.5, 0.0]]))
    torch.testing.assert_close(maps[0, 1], 0.25 * a0)


def tiny_classifier():
    torch.manual_seed(0)
    model = CAMNet(make_backbone("tiny", width=4), 3).eval()
    return model


def test_gradcam_at_the_last_layer_is_cam_up_to_a_positive_scale():
    model = tiny_classifier()
    batch = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        cam = torch.relu(cam_maps(model, batch, [0, 2]))
    grad = gradcam_maps(model, batch, [0, 2], layer="last")
    h, w = cam.shape[-2:]
    assert cam.amax() > 0
    torch.testing.assert_close(grad, cam / (h * w))  # alpha^c_k = w_ck / Z


def test_gradcam_at_the_previous_layer_differs_from_cam():
    model = tiny_classifier()
    batch = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        cam = torch.relu(cam_maps(model, batch, [1]))
    grad = gradcam_maps(model, batch, [1], layer="previous")
    assert grad.shape == cam.shape  # the tiny backbone's last two stages share stride 8
    unit = lambda m: m.flatten() / m.flatten().norm().clamp(min=1e-12)  # noqa: E731
    assert torch.dot(unit(grad), unit(cam)) < 0.99  # not a positive multiple of the CAM


def test_multiscale_gradcam_gives_normalised_maps_close_to_cam_at_the_last_layer():
    model = tiny_classifier()
    with torch.no_grad():  # positive class weights on ReLU features: every class has a map to normalise
        model.classifier.weight.abs_().mul_(10)
    image = torch.rand(3, 30, 36)
    plain = multiscale_cam(model, image, [1, 3], [1.0, 1.5], flip=True)
    grad = multiscale_cam(model, image, [1, 3], [1.0, 1.5], flip=True,
                          maps=lambda m, b, i: gradcam_maps(m, b, i, "last"))
    assert grad.shape == plain.shape == (2, 30, 36)
    # peak 1 up to normalize_cam's eps (1e-5), not small beside Grad-CAM's 1/Z-scaled values of a tiny net
    torch.testing.assert_close(grad.flatten(1).amax(dim=1), torch.ones(2), atol=1e-2, rtol=0)
    assert grad.min() >= 0
    # not equal: Grad-CAM's ReLU comes before the upsampling and each scale is divided by its own Z
    for g, p in zip(grad, plain):
        assert torch.dot(g.flatten(), p.flatten()) / (g.norm() * p.norm()) > 0.9


def test_gradcam_at_resnet50s_previous_stage_runs_the_last_stage_from_it():
    torch.manual_seed(0)
    model = CAMNet(ResNet50Backbone(16), 2).eval()
    batch = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        stages = model.backbone(batch)
        torch.testing.assert_close(model.scores_from(1, stages[1]), model(batch))  # layer3 -> layer4 -> GAP -> w
    maps = gradcam_maps(model, batch, [1], layer="previous")
    assert maps.shape == (1, 1, 4, 3)  # layer3 at stride 16
