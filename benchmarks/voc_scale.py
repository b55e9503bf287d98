"""Benchmark: every stage at PASCAL VOC's scale, on the built-in generator with the tiny backbone, on the CPU.

For each dataset size N (default 1,000 and 10,582 training images, VOC 2012's augmented training set; 20 object
classes; 433 x 433 px images, the pixel count of VOC's typical 500 x 375), the set is generated once under
``--work`` (``--jobs`` processes; the same files for any number) and each stage runs as its own process, as the
workflow runs it:

* train_classifier, train_affinity and train_segmentation train ``--steps`` steps over all N training images
  (the two last from label stores of all N maps, written from the masks: their content does not change the cost,
  their number is what a stage must not hold in memory);
* extract_cams, make_affinity_labels, random_walk and the segmentation's prediction work on the first ``--infer``
  images (a split list ``bench``): their cost per image does not depend on N.

Printed per stage and N: the images it handled, wall time (start-up included), images per second, and the peak
resident memory of its process (``ru_maxrss`` of the child, from ``os.wait4``). The comparison in the same run:
each stage's peak memory at the largest N over the smallest, flat when at most ``--flat`` (1.25) - PASS / FAIL.

    python benchmarks/voc_scale.py                      # 1,000 and 10,582 images (about 30 min of generation per
                                                        # 10,000 images on one core; --jobs uses more)
    python benchmarks/voc_scale.py --sizes 40 80 --image-size 96 --steps 2 --infer 8   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsss_steps.lib.artifacts import put_array, write_store  # noqa: E402
from wsss_steps.data.label_png import load_label_png  # noqa: E402
from wsss_steps.data.synthetic import generate  # noqa: E402

CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
           "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
BACKBONE = {"name": "tiny", "output_stride": 8, "weights": None, "width": 32}


def make_set(root: Path, n: int, size: int, val: int, jobs: int):
    """The generated set of n training images (reused when one of the same shape is there) and its ``bench`` list."""
    meta = root / "dataset.json"
    made = json.loads(meta.read_text()) if meta.is_file() else {}
    if (made.get("train_images"), made.get("image_size"), made.get("val_images")) != (n, size, val):
        start = time.time()
        generate(root, CLASSES, size, n, val, seed=0, jobs=jobs)
        print(f"  generated {n + val} images of {size} px in {time.time() - start:.0f} s ({jobs} processes)", flush=True)
    return (root / "ImageSets/Segmentation/train.txt").read_text().split()


def label_store(path: Path, root: Path, ids, stage: str):
    """A label store of the masks of ``ids``, with the provenance the training stages check."""
    if path.is_file():
        return
    attrs = {"stage": stage, "ids": json.dumps(ids), "classes": CLASSES, "dataset_root": str(root)}
    with write_store(path, attrs) as store:
        for image_id in ids:
            put_array(store, image_id, load_label_png(root / "SegmentationClass" / f"{image_id}.png"))


def run(stage: str, args: list, threads: int) -> tuple[float, float]:
    """Run ``python -m wsss_steps.<stage>``; return (wall seconds, peak resident MiB of its process)."""
    cmd = [sys.executable, "-m", f"wsss_steps.{stage}", "--device", "cpu", "--threads", str(threads), *map(str, args)]
    start = time.time()
    with tempfile.TemporaryFile("w+") as err:  # a file, not a pipe: an unread pipe would block a chatty stage
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.time() - start
        code = os.waitstatus_to_exitcode(status)
        if code:
            err.seek(0)
            sys.exit(f"{stage} failed ({code}):\n{err.read()[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def bench_size(work: Path, n: int, opts) -> dict:
    root = work / f"voc{n}"
    ids = make_set(root, n, opts.image_size, opts.val, opts.jobs)
    bench = ids[: opts.infer]
    (root / "ImageSets/Segmentation/bench.txt").write_text("".join(i + "\n" for i in bench))
    out = work / f"out{n}"
    out.mkdir(exist_ok=True)
    dataset = json.dumps({"name": f"voc{n}", "root": str(root), "classes": CLASSES, "ignore_index": 255,
                          "train_split": "train", "val_split": "bench"})
    backbone = json.dumps(BACKBONE)
    batch, crop, steps = opts.batch, opts.crop, opts.steps
    train = {"steps": steps, "batch_size": batch, "lr": 0.01, "weight_decay": 0.0001, "crop_size": crop,
             "scale_range": [0.7, 1.0]}
    common = ["--dataset", dataset, "--backbone", backbone]
    rows = {}

    def record(stage, images, wall_mem):
        wall, mem = wall_mem
        rows[stage] = {"images": images, "wall_s": round(wall, 1), "images_per_s": round(images / wall, 2),
                       "peak_mib": round(mem)}
        print(f"  {stage:20s} {images:6d} images {wall:8.1f} s {images / wall:8.2f} img/s {mem:8.0f} MiB", flush=True)

    record("train_classifier", steps * batch, run("train_classifier", common + [
        "--params", json.dumps(train), "--split", "train", "--seed", 0, "--out", out / "classifier.h5"], opts.threads))
    record("extract_cams", len(bench), run("extract_cams", common + [
        "--params", json.dumps({"scales": [1.0, 0.5, 1.5, 2.0], "flip": True}), "--classifier",
        out / "classifier.h5", "--split", "bench", "--out", out / "cams.h5"], opts.threads))
    crf = {"iterations": 10, "gaussian_sxy": 3, "gaussian_compat": 3, "bilateral_sxy": 80, "bilateral_srgb": 13,
           "bilateral_compat": 10}
    record("make_affinity_labels", len(bench), run("make_affinity_labels", [
        "--dataset", dataset, "--params", json.dumps({"alpha_low": 4, "alpha_high": 24, "crf": crf}),
        "--cams", out / "cams.h5", "--out", out / "affinity_labels.h5"], opts.threads))
    label_store(out / "affinity_labels_all.h5", root, ids, "make_affinity_labels")
    label_store(out / "pseudo_labels_all.h5", root, ids, "random_walk")
    affinity = {**train, "radius": 5, "init_from_classifier": True, "head_channels": [32, 32, 64]}
    record("train_affinity", steps * batch, run("train_affinity", common + [
        "--params", json.dumps(affinity), "--labels", out / "affinity_labels_all.h5", "--classifier",
        out / "classifier.h5", "--seed", 0, "--out", out / "affinity.h5"], opts.threads))
    walk = {"alpha": 16, "beta": 8, "t": 256, "stride": 8, "background": "threshold", "bg_threshold": 0.5}
    record("random_walk", len(bench), run("random_walk", common + [
        "--params", json.dumps(walk), "--affinity-params", json.dumps(affinity), "--cams", out / "cams.h5",
        "--affinity", out / "affinity.h5", "--affinity-labels", out / "affinity_labels.h5",
        "--out", out / "pseudo_labels.h5"], opts.threads))
    segmentation = {**train, "init_from_classifier": True, "aspp_channels": 32, "atrous_rates": [2, 4, 6]}
    record("train_segmentation", steps * batch + len(bench), run("train_segmentation", common + [
        "--params", json.dumps(segmentation), "--pseudo-labels", out / "pseudo_labels_all.h5", "--classifier",
        out / "classifier.h5", "--predict-splits", "bench", "--seed", 0, "--out", out / "segmentation.h5",
        "--predictions", out / "predictions.h5"], opts.threads))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10582], help="training images per set")
    parser.add_argument("--image-size", type=int, default=433, help="side of the square images (px)")
    parser.add_argument("--val", type=int, default=50, help="validation images per set")
    parser.add_argument("--steps", type=int, default=20, help="optimisation steps per training stage")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=321, help="training crop (psa's 448 on a GPU)")
    parser.add_argument("--infer", type=int, default=64, help="images the inference stages handle")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes generating the images")
    parser.add_argument("--flat", type=float, default=1.25, help="largest peak-memory ratio still called flat")
    parser.add_argument("--work", default="/tmp/wsss-voc-scale", help="where the sets and artifacts go")
    parser.add_argument("--json", help="also write the figures here")
    opts = parser.parse_args(argv)
    work = Path(opts.work)
    work.mkdir(parents=True, exist_ok=True)
    figures = {}
    for n in opts.sizes:
        print(f"N = {n} training images ({opts.image_size} px, {len(CLASSES) - 1} object classes, tiny backbone, "
              f"{opts.threads} threads)", flush=True)
        figures[n] = bench_size(work, n, opts)
    small, large = min(opts.sizes), max(opts.sizes)
    failed = False
    if small != large:
        print(f"\npeak memory at N = {large} over N = {small} (flat: <= {opts.flat}):")
        for stage, row in figures[large].items():
            ratio = row["peak_mib"] / figures[small][stage]["peak_mib"]
            verdict = "PASS" if ratio <= opts.flat else "FAIL"
            failed |= verdict == "FAIL"
            print(f"  {stage:20s} {figures[small][stage]['peak_mib']:6d} -> {row['peak_mib']:6d} MiB  x{ratio:.2f}  {verdict}")
    if opts.json:
        Path(opts.json).write_text(json.dumps({str(k): v for k, v in figures.items()}, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
