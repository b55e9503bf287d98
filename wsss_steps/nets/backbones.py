"""Backbones: a tiny CNN for CPU tests and demos, and torchvision's ResNet-50 with a chosen output stride."""

from __future__ import annotations

import logging
import sys
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


class WeightsError(ValueError):
    """Backbone weights that cannot be found or do not fit."""


def _conv_bn(cin, cout, stride=1, dilation=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Block(nn.Module):
    """Two 3x3 convs with a residual shortcut."""

    def __init__(self, cin, cout, stride=1, dilation=1):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, stride, dilation),
                                  nn.Conv2d(cout, cout, 3, 1, dilation, dilation, bias=False), nn.BatchNorm2d(cout))
        self.short = nn.Identity() if (cin == cout and stride == 1) else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.body(x) + self.short(x))


class TinyBackbone(nn.Module):
    """A small residual CNN at output stride 8 for tests and the built-in demo (no pretrained weights)."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv_bn(3, w, 2), _conv_bn(w, w))
        self.stage1 = _Block(w, 2 * w, stride=2)
        self.stage2 = _Block(2 * w, 4 * w, stride=2)
        self.stage3 = nn.Sequential(_Block(4 * w, 8 * w, dilation=2), _Block(8 * w, 8 * w, dilation=4))
        self.channels = (2 * w, 4 * w, 8 * w)
        self.stride = 8

    def forward(self, x):
        s1 = self.stage1(self.stem(x))
        s2 = self.stage2(s1)
        s3 = self.stage3(s2)
        return [s1, s2, s3]

    def forward_from(self, level: int, x):
        """The last stage's features from the output ``level`` (0, 1, 2) of ``forward``."""
        for stage in (self.stage2, self.stage3)[level:]:
            x = stage(x)
        return x


BATCH_NORMS = ("frozen", "train")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # backbone.amp: autocast precision of the ResNet stages
AMP_CHOICES = (*AMP_DTYPES, "auto")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instructions that compute bfloat16 natively

log = logging.getLogger("wsss_steps")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set:
    """The CPU's feature flags as Linux lists them (empty where there is no /proc/cpuinfo)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


@lru_cache(maxsize=None)
def native_bf16(device_type: str) -> bool:
    """Whether the device computes bfloat16 natively: a CUDA GPU from Ampere on, or a CPU with AVX512-BF16 or AMX."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type == "cpu":
        return torch.backends.mkldnn.is_available() and bool(cpu_flags() & set(CPU_BF16_FLAGS))
    return False


_AUTO_SAID: set = set()  # device types whose 'auto' choice is already in the log


def resolve_amp(amp: str | None, device_type: str) -> str | None:
    """backbone.amp for a device: 'auto' is bf16 where the device computes it natively, else None (float32)."""
    if amp != "auto":
        return amp
    chosen = "bf16" if native_bf16(device_type) else None
    if device_type not in _AUTO_SAID:
        _AUTO_SAID.add(device_type)
        log.info("backbone.amp auto on %s: %s", device_type,
                 "bf16 (native bfloat16 instructions)" if chosen else "float32 (no native bfloat16 instructions)")
    return chosen


def computed_in(backbone_cfg: dict, device) -> dict:
    """Provenance of a network stage: the device type and the precision its backbone ran in (backbone.amp, 'auto' resolved)."""
    device_type = torch.device(device).type
    return {"device": device_type, "amp": resolve_amp(backbone_cfg.get("amp"), device_type) or "float32"}


def default_batch_norm(weights) -> str:
    """ResNet-50's BatchNorm when the config names none: frozen with pretrained weights, trained without."""
    return "frozen" if weights else "train"


