"""DeepLabV3 (torchvision's ASPP head) on one of our backbones."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabV3

from ..data.transforms import pad_to_stride
from .backbones import backbone_from_config


class _OutDict(nn.Module):
    """Adapts a backbone to torchvision's segmentation models, which expect {'out': features}."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return OrderedDict(out=self.backbone(x)[-1])


class SegmentationNet(DeepLabV3):
    """torchvision's DeepLabV3, with the parameters split as the other networks split theirs."""

    def trainable_parameters(self):
        """(backbone parameters, new-layer parameters)."""
        return list(self.backbone.parameters()), list(self.classifier.parameters())


def make_deeplabv3(backbone: nn.Module, num_classes: int, aspp_channels: int = 256, atrous_rates=(12, 24, 36)) -> SegmentationNet:
    """torchvision DeepLabV3 (ASPP head) on one of our backbones."""
    head = nn.Sequential(
        ASPP(backbone.channels[-1], list(atrous_rates), aspp_channels),
        nn.Conv2d(aspp_channels, aspp_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(aspp_channels), nn.ReLU(inplace=True),
        nn.Conv2d(aspp_channels, num_classes, 1))
    return SegmentationNet(_OutDict(backbone), head)


def build_segmentation_net(backbone_cfg: dict, params: dict, num_classes: int, pretrained: bool = True) -> SegmentationNet:
    """DeepLabV3 with an ASPP head (params: aspp_channels, atrous_rates) on the configured backbone."""
    backbone = backbone_from_config(backbone_cfg, pretrained)
    return make_deeplabv3(backbone, num_classes, params["aspp_channels"], params["atrous_rates"])


@torch.no_grad()
def predict(model, image: torch.Tensor) -> np.ndarray:
    """argmax_c of the model's full-resolution scores for one normalised (3, H, W) image."""
    padded, (h, w) = pad_to_stride(image[None], model.backbone.backbone.stride)
    scores = model(padded)["out"][0, :, :h, :w]
    return scores.argmax(dim=0).to(torch.uint8).cpu().numpy()
