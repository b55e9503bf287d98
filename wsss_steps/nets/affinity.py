"""AffinityNet's network: 1x1 convs on three backbone stages, concatenated, one more 1x1 conv (the features f)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbones import backbone_from_config


class AffinityNet(nn.Module):
    """1x1 convs (ELU, no bias) on three backbone stages, concatenated, one more 1x1 conv: the affinity features f."""

    def __init__(self, backbone: nn.Module, head_channels=(64, 128, 256)):
        super().__init__()
        self.backbone = backbone
        self.reduce = nn.ModuleList(nn.Conv2d(c, h, 1, bias=False) for c, h in zip(backbone.channels, head_channels))
        total = sum(head_channels)
        self.fuse = nn.Conv2d(total, total, 1, bias=False)

    def forward(self, x):
        feats = self.backbone(x)
        size = feats[-1].shape[-2:]
        parts = []
        for conv, f in zip(self.reduce, feats):
            if f.shape[-2:] != size:
                f = F.adaptive_avg_pool2d(f, size)
            parts.append(F.elu(conv(f)))
        return F.elu(self.fuse(torch.cat(parts, dim=1)))

    def trainable_parameters(self):
        """(backbone parameters, new-layer parameters)."""
        return list(self.backbone.parameters()), list(self.reduce.parameters()) + list(self.fuse.parameters())


def build_affinity_net(backbone_cfg: dict, head_channels, pretrained: bool = True) -> AffinityNet:
    """AffinityNet on the configured backbone."""
    backbone = backbone_from_config(backbone_cfg, pretrained)
    return AffinityNet(backbone, head_channels)
