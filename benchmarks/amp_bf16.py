"""Benchmark: the ResNet-50 backbone under bfloat16 autocast (backbone.amp: bf16) against float32, on the CPU.

The two workloads of benchmarks/channels_last.py, each in float32 and in bf16 in the same run (same weights,
same inputs, both channels-last as the cpu_photos preset runs them):

* inference: one 320 x 240 photo at the CAM scales 1, 1.5 and 2 with its flip (a batch of 2 per scale),
  forward only, as extract_cams and the walk's AffinityNet features run it;
* training: forward + backward + SGD step on a batch of 8 crops of 224 x 224, as train_classifier,
  train_affinity and train_segmentation run it.

Printed: whether this CPU computes bfloat16 natively (what backbone.amp: auto decides by), seconds per run
for each precision (median of ``--repeats`` after one warm-up), the speed-up, and the largest difference of
the last stage's features relative to their largest value. PASS when bf16 is faster in both workloads; on a
CPU without native bfloat16 it is expected to fail (there auto keeps float32).

Run from the repository root:

    .venv/bin/python benchmarks/amp_bf16.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from wsss_steps.nets.backbones import backbone_from_config, native_bf16


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
    config = {"name": "resnet50", "output_stride": 16, "weights": None, "batch_norm": "frozen", "channels_last": True}
    full = backbone_from_config(config)
    mixed = backbone_from_config({**config, "amp": "bf16"})
    mixed.load_state_dict(full.state_dict())
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
        a, b = full.eval()(photo)[-1], mixed.eval()(photo)[-1]
        difference = ((a - b).abs().max() / a.abs().max()).item()
    ok = True
    print(f"ResNet-50 backbone, output stride 16, channels-last, {args.threads} threads, median of {args.repeats}; "
          f"native bfloat16 on this CPU: {native_bf16('cpu')}")
    for name, work, mode in (("inference (1 photo, 3 scales + flip)", infer, "eval"),
                             ("training step (8 crops of 224)", train, "train")):
        base = timed(lambda: work(getattr(full, mode)()), args.repeats)
        fast = timed(lambda: work(getattr(mixed, mode)()), args.repeats)
        ok &= fast < base
        print(f"{name}: float32 {base:.3f} s, bf16 {fast:.3f} s, speed-up {base / fast:.2f}x")
    print(f"largest difference of the last stage's features, relative to their largest value: {difference:.2e}")
    print("PASS" if ok else "FAIL: bf16 is not faster here")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