class ResNet50Backbone(nn.Module):
    """torchvision ResNet-50 without its classifier, at output stride 8 or 16 (dilated last stages).

    batch_norm "frozen" keeps every BatchNorm at its ImageNet statistics and affine values (torchvision's
    FrozenBatchNorm2d), as psa and irn do: small WSSS batches would otherwise overwrite them.
    channels_last runs the ResNet stages in NHWC memory (weights and activations; with oneDNN on 2 CPU cores
    1.47x faster inference and 1.11x faster training, benchmarks/channels_last.py); the stage outputs are
    returned in the usual NCHW layout, so the heads do not see it. Results agree with NCHW to float rounding, not bit for bit.
    amp ("bf16" or "fp16") runs the stages under autocast and returns float32 features; "auto" is bf16 on a
    device that computes bfloat16 natively and float32 elsewhere (decided at the first forward, from the input's device).
    """

    def __init__(self, output_stride: int = 16, batch_norm: str = "frozen", channels_last: bool = False,
                 amp: str | None = None):
        super().__init__()
        if amp is not None and amp not in AMP_CHOICES:
            raise ValueError(f"amp must be one of {AMP_CHOICES} or absent, not {amp!r}")
        self.amp = amp
        if output_stride not in (8, 16):
            raise ValueError("output_stride must be 8 or 16")
        if batch_norm not in BATCH_NORMS:
            raise ValueError(f"batch_norm must be one of {BATCH_NORMS}, not {batch_norm!r}")
        import torchvision  # here, not at the top: it costs about 2 s per process, and the tiny backbone needs none

        norm = torchvision.ops.FrozenBatchNorm2d if batch_norm == "frozen" else nn.BatchNorm2d
        net = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, output_stride == 8, True],
                                          norm_layer=norm)
        self.channels_last = channels_last
        if channels_last:
            net.to(memory_format=torch.channels_last)  # load_state_dict copies into these tensors, keeping NHWC
        self.net = net
        self.channels = (512, 1024, 2048)
        self.stride = output_stride

    def forward(self, x):
        amp = resolve_amp(self.amp, x.device.type)
        if amp is None:
            return self._stages(x)
        with torch.autocast(x.device.type, dtype=AMP_DTYPES[amp]):
            outputs = self._stages(x)
        return [o.float() for o in outputs]  # the heads and losses stay in float32

    def _stages(self, x):
        n = self.net
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        x = n.layer1(x)
        s2 = n.layer2(x)
        s3 = n.layer3(s2)
        s4 = n.layer4(s3)
        if self.channels_last:
            return [s2.contiguous(), s3.contiguous(), s4.contiguous()]
        return [s2, s3, s4]

    def forward_from(self, level: int, x):
        """The last stage's features from the output ``level`` (0, 1, 2) of ``forward``."""
        amp = resolve_amp(self.amp, x.device.type)
        with torch.autocast(x.device.type, dtype=AMP_DTYPES.get(amp, torch.float32), enabled=amp is not None):
            for layer in (self.net.layer3, self.net.layer4)[level:]:
                x = layer(x)
        return x.float()

    def load_imagenet(self, weights: str):
        """Load ImageNet weights from a local state-dict file or a torchvision weights name (downloads)."""
        path = Path(weights)
        if path.suffix in (".pth", ".pt") or path.exists():
            if not path.is_file():
                raise WeightsError(f"{path}: backbone weights file not found.")
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            import torchvision

            try:
                enum = torchvision.models.ResNet50_Weights[weights]
            except KeyError:
                raise WeightsError(f"backbone weights '{weights}' is neither a file nor a torchvision "
                                   f"ResNet50_Weights name ({', '.join(torchvision.models.ResNet50_Weights.__members__)}).") from None
            state = enum.get_state_dict(progress=sys.stderr.isatty())  # no carriage-return frames in log files
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            missing, unexpected = self.net.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            detail = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise WeightsError(f"{weights}: weights do not fit ResNet-50 ({detail}).") from None
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise WeightsError(f"{weights}: weights do not fit ResNet-50 (missing {missing[:3]}, unexpected {unexpected[:3]}).")


def make_backbone(name: str, output_stride: int = 8, weights: str | None = None, width: int = 32,
                  batch_norm: str | None = None, channels_last: bool = False, amp: str | None = None) -> nn.Module:
    """Build a backbone by name ('tiny' or 'resnet50'), optionally with ImageNet weights.

    ResNet-50's batch_norm defaults to "frozen" with weights and "train" without; tiny always trains its BatchNorm.
    channels_last and amp apply to ResNet-50 only (the tiny backbone is too small to gain from them).
    """
    if name == "tiny":
        if weights:
            raise WeightsError("the 'tiny' backbone has no pretrained weights; set backbone.weights to null.")
        return TinyBackbone(width)
    if name == "resnet50":
        backbone = ResNet50Backbone(output_stride, batch_norm or default_batch_norm(weights), channels_last, amp)
        if weights:
            backbone.load_imagenet(weights)
        return backbone
    raise ValueError(f"unknown backbone '{name}'")


def backbone_from_config(backbone_cfg: dict, pretrained: bool = True) -> nn.Module:
    """The backbone of the config's ``backbone`` section; ImageNet weights are loaded only when ``pretrained``.

    The BatchNorm kind follows the configured weights even when they are not loaded, so a network built
    to receive trained weights has the same layers as the one that was trained.
    """
    weights = backbone_cfg.get("weights")
    batch_norm = backbone_cfg.get("batch_norm") or default_batch_norm(weights)
    return make_backbone(backbone_cfg["name"], backbone_cfg.get("output_stride", 8), weights if pretrained else None,
                         backbone_cfg.get("width", 32), batch_norm, backbone_cfg.get("channels_last", False),
                         backbone_cfg.get("amp"))


def backbone_state(model_state: dict, prefix: str = "backbone.") -> dict:
    """The backbone part of a CAMNet state dict, keys without the prefix."""
    return {k[len(prefix):]: v for k, v in model_state.items() if k.startswith(prefix)}
