"""The two backbone workloads of the cpu_photos preset that benchmarks/channels_last.py and amp_bf16.py time.

* inference: one 320 x 240 photo at the CAM scales 1, 1.5 and 2 with its flip (a batch of 2 per scale),
  forward only, as extract_cams and the walk's AffinityNet features run it;
* training: forward + backward + SGD step on a batch of 8 crops of 224 x 224, as train_classifier,
  train_affinity and train_segmentation run it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

RESNET50 = {"name": "resnet50", "output_stride": 16, "weights": None, "batch_norm": "frozen"}


def parse_args(doc: str, argv=None) -> argparse.Namespace:
    """--threads and --repeats, with PyTorch set to those threads and seeded."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def timed(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inputs():
    """A 320 x 240 photo and a batch of 8 crops of 224 (random values: speed does not depend on them)."""
    return torch.rand(1, 3, 240, 320), torch.rand(8, 3, 224, 224)


def infer(model, photo):
    """The photo at scales 1, 1.5 and 2 with its flip, forward only."""
    with torch.no_grad():
        for scale in (1.0, 1.5, 2.0):
            x = F.interpolate(photo, scale_factor=scale, mode="bilinear", align_corners=False)
            model(torch.cat([x, x.flip(-1)]))


def train(model, crops):
    """One training step on the crops (learning rate 0: the weights stay as they are)."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    optimizer.zero_grad()
    sum(f.mean() for f in model(crops)).backward()
    optimizer.step()


def compare(base, fast, repeats: int, names=("base", "fast")) -> bool:
    """Time both workloads on both models (eval mode for inference, train mode for training), print the figures
    and return whether ``fast`` was at least as fast in both."""
    photo, crops = inputs()
    ok = True
    for name, work, mode, data in (("inference (1 photo, 3 scales + flip)", infer, "eval", photo),
                                   ("training step (8 crops of 224)", train, "train", crops)):
        a = timed(lambda: work(getattr(base, mode)(), data), repeats)
        b = timed(lambda: work(getattr(fast, mode)(), data), repeats)
        ok &= b <= a
        print(f"{name}: {names[0]} {a:.3f} s, {names[1]} {b:.3f} s, speed-up {a / b:.2f}x")
    return ok
