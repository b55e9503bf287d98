"""AffinityNet's network: 1x1 convs on three backbone stages, concatenated, one more 1x1 conv (the features f)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbones import backbone_from_config


HEAD_INITS = ("torch", "psa")


def psa_head_init(reduce, fuse) -> None:
    """w ~ N(0, 2 / fan_in) for each 1x1 conv on a stage, w ~ U(+-4 sqrt(6 / (fan_in + fan_out))) for the fusing conv."""
    for conv in reduce:
        nn.init.kaiming_normal_(conv.weight)
    nn.init.xavier_uniform_(fuse.weight, gain=4)


class AffinityNet(nn.Module):
    """1x1 convs (ELU, no bias) on three backbone stages, concatenated, one more 1x1 conv: the affinity features f.

    The stages meet at ``feature_stride`` (None: the backbone's output stride): finer stages are average-pooled to it,
    coarser ones bilinearly upsampled. psa computes its affinities at stride 8; a ResNet-50 at output stride 16 with
    feature_stride 8 keeps its stride-8 stage at full resolution instead of pooling it to 16. ``head_init``
    ``psa`` draws the new convs as psa does (``psa_head_init``); ``torch`` (what None means) keeps PyTorch's default.
    """

    def __init__(self, backbone: nn.Module, head_channels=(64, 128, 256), feature_stride: int | None = None,
                 head_init: str | None = None):
        super().__init__()
        self.backbone = backbone
        self.feature_stride = feature_stride or backbone.stride
        self.reduce = nn.ModuleList(nn.Conv2d(c, h, 1, bias=False) for c, h in zip(backbone.channels, head_channels))
        total = sum(head_channels)
        self.fuse = nn.Conv2d(total, total, 1, bias=False)
        if (head_init or "torch") not in HEAD_INITS:
            raise ValueError(f"affinity head_init must be one of {HEAD_INITS}, not {head_init!r}")
        if head_init == "psa":
            psa_head_init(self.reduce, self.fuse)

    def forward(self, x):
        feats = self.backbone(x)
        size = feats[-1].shape[-2:]
        if self.feature_stride != self.backbone.stride:
            size = (x.shape[-2] // self.feature_stride, x.shape[-1] // self.feature_stride)
        parts = []
        for conv, f in zip(self.reduce, feats):
            if f.shape[-2] > size[0]:
                f = F.adaptive_avg_pool2d(f, size)
            elif f.shape[-2:] != size:
                f = F.interpolate(f, size=size, mode="bilinear", align_corners=False)
            parts.append(F.elu(conv(f)))
        return F.elu(self.fuse(torch.cat(parts, dim=1)))

    def trainable_parameters(self):
        """(backbone parameters, new-layer parameters)."""
        return list(self.backbone.parameters()), list(self.reduce.parameters()) + list(self.fuse.parameters())


def build_affinity_net(backbone_cfg: dict, head_channels, pretrained: bool = True,
                       feature_stride: int | None = None, head_init: str | None = None) -> AffinityNet:
    """AffinityNet on the configured backbone, its features at ``feature_stride`` (None: the backbone's stride)."""
    backbone = backbone_from_config(backbone_cfg, pretrained)
    return AffinityNet(backbone, head_channels, feature_stride, head_init)
