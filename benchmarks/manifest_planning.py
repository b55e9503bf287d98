"""Benchmark: the dataset manifests at PASCAL VOC's scale, the part of planning that reads the dataset.

Writes a VOC-layout tree of N images (default 10,582, VOC 2012's augmented training set) under ``--work``: a JPEG of
``--image-kb`` random bytes each (hashing reads bytes; it decodes nothing), an Annotations XML for every image (VOC's
image-level labels) and a palette mask for the first ``--masks`` (VOC's 1,464 train + 1,449 val segmentation
masks). Then, each in its own measurement:

* ``cold``: the manifests written with an empty stat cache (a first plan: every file hashed, every XML read);
* ``untouched``: again, nothing changed (every later plan: one stat per file, nothing hashed, nothing written);
* ``touched``: every file touched, content unchanged (every file hashed again, no manifest rewritten);
* ``baseline``: reading the split lists alone, what planning read of the dataset before the manifests.

Printed: seconds for each, and PASS / FAIL for the target that an untouched dataset adds under 10 s to planning
(``untouched`` - ``baseline``). Run from the repository root:

    .venv/bin/python benchmarks/manifest_planning.py --work /tmp/voc_manifest
    .venv/bin/python benchmarks/manifest_planning.py --work /tmp/small --images 500 --masks 100   # a quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsss_steps.data import VOCLayout  # noqa: E402
from wsss_steps.data.label_png import save_label_png  # noqa: E402
from wsss_steps.data.manifest import MANIFESTS, write_manifests  # noqa: E402

CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
           "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def write_tree(root: Path, images: int, masks: int, image_kb: int, seed: int = 0):
    """The VOC-layout tree: ids 000000.., train = all, val = the last masks // 2 of those with masks."""
    rng = np.random.default_rng(seed)
    for sub in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids = [f"{i:06d}" for i in range(images)]
    for k, image_id in enumerate(ids):
        (root / "JPEGImages" / f"{image_id}.jpg").write_bytes(rng.bytes(image_kb * 1024))
        names = "".join(f"<object><name>{CLASSES[c]}</name></object>" for c in rng.choice(np.arange(1, 21), 2, False))
        (root / "Annotations" / f"{image_id}.xml").write_text(f"<annotation>{names}</annotation>")
        if k < masks:
            mask = np.zeros((375, 500), np.uint8)
            mask[100:200, 100:300] = rng.integers(1, 21)
            save_label_png(root / "SegmentationClass" / f"{image_id}.png", mask)
    val = ids[masks // 2:masks]
    lists = {"train": [i for i in ids if i not in set(val)], "val": val}
    for name, listed in lists.items():
        (root / "ImageSets/Segmentation" / f"{name}.txt").write_text("".join(f"{i}\n" for i in listed))


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:>10}: {seconds:7.2f} s", flush=True)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the tree and the manifests (reused when present)")
    parser.add_argument("--images", type=int, default=10582)
    parser.add_argument("--masks", type=int, default=2913)
    parser.add_argument("--image-kb", type=int, default=100, help="bytes per image, in KiB (VOC's JPEGs: about 100)")
    parser.add_argument("--target", type=float, default=10.0, help="seconds an untouched dataset may add to planning")
    args = parser.parse_args(argv)
    work = Path(args.work)
    root, manifests = work / "VOC", work / "manifests"
    if not (root / "ImageSets/Segmentation/train.txt").is_file():
        print(f"writing {args.images} images ({args.masks} with masks) under {root} ...", flush=True)
        write_tree(root, args.images, args.masks, args.image_kb)
    for name in [*(f"{m}.json" for m in MANIFESTS), "stat_cache.json"]:  # only the files this benchmark writes
        (manifests / name).unlink(missing_ok=True)
    layout = VOCLayout(root, CLASSES)
    splits = ["train", "val"]
    print(f"{args.images} images, {args.masks} masks, {os.cpu_count()} cores")
    cold = timed("cold", lambda: write_manifests(manifests, VOCLayout(root, CLASSES), splits))
    untouched = timed("untouched", lambda: write_manifests(manifests, VOCLayout(root, CLASSES), splits))
    stamps = {p: p.stat().st_mtime_ns for p in manifests.glob("*.json") if p.name != "stat_cache.json"}
    for path in root.rglob("*"):
        if path.is_file():
            path.touch()
    touched = timed("touched", lambda: write_manifests(manifests, VOCLayout(root, CLASSES), splits))
    rewritten = [p.name for p, t in stamps.items() if p.stat().st_mtime_ns != t]
    baseline = timed("baseline", lambda: [layout.ids(s) for s in splits])
    added = untouched - baseline
    print(f"manifests rewritten after touching every file: {rewritten or 'none'}")
    print(f"an untouched dataset adds {added:.2f} s to planning (cold {cold:.1f} s, touched {touched:.1f} s): "
          f"{'PASS' if added < args.target and not rewritten else 'FAIL'} (target < {args.target:.0f} s, "
          f"nothing rewritten)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
