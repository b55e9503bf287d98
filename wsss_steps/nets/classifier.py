"""The CAM classifier: backbone + global average pooling + bias-free 1x1 classifier."""

from __future__ import annotations

import json

import torch.nn as nn
import torch.nn.functional as F

from ..lib.artifacts import load_weights, open_store
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


class ACoLNet(CAMNet):
    """CAMNet with ACoL's second head (Zhang et al. 2018): classifier B, a bias-free 1x1 conv like A, reads the
    features with A's confident region erased in training (wsss_steps/methods/acol.py)."""

    def __init__(self, backbone: nn.Module, num_fg: int):
        super().__init__(backbone, num_fg)
        self.classifier_b = nn.Conv2d(backbone.channels[-1], num_fg, 1, bias=False)

    def cam_pair(self, x):
        """Raw maps of both heads on the same (unerased) features: (M_A, M_B), each (B, num_fg, h, w)."""
        features = self.backbone(x)[-1]
        return self.classifier(features), self.classifier_b(features)

    def trainable_parameters(self):
        return list(self.backbone.parameters()), [*self.classifier.parameters(), *self.classifier_b.parameters()]


class EPSNet(CAMNet):
    """CAMNet with EPS's extra background map (Lee et al. 2021): C + 1 maps, the background last. ``forward`` gives
    the C class scores, ``cam`` all C + 1 maps (class positions 0..C-1 as in CAMNet)."""

    def __init__(self, backbone: nn.Module, num_fg: int):
        super().__init__(backbone, num_fg + 1)
        self.num_fg = num_fg

    def forward(self, x):
        return super().forward(x)[:, :self.num_fg]


def build_classifier(backbone_cfg: dict, num_classes: int, pretrained: bool = True, method: str = "cam") -> CAMNet:
    """The classifier for ``num_classes`` (background included) on the configured backbone; ``classifier.method``
    acol adds ACoL's second head, eps EPS's background map; every other method trains the plain CAMNet."""
    backbone = backbone_from_config(backbone_cfg, pretrained)
    return {"acol": ACoLNet, "eps": EPSNet}.get(method, CAMNet)(backbone, num_classes - 1)


def classifier_method(path) -> str:
    """The ``classifier.method`` a classifier weights file was trained with (cam when not recorded)."""
    with open_store(path, "train_classifier") as store:
        return json.loads(store.attrs["params"]).get("method", "cam")


def load_classifier(path, backbone_cfg: dict, classes) -> CAMNet:
    """The classifier saved in ``path`` (trained for ``classes``), built for the method it was trained with."""
    model = build_classifier(backbone_cfg, len(classes), pretrained=False, method=classifier_method(path))
    load_weights(path, model, stage="train_classifier", classes=classes)
    return model


def load_classifier_backbone(backbone, path, backbone_cfg: dict, classes):
    """Copy the backbone weights of a classifier trained for ``classes`` (``path``) into ``backbone``."""
    classifier = load_classifier(path, backbone_cfg, classes)
    backbone.load_state_dict(backbone_state(classifier.state_dict()))
