"""Benchmark: the ResNet-50 backbone under bfloat16 autocast (backbone.amp: bf16) against float32, on the CPU.

The two workloads of benchmarks/backbone_workloads.py (CAM inference of one photo at three scales with its
flip; one training step on 8 crops of 224), each in float32 and in bf16 in the same run (same weights, same
inputs, both channels-last as the cpu_photos preset runs them).

Printed: whether this CPU computes bfloat16 natively (what backbone.amp: auto decides by), seconds per run
for each precision (median of ``--repeats`` after one warm-up), the speed-up, and the largest difference of
the last stage's features relative to their largest value. PASS when bf16 is at least as fast in both
workloads; on a CPU without native bfloat16 it is expected to fail (there auto keeps float32).

Run from the repository root:

    .venv/bin/python benchmarks/amp_bf16.py --threads 2
"""

from __future__ import annotations

import sys

import torch

from backbone_workloads import RESNET50, compare, inputs, parse_args
from wsss_steps.nets.backbones import backbone_from_config, native_bf16


def main(argv=None) -> int:
    args = parse_args(__doc__, argv)
    full = backbone_from_config({**RESNET50, "channels_last": True})
    mixed = backbone_from_config({**RESNET50, "channels_last": True, "amp": "bf16"})
    mixed.load_state_dict(full.state_dict())
    photo, _ = inputs()
    with torch.no_grad():
        a, b = full.eval()(photo)[-1], mixed.eval()(photo)[-1]
        difference = ((a - b).abs().max() / a.abs().max()).item()
    print(f"ResNet-50 backbone, output stride 16, channels-last, {args.threads} threads, median of {args.repeats}; "
          f"native bfloat16 on this CPU: {native_bf16('cpu')}")
    ok = compare(full, mixed, args.repeats, ("float32", "bf16"))
    print(f"largest difference of the last stage's features, relative to their largest value: {difference:.2e}")
    print("PASS" if ok else "FAIL: bf16 is slower here")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
