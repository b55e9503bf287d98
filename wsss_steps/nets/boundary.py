"""IRN's class-boundary branch (irn ``net/resnet50_irn.py``, ``fc_edge1``-``fc_edge6``): a 1x1 conv, GroupNorm(4) and
ReLU on every backbone level, all brought to the stride-4 grid, concatenated, and a 1x1 conv to one boundary logit.

The backbone is frozen, as in irn (its features are detached and it stays in eval mode): only the head learns.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbones import AMP_DTYPES, ResNet50Backbone, TinyBackbone, backbone_from_config, resolve_amp

BOUNDARY_STRIDE = 4  # irn's edge map is at stride 4


def level_channels(backbone: nn.Module) -> tuple:
    """Channels of ``backbone_levels``' outputs, finest first."""
    if isinstance(backbone, ResNet50Backbone):
        return (64, 256, 512, 1024, 2048)
    if isinstance(backbone, TinyBackbone):
        return (backbone.stem[-1][0].out_channels, *backbone.channels)
    raise TypeError(f"IRN's boundary branch has no levels for {type(backbone).__name__}")


def backbone_levels(backbone: nn.Module, x: torch.Tensor) -> list:
    """Every level's features, finest first: for ResNet-50 the stem after max-pooling (irn's stage1, stride 4), layer1
    (stride 4) and layer2-4 (the backbone's three stages); for the tiny backbone its stem (stride 2) and three stages.
    The ResNet runs in the backbone's memory layout and precision (backbone.channels_last, backbone.amp) and returns
    float32 NCHW features, as ResNet50Backbone.forward."""
    if isinstance(backbone, TinyBackbone):
        s0 = backbone.stem(x)
        s1 = backbone.stage1(s0)
        s2 = backbone.stage2(s1)
        return [s0, s1, s2, backbone.stage3(s2)]
    n = backbone.net
    amp = resolve_amp(backbone.amp, x.device.type)
    with torch.autocast(x.device.type, dtype=AMP_DTYPES.get(amp, torch.float32), enabled=amp is not None):
        if backbone.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        levels = [n.maxpool(n.relu(n.bn1(n.conv1(x))))]
        for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
            levels.append(layer(levels[-1]))
    return [f.float().contiguous() for f in levels]


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
        self.heads = nn.ModuleList(_LevelHead(c, channels) for c in level_channels(backbone))
        self.fuse = nn.Conv2d(channels * len(self.heads), 1, 1, bias=True)

    def forward(self, x):
        """Boundary logits (B, 1, ceil(H / 4), ceil(W / 4)); sigmoid gives B."""
        size = (-(-x.shape[-2] // BOUNDARY_STRIDE), -(-x.shape[-1] // BOUNDARY_STRIDE))
        with torch.no_grad():
            levels = backbone_levels(self.backbone, x)
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
