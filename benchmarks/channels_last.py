"""Benchmark: the ResNet-50 backbone in channels-last (NHWC) memory against the default NCHW layout, on the CPU.

The two workloads of benchmarks/backbone_workloads.py (CAM inference of one photo at three scales with its
flip; one training step on 8 crops of 224), with both layouts in the same run (same weights, same inputs).
The backbone is ``backbone_from_config`` at output stride 16 with frozen BatchNorm and random weights (speed
does not depend on the values). Each figure is the median of ``--repeats`` timed runs after one warm-up run.
Printed: seconds per run for each layout, the speed-up, and the largest difference of the features
(float rounding only). PASS when channels-last is at least as fast as NCHW in both workloads.

Run from the repository root:

    .venv/bin/python benchmarks/channels_last.py --threads 2
"""

from __future__ import annotations

import sys

import torch

from backbone_workloads import RESNET50, compare, inputs, parse_args
from wsss_steps.nets.backbones import backbone_from_config


def main(argv=None) -> int:
    args = parse_args(__doc__, argv)
    nchw = backbone_from_config(RESNET50)
    nhwc = backbone_from_config({**RESNET50, "channels_last": True})
    nhwc.load_state_dict(nchw.state_dict())
    photo, _ = inputs()
    with torch.no_grad():
        difference = max((a - b).abs().max().item() for a, b in zip(nchw.eval()(photo), nhwc.eval()(photo)))
    print(f"ResNet-50 backbone, output stride 16, {args.threads} threads, median of {args.repeats}")
    ok = compare(nchw, nhwc, args.repeats, ("NCHW", "channels-last"))
    print(f"largest feature difference between the layouts: {difference:.2e}")
    print("PASS" if ok else "FAIL: channels-last is slower here")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
