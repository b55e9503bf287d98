"""IRN's class-boundary branch (irn ``net/resnet50_irn.py``, ``fc_edge1``-``fc_edge6``): a 1x1 conv, GroupNorm(4) and
ReLU on every backbone level, all brought to the stride-4 grid, concatenated, and a 1x1 conv to one boundary logit.

The backbone is frozen, as in irn (its features are detached and it stays in eval mode): only the head learns.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbones import backbone_from_config

BOUNDARY_STRIDE = 4  # irn's edge map is at stride 4


class _LevelHead(nn.Module):
    """conv 1x1 (no bias) -> GroupNorm(4) -> resize to the stride-4 grid -> ReLU, irn's order."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.norm = nn.GroupNorm(4, cout)

    def forward(self, x, size):
        x = self.norm(self.conv(x))
        if x.shape[-2] > size[0]:
            x = F.adaptive_avg_pool2d(x, size)  # a level finer than stride 4 (the tiny backbone's stem)
        elif x.shape[-2:] != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return F.relu(x)


class BoundaryNet(nn.Module):
    """Boundary logits at stride 4 from every level of a frozen backbone (irn's edge branch; 32 channels a level)."""

    def __init__(self, backbone: nn.Module, channels: int = 32):
        super().__init__()
        self.backbone = backbone
        self.backbone.requires_grad_(False)
        self.heads = nn.ModuleList(_LevelHead(c, channels) for c in backbone.level_channels)
        self.fuse = nn.Conv2d(channels * len(backbone.level_channels), 1, 1, bias=True)

    def forward(self, x):
        """Boundary logits (B, 1, ceil(H / 4), ceil(W / 4)); sigmoid gives B."""
        size = (-(-x.shape[-2] // BOUNDARY_STRIDE), -(-x.shape[-1] // BOUNDARY_STRIDE))
        with torch.no_grad():
            levels = self.backbone.levels(x)
        return self.fuse(torch.cat([head(f, size) for head, f in zip(self.heads, levels)], dim=1))

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # frozen: its BatchNorm statistics never move
        return self

    def trainable_parameters(self):
        """(backbone parameters: none, it is frozen; the head's parameters)."""
        return [], list(self.heads.parameters()) + list(self.fuse.parameters())


def build_boundary_net(backbone_cfg: dict, pretrained: bool = True) -> BoundaryNet:
    """IRN's boundary branch on the configured backbone (ImageNet weights when ``pretrained``)."""
    return BoundaryNet(backbone_from_config(backbone_cfg, pretrained))
