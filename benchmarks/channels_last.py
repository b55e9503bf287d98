"""Benchmark: the ResNet-50 backbone in channels-last (NHWC) memory against the default NCHW layout, on the CPU.

Two workloads of the cpu_photos preset, each with both layouts in the same run (same weights, same inputs):

* inference: one 320 x 240 photo at the CAM scales 1, 1.5 and 2 with its flip (a batch of 2 per scale),
  forward only, as extract_cams and the walk's AffinityNet features run it;
* training: forward + backward + SGD step on a batch of 8 crops of 224 x 224, as train_classifier,
  train_affinity and train_segmentation run it.

The backbone is ``backbone_from_config`` at output stride 16 with frozen BatchNorm and random weights (speed
does not depend on the values). Each figure is the median of ``--repeats`` timed runs after one warm-up run.
Printed: seconds per run for each layout, the speed-up, and the largest difference of the features
(float rounding only). PASS when channels-last is at least as fast as NCHW in both workloads.

Run from the repository root:

    .venv/bin/python benchmarks/channels_last.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from wsss_steps.nets.backbones import backbone_from_config


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = {"name": "resnet50", "output_stride": 16, "weights": None, "batch_norm": "frozen"}
    nchw = backbone_from_config(config)
    nhwc = backbone_from_config({**config, "channels_last": True})
    nhwc.load_state_dict(nchw.state_dict())
    photo = torch.rand(1, 3, 240, 320)
    crops = torch.rand(8, 3, 224, 224)

    def infer(model):
        with torch.no_grad():
            for scale in (1.0, 1.5, 2.0):
                x = F.interpolate(photo, scale_factor=scale, mode="bilinear", align_corners=False)
                model(torch.cat([x, x.flip(-1)]))

    def train(model):
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
        optimizer.zero_grad()
        sum(f.mean() for f in model(crops)).backward()
        optimizer.step()

    with torch.no_grad():
        difference = max((a - b).abs().max().item() for a, b in zip(nchw.eval()(photo), nhwc.eval()(photo)))
    ok = True
    print(f"ResNet-50 backbone, output stride 16, {args.threads} threads, median of {args.repeats}")
    for name, work, mode in (("inference (1 photo, 3 scales + flip)", infer, "eval"),
                             ("training step (8 crops of 224)", train, "train")):
        base = timed(lambda: work(getattr(nchw, mode)()), args.repeats)
        fast = timed(lambda: work(getattr(nhwc, mode)()), args.repeats)
        ok &= fast <= base
        print(f"{name}: NCHW {base:.3f} s, channels-last {fast:.3f} s, speed-up {base / fast:.2f}x")
    print(f"largest feature difference between the layouts: {difference:.2e}")
    print("PASS" if ok else "FAIL: channels-last is slower here")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
