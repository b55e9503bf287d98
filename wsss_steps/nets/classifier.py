"""The CAM classifier: backbone + global average pooling + bias-free 1x1 classifier."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from ..artifacts import load_weights
from .backbones import backbone_from_config, backbone_state


class CAMNet(nn.Module):
    """Backbone + global average pooling + bias-free 1x1 classifier; CAM M_c = w_c^T f(x, y)."""

    def __init__(self, backbone: nn.Module, num_fg: int):
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Conv2d(backbone.channels[-1], num_fg, 1, bias=False)

    def forward(self, x):
        feats = self.backbone(x)[-1]
        return self.classifier(F.adaptive_avg_pool2d(feats, 1)).flatten(1)

    def cam_scores(self, cam):
        """Class scores y_c = GAP(M_c) from raw CAMs (B, num_fg, h, w): the classifier is linear, so GAP and w commute."""
        return cam.mean(dim=(-2, -1))

    def cam(self, x):
        """Raw class activation maps (B, num_fg, h, w) at the backbone's stride."""
        return self.classifier(self.backbone(x)[-1])

    def scores_from(self, level: int, features):
        """Class scores y (B, num_fg) from the backbone's output ``level`` (for Grad-CAM at an inner layer)."""
        if level != len(self.backbone.channels) - 1:
            features = self.backbone.forward_from(level, features)
        return self.classifier(F.adaptive_avg_pool2d(features, 1)).flatten(1)

    def trainable_parameters(self):
        """(backbone parameters, new-layer parameters)."""
        return list(self.backbone.parameters()), list(self.classifier.parameters())


def build_classifier(backbone_cfg: dict, num_classes: int, pretrained: bool = True) -> CAMNet:
    """The classifier for ``num_classes`` (background included) on the configured backbone."""
    backbone = backbone_from_config(backbone_cfg, pretrained)
    return CAMNet(backbone, num_classes - 1)


def load_classifier_backbone(backbone, path, backbone_cfg: dict, classes):
    """Copy the backbone weights of a classifier trained for ``classes`` (``path``) into ``backbone``."""
    classifier = build_classifier(backbone_cfg, len(classes), pretrained=False)
    load_weights(path, classifier, stage="train_classifier", classes=classes)
    backbone.load_state_dict(backbone_state(classifier.state_dict()))
