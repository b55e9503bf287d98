"""Benchmark: affinity-label generation (stage 3, dense CRF) with 1 process against N processes.

Builds, in a temporary directory, a small VOC-layout dataset of synthetic images (default 40, random
sides of 128-320 px: a smooth textured background with 1-3 flat-coloured ellipses of random
classes) and a CAM store like ``extract_cams`` writes (float16, one smooth blob per present class
around its object, covering part of it as CAMs do). Then it runs the real stage,
``wsss_steps.make_affinity_labels.main`` (low/high-alpha maps, each refined by the dense CRF), in this
process with ``--threads 1`` and then with ``--threads N``; with N > 1 the stage spreads images over
a fork Pool of N processes (the parent reads CAMs and images and writes the labels). The CRF
settings are the ``affinity_labels`` section of ``config.yaml`` (10 mean-field iterations there).

Printed: seconds and images/s for each run, the speed-up, and the target (speed-up >= 1.6x with 2
processes on a 2-core machine) with PASS / FAIL. Both runs produce the same labels (checked).
Timings share the machine with whatever else runs on it; run it on an otherwise idle machine.

Run from the repository root:

    .venv/bin/python benchmarks/affinity_labels.py --images 40 --processes 2
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from wsss_steps import make_affinity_labels
from wsss_steps.lib.artifacts import open_store, put_array, write_store

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["background"] + [f"class{i}" for i in range(1, 21)]


def synthetic_image(rng: np.random.Generator, height: int, width: int):
    """RGB uint8 image with 1-3 ellipses and, per present class, a CAM blob: (image, cams (K, H, W), classes)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    noise = rng.normal(0, 1, (height // 8 + 2, width // 8 + 2, 3))
    coarse = Image.fromarray(np.clip(128 + 40 * noise, 0, 255).astype(np.uint8)).resize((width, height),
                                                                                      Image.BILINEAR)
    image = np.asarray(coarse, dtype=np.float32) + rng.normal(0, 6, (height, width, 3))
    classes = sorted(rng.choice(np.arange(1, 21), size=rng.integers(1, 4), replace=False).tolist())
    cams = []
    for _ in classes:
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.1, 0.3) * height, rng.uniform(0.1, 0.3) * width
        inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1
        image[inside] = rng.integers(0, 255, 3)
        # a CAM peaks on a discriminative part of the object and fades out inside it
        py, px = cy + rng.uniform(-0.4, 0.4) * ry, cx + rng.uniform(-0.4, 0.4) * rx
        cam = np.exp(-(((ys - py) / (0.6 * ry)) ** 2 + ((xs - px) / (0.6 * rx)) ** 2))
        cams.append(cam / cam.max())
    return np.clip(image, 0, 255).astype(np.uint8), np.stack(cams).astype(np.float16), classes


def run_stage(args: list[str]) -> float:
    """Seconds of one in-process run of the stage, its log and progress bar swallowed."""
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        make_affinity_labels.main(args)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--images", type=int, default=40, help="synthetic images (default 40)")
    parser.add_argument("--processes", type=int, default=2, help="processes of the parallel run (default 2)")
    parser.add_argument("--min-size", type=int, default=128)
    parser.add_argument("--max-size", type=int, default=320)
    parser.add_argument("--config", default=str(REPO / "config.yaml"),
                        help="config file whose affinity_labels section to use (default: config.yaml)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    params = yaml.safe_load(Path(args.config).read_text())["affinity_labels"]
    rng = np.random.default_rng(args.seed)
    import pydensecrf.densecrf  # noqa: F401  (imported before timing, so neither run pays for it)

    with tempfile.TemporaryDirectory(prefix="afflab_bench_") as tmp:
        tmp = Path(tmp)
        (tmp / "data" / "JPEGImages").mkdir(parents=True)
        ids = [f"img{i:04d}" for i in range(args.images)]
        pixels = 0
        with write_store(tmp / "cams.h5", {"stage": "extract_cams", "ids": json.dumps(ids)}) as store:
            for image_id in ids:
                height, width = rng.integers(args.min_size, args.max_size + 1, 2)
                image, cams, classes = synthetic_image(rng, int(height), int(width))
                pixels += height * width
                Image.fromarray(image).save(tmp / "data" / "JPEGImages" / f"{image_id}.jpg", quality=90)
                put_array(store, image_id, cams, classes=np.asarray(classes, dtype=np.int64))
        common = ["--dataset", json.dumps({"root": str(tmp / "data"), "classes": CLASSES}),
                  "--params", json.dumps(params), "--cams", str(tmp / "cams.h5")]
        seconds = {}
        for processes in (1, args.processes):
            out = tmp / f"labels{processes}.h5"
            seconds[processes] = run_stage(common + ["--threads", str(processes), "--out", str(out)])
        with open_store(tmp / "labels1.h5") as one, open_store(tmp / f"labels{args.processes}.h5") as many:
            same = all(np.array_equal(one[i][()], many[i][()]) for i in ids)

    print(f"affinity labels (dense CRF, {params['crf']['iterations']} iterations) of {args.images} synthetic images, "
          f"{args.min_size}-{args.max_size} px, {pixels / args.images / 1e3:.0f} k pixels on average")
    for processes, secs in seconds.items():
        name = f"{processes} process{'es' if processes > 1 else ''}"
        print(f"  {name:12} {secs:7.2f} s  {args.images / secs:7.1f} images/s")
    speedup = seconds[1] / seconds[args.processes]
    print(f"  speed-up with {args.processes} processes: {speedup:.2f}x; identical labels: {same}")
    print("targets:")
    print(f"  speed-up >= 1.6x with 2 processes: {'PASS' if speedup >= 1.6 else 'FAIL'}"
          + ("" if args.processes == 2 else f" (measured with {args.processes})"))


if __name__ == "__main__":
    sys.exit(main())
