"""How far a trained network's backbone moved from the weights it started from: per ResNet level, the relative change
||W - W0|| / ||W0|| over the level's convolution weights (BatchNorm and the new layers left out).

    python scripts/weight_change.py results/<run>/classifier.weights.h5 ../shared/weights/resnet50_imagenet.pth

It prints one line per level. Used to tell a method that trains its backbone from one that
only trains its head (docs/methods.md, Puzzle-CAM).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsss_steps.lib.artifacts import open_store, read_state_dict  # noqa: E402

LEVELS = ("conv1", "layer1", "layer2", "layer3", "layer4")


def relative_change(trained: dict, reference: dict, prefix: str = "backbone.net.") -> dict:
    """{level: ||W - W0|| / ||W0||} over the 4-d (convolution) weights of each level (no total: conv1's ImageNet
    weights are about 100x larger than a whole layer's, so one norm over all levels would measure conv1 alone)."""
    moved, size = {}, {}
    for key, w0 in reference.items():
        level = key.split(".")[0]
        if level not in LEVELS or w0.dim() != 4 or prefix + key not in trained:
            continue
        diff = (trained[prefix + key].double() - w0.double()).pow(2).sum().item()
        moved[level] = moved.get(level, 0.0) + diff
        size[level] = size.get(level, 0.0) + w0.double().pow(2).sum().item()
    if not size:
        raise ValueError(f"no convolution weight of the reference is in the trained network (keys '{prefix}<name>')")
    return {level: (moved[level] / size[level]) ** 0.5 for level in LEVELS if level in size}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="a weights file of this project (HDF5, e.g. classifier.weights.h5)")
    parser.add_argument("reference", help="the state dict it started from (a torchvision .pth file)")
    args = parser.parse_args(argv)
    with open_store(args.weights) as store:
        trained = read_state_dict(store["state_dict"])
    reference = torch.load(args.reference, map_location="cpu", weights_only=True)
    for level, change in relative_change(trained, reference).items():
        print(f"{level}\t{change:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
