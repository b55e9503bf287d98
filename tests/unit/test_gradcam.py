"""Grad-CAM (cams.method: gradcam): known answers on tiny arrays and on a GAP + linear classifier."""

import torch

from wsss_steps.methods.cam import cam_maps, multiscale_cam
from wsss_steps.methods.gradcam import gradcam, gradcam_maps
from wsss_steps.nets.backbones import ResNet50Backbone, make_backbone
from wsss_steps.nets.classifier import CAMNet


def test_gradcam_weights_each_channel_by_its_summed_gradient_as_the_authors_code():
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[4.0, 0.0], [0.0, 8.0]]]], requires_grad=True)
    # ramprs/grad-cam misc/utils.lua:121: weights = torch.sum(gradients:view(K, -1), 2), the sum over the cells.
    # y_0 = 2 mean(A^0) - mean(A^1): dy/dA^0_ij = 2/4 and dy/dA^1_ij = -1/4, summed over 4 cells alpha = (2, -1)
    # y_1 = max(A^0): the gradient is 1 at the maximum only, so alpha = (1, 0)
    scores = torch.stack([2 * features[:, 0].mean(dim=(-2, -1)) - features[:, 1].mean(dim=(-2, -1)),
                          features[:, 0].amax(dim=(-2, -1))], dim=1)
    maps = gradcam(features, scores, [0, 1])
    a0, a1 = features.detach()[0]
    torch.testing.assert_close(maps[0, 0], torch.relu(2 * a0 - a1))
    torch.testing.assert_close(maps[0, 0], torch.tensor([[0.0, 4.0], [6.0, 0.0]]))
    torch.testing.assert_close(maps[0, 1], a0)


def tiny_classifier():
    torch.manual_seed(0)
    model = CAMNet(make_backbone("tiny", width=4), 3).eval()
    return model


def test_gradcam_at_the_last_layer_is_the_cam_at_every_input_size():
    model = tiny_classifier()
    for size in [(32, 40), (16, 24), (64, 48)]:  # a mean of the gradient would divide each by its own cell count
        batch = torch.rand(2, 3, *size)
        with torch.no_grad():
            cam = torch.relu(cam_maps(model, batch, [0, 2]))
        grad = gradcam_maps(model, batch, [0, 2], layer="last")
        assert cam.amax() > 0
        torch.testing.assert_close(grad, cam)  # alpha^c_k = sum_ij w_ck / Z = w_ck


def test_gradcam_at_the_previous_layer_differs_from_cam():
    model = tiny_classifier()
    batch = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        cam = torch.relu(cam_maps(model, batch, [1]))
    grad = gradcam_maps(model, batch, [1], layer="previous")
    assert grad.shape == cam.shape  # the tiny backbone's last two stages share stride 8
    unit = lambda m: m.flatten() / m.flatten().norm().clamp(min=1e-12)  # noqa: E731
    assert torch.dot(unit(grad), unit(cam)) < 0.99  # not a positive multiple of the CAM


def test_multiscale_gradcam_equals_multiscale_cam_where_their_maths_coincide():
    model = tiny_classifier()
    with torch.no_grad():  # positive class weights on ReLU features: maps >= 0, so the ReLU's place does not matter
        model.classifier.weight.abs_().mul_(10)
    image = torch.rand(3, 30, 36)
    scales = [0.5, 1.0, 1.5, 2.0]  # feature maps of 4 to 36 times the cells of the smallest: a per-scale 1/Z shows
    plain = multiscale_cam(model, image, [1, 3], scales, flip=True)
    grad = multiscale_cam(model, image, [1, 3], scales, flip=True,
                          maps=lambda m, b, i: gradcam_maps(m, b, i, "last"))
    assert grad.shape == plain.shape == (2, 30, 36) and plain.amax() > 0.99
    torch.testing.assert_close(grad, plain, atol=1e-5, rtol=1e-4)


def test_gradcam_at_resnet50s_previous_stage_runs_the_last_stage_from_it():
    torch.manual_seed(0)
    model = CAMNet(ResNet50Backbone(16), 2).eval()
    batch = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        stages = model.backbone(batch)
        torch.testing.assert_close(model.scores_from(1, stages[1]), model(batch))  # layer3 -> layer4 -> GAP -> w
    maps = gradcam_maps(model, batch, [1], layer="previous")
    assert maps.shape == (1, 1, 4, 3)  # layer3 at stride 16
