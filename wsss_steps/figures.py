"""Figures of a run for the report: training curves of each training stage, the CAM threshold curve and per-class IoU.

    python -m wsss_steps.figures --dataset JSON --summary summary.json --weights W1.h5 [W2.h5 ...] \
        --curves training_curves.png --threshold-curve cam_threshold_curve.png --iou iou_per_class.png \
        [--table summary.md --table-html summary.html] \
        [--artifacts A1.h5 ... --provenance provenance.html]

Reads only finished artifacts (the weights files' ``training_curve`` groups and evaluate's summary.json and
summary.md) and writes PNGs with matplotlib, and the summary as an HTML page (Snakemake's report shows HTML and
images, not Markdown); nothing is trained or scored here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .lib.artifacts import describe, open_store, read_curve
from .lib.config import load_params
from .lib.files import atomic_path
from .lib.pages import PAGE_STYLE, markdown_page
from .lib.plotting import pyplot, save
from .lib.runtime import base_parser, run_stage, start

STAGE = "figures"
ROWS = (("cam", "CAM"), ("rw", "CAM + RW"), ("seg", "segmentation"), ("seg_crf", "segmentation + CRF"))


def smoothed(values, window: int) -> np.ndarray:
    """Running mean over ``window`` steps (shorter at the start), so a noisy per-step loss reads as a trend."""
    values = np.asarray(values, np.float64)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (sums[1:] - sums[starts]) / (np.arange(1, len(values) + 1) - starts)


def curves_figure(curves: dict):
    """One panel per training stage: the loss per step (faint) and its running mean, and each term's running mean."""
    plt = pyplot()
    fig, axes = plt.subplots(1, max(1, len(curves)), figsize=(5 * max(1, len(curves)), 3.6), squeeze=False,
                             constrained_layout=True)
    for ax, (stage, curve) in zip(axes[0], curves.items()):
        steps = [r["step"] for r in curve]
        window = max(1, len(curve) // 20)
        if curve:
            ax.plot(steps, [r["loss"] for r in curve], color="0.8", linewidth=0.8, label="loss (per step)")
            ax.plot(steps, smoothed([r["loss"] for r in curve], window), color="black", label=f"loss (mean of {window})")
            for term in [k for k in curve[0] if k not in ("step", "loss", "alpha", "grad_norm")]:
                ax.plot(steps, smoothed([r[term] for r in curve], window), linewidth=1, label=term)
            ax.legend(fontsize=7)
        ax.set(title=f"{stage}: training loss", xlabel="optimisation step", ylabel="loss")
        ax.grid(alpha=0.3)
    return fig


def threshold_figure(summary: dict):
    """CAM mIoU against the background threshold, the fixed threshold marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    curve = summary["cam"].get("curve", [])
    ax.plot([p["threshold"] for p in curve], [p["miou"] for p in curve], marker="o", label="CAM")
    ax.axvline(summary["cam"]["threshold"], color="tab:red", linestyle="--",
               label=f"fixed threshold {summary['cam']['threshold']}")
    if "rw" in summary:
        ax.axhline(summary["rw"]["miou"], color="tab:green", linestyle=":", label="CAM + RW")
    ax.set(title=f"CAM mIoU against the background threshold ({summary['cam']['split']})",
           xlabel="background threshold", ylabel="mIoU (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def iou_figure(summary: dict):
    """Per-class IoU bars of CAM, CAM + RW and the segmentation network, grouped by class."""
    plt = pyplot()
    classes = summary["classes"]
    rows = [(key, name) for key, name in ROWS if key in summary]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(classes) + 2), 3.8), constrained_layout=True)
    width = 0.8 / max(1, len(rows))
    x = np.arange(len(classes))
    for i, (key, name) in enumerate(rows):
        values = [summary[key]["iou"][c] if summary[key]["iou"][c] is not None else 0.0 for c in classes]
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, values, width,
               label=f"{name} ({summary[key]['split']}, mIoU {summary[key]['miou']:.1f})")
    ax.set_xticks(x, classes, rotation=30 if len(classes) > 6 else 0)
    ax.set(title="IoU per class", ylabel="IoU (%)", ylim=(0, 100))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


def made_order(record: dict) -> str:
    """Sort key of a ``describe`` record: its creation time (ISO times sort as written); undated ones last."""
    return str(record.get("created") or "~")


def stage_settings(dataset: dict, artifacts: list[dict]) -> dict:
    """The run's settings as its artifacts recorded them: the dataset, then each stage's settings in the order made."""
    settings = {"dataset": dataset}
    for record in sorted(artifacts, key=made_order):
        settings.setdefault(str(record.get("stage", record["path"])), record.get("params", {}))
    return settings


def provenance_page(settings: dict, artifacts: list[dict]) -> str:
    """An HTML page of the run's settings (YAML) and of each artifact's provenance (``describe``'s records:
    stage, settings, seed, package version, input checksums)."""
    import html

    import yaml

    def block(value) -> str:
        return f"<pre>{html.escape(json.dumps(value, indent=2, sort_keys=True, default=str))}</pre>"

    parts = ["<h1>Configuration and provenance</h1>",
             "<h2>Configuration</h2><p>The settings each stage of this run used, as recorded in its artifacts "
             "(the dataset's, then one section per stage). Config keys no stage reads, such as the sweeps' lists, "
             "are not part of the run and are not shown.</p>",
             f"<pre>{html.escape(yaml.safe_dump(settings, sort_keys=False, default_flow_style=None))}</pre>",
             "<h2>Artifacts</h2><p>What made each artifact, from its HDF5 attributes "
             "(<code>python -m wsss_steps.inspect_artifact FILE</code> prints the same).</p>"]
    for record in artifacts:
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(record.get(k, '')))}</td></tr>"
                       for k in ("stage", "created", "seed", "package_version", "device", "amp")
                       if k in record or k not in ("device", "amp"))  # the network stages' device and precision
        inputs = "".join(f"<li><code>{html.escape(p)}</code> sha256 {html.escape(str(h)[:16])}...</li>"
                         for p, h in (record.get("inputs") or {}).items())
        parts += [f"<h3><code>{html.escape(record['path'])}</code></h3><table>{rows}</table>",
                  f"<p>inputs:</p><ul>{inputs or '<li>none</li>'}</ul>",
                  "<details><summary>settings</summary>" + block(record.get("params", {})) + "</details>"]
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Configuration and provenance</title>"
            f"<style>{PAGE_STYLE} pre{{text-align:left;background:#f6f6f6;padding:0.5em}}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--summary", required=True, help="evaluate's summary.json")
    parser.add_argument("--weights", nargs="+", default=[], help="weights files (.h5) whose training curves to plot")
    parser.add_argument("--curves", required=True, help="PNG of the training curves to write")
    parser.add_argument("--threshold-curve", required=True, help="PNG of CAM mIoU against the threshold to write")
    parser.add_argument("--iou", required=True, help="PNG of the per-class IoU bars to write")
    parser.add_argument("--table", help="evaluate's summary.md, written as HTML to --table-html")
    parser.add_argument("--table-html", help="HTML page of the summary to write (with --table)")
    parser.add_argument("--artifacts", nargs="*", default=[], help="HDF5 artifacts whose provenance --provenance shows")
    parser.add_argument("--provenance", help="HTML page of the configuration and each artifact's provenance to write")
    args, log, _, _ = start(parser, argv)
    summary = json.loads(Path(args.summary).read_text())
    curves = {}
    for path in args.weights:
        with open_store(path) as store:
            stage = str(store.attrs.get("stage", Path(path).name))
            curves[stage] = read_curve(store["training_curve"]) if "training_curve" in store else []
    save(curves_figure(curves), args.curves)
    save(threshold_figure(summary), args.threshold_curve)
    save(iou_figure(summary), args.iou)
    log.info("wrote %s, %s and %s", args.curves, args.threshold_curve, args.iou)
    if args.table and args.table_html:
        with atomic_path(args.table_html) as tmp:
            Path(tmp).write_text(markdown_page(Path(args.table).read_text()), encoding="utf-8")
        log.info("wrote %s", args.table_html)
    if args.provenance:
        records = sorted((describe(path) for path in args.artifacts), key=made_order)
        page = provenance_page(stage_settings(load_params(args.dataset), records), records)
        with atomic_path(args.provenance) as tmp:
            Path(tmp).write_text(page, encoding="utf-8")
        log.info("wrote %s", args.provenance)
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
