"""Sweeps of the random walk (the paper's Fig. 8) and of the CAM stage: score one point, or gather the points into a
CSV and a plot.

A walk point is a random_walk run with some of its settings changed (rules/sweep.smk runs the unchanged random_walk
stage for it, reusing the run's CAMs and AffinityNet):

    beta<b>_t<t>   beta and t set, the run's other walk settings kept
    alpha<a>       psa's background (background: power) with that alpha, at the run's beta and t

A CAM point is an extract_cams run with other scales (the run's classifier reused), scored at every background
threshold of evaluate's curve:

    scales<s1>_<s2>...   e.g. scales0.5_1_1.5_2

    python -m wsss_steps.sweep --dataset JSON --point beta8_t256 --labels walk.h5 --split train --out point.json
    python -m wsss_steps.sweep --dataset JSON --gather point1.json ... --csv sweep_walk.csv --plot sweep_walk.png
    python -m wsss_steps.sweep --dataset JSON --point scales1_2 --cams cams.h5 --split train \
        --threshold 0.2 --curve 0.1 0.2 0.3 --out point.json
    python -m wsss_steps.sweep --dataset JSON --gather-cams point1.json ... --csv sweep_cams.csv --plot sweep_cams.png
"""

from __future__ import annotations

import csv
import json
import sys

import numpy as np

from .lib.artifacts import open_store, read_array
from .lib.files import atomic_path
from .lib.log import progress
from .lib.metrics import confusion_matrix, score
from .lib.plotting import pyplot, save
from .lib.runtime import base_parser, run_stage, start
from .lib.scoring import evaluate_cams

STAGE = "sweep"


