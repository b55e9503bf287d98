"""DeepLabV3 (torchvision's ASPP head) on one of our backbones."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
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
    """torchvision's DeepLabV3, with the parameters split as the other networks split theirs. With ``image_classes``
    it also has AE-PSL's classification branch: a 1x1 conv on the backbone features, average-pooled to image-level
    class scores ("image" in the output), trained beside the segmentation head."""

    def __init__(self, backbone, classifier, image_classes: int | None = None):
        super().__init__(backbone, classifier)
        self.image_head = None if image_classes is None else nn.Conv2d(backbone.backbone.channels[-1], image_classes, 1, bias=False)

    def forward(self, x):
        if self.image_head is None:
            return super().forward(x)
        features = self.backbone(x)["out"]
        out = F.interpolate(self.classifier(features), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return OrderedDict(out=out, image=F.adaptive_avg_pool2d(self.image_head(features), 1).flatten(1))

    def trainable_parameters(self):
        """(backbone parameters, new-layer parameters)."""
        extra = [] if self.image_head is None else list(self.image_head.parameters())
        return list(self.backbone.parameters()), list(self.classifier.parameters()) + extra


def make_deeplabv3(backbone: nn.Module, num_classes: int, aspp_channels: int = 256, atrous_rates=(12, 24, 36),
                   image_head: bool = False) -> SegmentationNet:
    """torchvision DeepLabV3 (ASPP head) on one of our backbones; ``image_head`` adds the classification branch."""
    head = nn.Sequential(
        ASPP(backbone.channels[-1], list(atrous_rates), aspp_channels),
        nn.Conv2d(aspp_channels, aspp_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(aspp_channels), nn.ReLU(inplace=True),
        nn.Conv2d(aspp_channels, num_classes, 1))
    return SegmentationNet(_OutDict(backbone), head, num_classes - 1 if image_head else None)


def build_segmentation_net(backbone_cfg: dict, params: dict, num_classes: int, pretrained: bool = True) -> SegmentationNet:
    """DeepLabV3 with an ASPP head (params: aspp_channels, atrous_rates) on the configured backbone; with method psl,
    the classification branch too."""
    backbone = backbone_from_config(backbone_cfg, pretrained)
    return make_deeplabv3(backbone, num_classes, params["aspp_channels"], params["atrous_rates"],
                          image_head=params.get("method") == "psl")


@torch.no_grad()
def predict(model, image: torch.Tensor) -> np.ndarray:
    """argmax_c of the model's full-resolution scores for one normalised (3, H, W) image."""
    padded, (h, w) = pad_to_stride(image[None], model.backbone.backbone.stride)
    scores = model(padded)["out"][0, :, :h, :w]
    return scores.argmax(dim=0).to(torch.uint8).cpu().numpy()


def load_segmentation_net(weights, device):
    """The segmentation network of a weights file, in eval mode on ``device``, and the class names it was trained for
    (the backbone and head settings are read from the file)."""
    import json

    from ..lib.artifacts import load_weights, open_store

    with open_store(weights, "train_segmentation") as store:
        params = json.loads(store.attrs["params"])
        classes = [str(c) for c in store.attrs["classes"]]
    backbone_cfg = params.pop("backbone")
    model = build_segmentation_net(backbone_cfg, params, len(classes), pretrained=False)
    load_weights(weights, model, stage="train_segmentation")
    return model.to(device).eval(), classes