def plot_cams(rows: list[dict], path) -> None:
    """CAM mIoU against the background threshold, one line per scale set, the fixed threshold marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for r in rows:
        ax.plot([p["threshold"] for p in r["curve"]], [p["miou"] for p in r["curve"]], marker="o",
                label="scales " + ", ".join(f"{v:g}" for v in r["scales"]) + (" + flip" if r["flip"] else ""))
    if rows:
        ax.axvline(rows[0]["threshold"], color="0.5", linestyle="--", label=f"fixed threshold {rows[0]['threshold']:g}")
        ax.legend(fontsize=8)
    ax.set(title="CAM mIoU against the background threshold", xlabel="background threshold", ylabel="mIoU (%)")
    ax.grid(alpha=0.3)
    save(fig, path)


def plot(rows: list[dict], path) -> None:
    """Fig. 8 of the paper: mIoU against beta, one line per t; and mIoU against alpha."""
    plt = pyplot()
    grid = [r for r in rows if r["kind"] == "beta_t"]
    alphas = sorted((r for r in rows if r["kind"] == "alpha"), key=lambda r: r["alpha"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for t in sorted({r["t"] for r in grid}):
        line = sorted((r for r in grid if r["t"] == t), key=lambda r: r["beta"])
        axes[0].plot([r["beta"] for r in line], [r["miou"] for r in line], marker="o", label=f"t = {t}")
    axes[0].set(title="CAM + RW against beta and t", xlabel="beta (power of the affinities)", ylabel="mIoU (%)")
    axes[0].set_xscale("log", base=2)
    if grid:
        axes[0].legend(title="walk length")
    axes[1].plot([r["alpha"] for r in alphas], [r["miou"] for r in alphas], marker="o", color="tab:red")
    axes[1].set(title="CAM + RW against alpha (background: power)", xlabel="alpha (background power)", ylabel="mIoU (%)")
    for ax in axes:
        ax.grid(alpha=0.3)
    save(fig, path)


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--point", help="the point's name (beta<b>_t<t> or alpha<a>), with --labels")
    parser.add_argument("--labels", help="the point's pseudo-label store (.h5) from random_walk")
    parser.add_argument("--split", help="the split whose walked images are scored (the run's score split), with --labels")
    parser.add_argument("--gather", nargs="+", help="point files (.json) to gather into --csv and --plot")
    parser.add_argument("--csv", help="CSV to write: one row per point")
    parser.add_argument("--plot", help="PNG to write: mIoU against beta and t, and against alpha")
    parser.add_argument("--out", help="point file (.json) to write, with --labels or --cams")
    parser.add_argument("--cams", help="a CAM point's store (.h5) from extract_cams, scored at --threshold and --curve")
    parser.add_argument("--threshold", type=float, help="the fixed background threshold (evaluate.cam_threshold)")
    parser.add_argument("--curve", type=float, nargs="*", default=[], help="further thresholds (evaluate.threshold_curve)")
    parser.add_argument("--gather-cams", nargs="+", help="CAM point files (.json) to gather into --csv and --plot")
    args, log, _, layout = start(parser, argv)
    if args.gather_cams:
        rows = sorted((json.loads(open(p).read()) for p in args.gather_cams), key=lambda r: (len(r["scales"]), r["scales"]))
        with atomic_path(args.csv) as tmp, open(tmp, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["point", "scales", "flip", "threshold", "miou", "fixed_threshold"])
            for r in rows:
                for p in r["curve"]:
                    writer.writerow([r["point"], " ".join(f"{v:g}" for v in r["scales"]), r["flip"], p["threshold"],
                                     p["miou"], p["threshold"] == r["threshold"]])
        plot_cams(rows, args.plot)
        best = max(rows, key=lambda r: r["miou"])
        log.info("wrote %d CAM points to %s and %s; best at the fixed threshold %s at %.2f mIoU", len(rows), args.csv,
                 args.plot, best["point"], best["miou"])
        return 0
    if args.cams:
        store = open_store(args.cams, "extract_cams", layout)
        settings = json.loads(store.attrs["params"])
        wanted = set(layout.ids(args.split)) if args.split else None
        ids = layout.scored_ids([i for i in store if wanted is None or i in wanted])
        with store:
            result = evaluate_cams(layout, store, ids, args.threshold, args.curve)
        row = {"point": args.point, "kind": "cams", "scales": settings["scales"], "flip": settings["flip"], **result}
        with atomic_path(args.out) as tmp:
            open(tmp, "w").write(json.dumps(row, indent=2) + "\n")
        log.info("%s: CAM %.2f mIoU at %.2f on %d images", args.point, row["miou"], args.threshold, len(ids))
        return 0
    if args.gather:
        rows = sorted((json.loads(open(p).read()) for p in args.gather), key=lambda r: (r["kind"], r["point"]))
        # per-class IoU as iou_<class>: a class may share a name with a setting ("background")
        settings = ["point", "kind", "beta", "t", "alpha", "background", "miou"]
        with atomic_path(args.csv) as tmp, open(tmp, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(settings + [f"iou_{c}" for c in layout.classes])
            for r in rows:
                writer.writerow([r[k] for k in settings] + [r["iou"][c] for c in layout.classes])
        plot(rows, args.plot)
        best = max(rows, key=lambda r: r["miou"])
        log.info("wrote %d points to %s and %s; best %s at %.2f mIoU", len(rows), args.csv, args.plot, best["point"], best["miou"])
        return 0
    store = open_store(args.labels, "random_walk", layout)
    walk = json.loads(store.attrs["params"])
    ids = json.loads(store.attrs["ids"])
    if args.split:
        wanted = set(layout.ids(args.split))
        ids = [i for i in ids if i in wanted]
    ids = layout.scored_ids(ids)
    n = layout.num_classes
    conf = np.zeros((n, n), np.int64)
    with store:
        for image_id in progress(ids, desc=f"score {args.point}"):
            conf += confusion_matrix(read_array(store, image_id), layout.mask(image_id), n, layout.ignore_index)
    row = {"point": args.point, "kind": "alpha" if args.point.startswith("alpha") else "beta_t",
           "beta": walk["beta"], "t": walk["t"], "alpha": walk.get("alpha"), "background": walk["background"],
           "images": len(ids), **score(conf, layout.classes)}
    with atomic_path(args.out) as tmp:
        open(tmp, "w").write(json.dumps(row, indent=2) + "\n")
    log.info("%s: CAM + RW %.2f mIoU on %d images", args.point, row["miou"], len(ids))
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
