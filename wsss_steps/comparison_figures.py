"""A method comparison for the report: mIoU bars per method and the comparison table as an HTML page.

    python -m wsss_steps.comparison_figures --dataset JSON --comparison comparison.json --table comparison.md \
        --figure comparison.png --page comparison.html

Reads what ``python -m wsss_steps.compare`` wrote in ``results/<run_name>-compare/``; the workflow's
``compare`` rule runs it, so that ``snakemake --report report.html compare`` (with the config files and
methods the comparison ran with) puts the comparison into Snakemake's report. Nothing is trained or scored here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .lib.artifacts import ArtifactError
from .lib.files import atomic_path
from .lib.pages import markdown_page
from .lib.plotting import pyplot, save
from .lib.runtime import base_parser, run_stage, start

STAGE = "comparison_figures"
COLUMNS = (("cam", "CAM (train)"), ("rw", "CAM + RW (train)"), ("seg", "segmentation (val)"),
           ("seg_crf", "segmentation + CRF (val)"))


def bar_heights(methods: list[dict]) -> dict:
    """Per column that any method has, each method's mIoU in order (NaN where a method has none or failed)."""
    return {key: [float("nan") if m.get(key) is None else float(m[key]) for m in methods]
            for key, _ in COLUMNS if any(m.get(key) is not None for m in methods)}


def comparison_figure(comparison: dict):
    """Grouped bars: one group per method, one bar per column (CAM, CAM + RW, segmentation, + CRF); a method
    whose run failed is marked as failed instead of drawn as 0."""
    plt = pyplot()
    methods = comparison["methods"]
    heights = bar_heights(methods)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(methods) + 2), 3.8), constrained_layout=True)
    x = np.arange(len(methods))
    width = 0.8 / max(1, len(heights))
    labels = dict(COLUMNS)
    for i, (key, values) in enumerate(heights.items()):
        offset = (i - (len(heights) - 1) / 2) * width
        bars = ax.bar(x + offset, np.nan_to_num(values), width, label=labels[key])
        ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.1f}" for v in values], fontsize=7)
    for j, method in enumerate(methods):
        if "cam" not in method:
            ax.text(j, 5, "failed", ha="center", color="firebrick")
    ax.set_xticks(x, [m["method"] for m in methods], rotation=30 if len(methods) > 5 else 0)
    ax.set(title=f"Methods on {comparison.get('dataset') or 'the dataset'}: mIoU", ylabel="mIoU (%)", ylim=(0, 100))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--comparison", required=True, help="compare's comparison.json")
    parser.add_argument("--table", required=True, help="compare's comparison.md, written as HTML to --page")
    parser.add_argument("--figure", required=True, help="PNG of the mIoU bars to write")
    parser.add_argument("--page", required=True, help="HTML page of the comparison table to write")
    args, log, _, _ = start(parser, argv)
    comparison = json.loads(Path(args.comparison).read_text())
    if not comparison.get("methods"):
        raise ArtifactError(f"{args.comparison}: lists no method; run snakemake compare again")
    save(comparison_figure(comparison), args.figure)
    with atomic_path(args.page) as tmp:
        Path(tmp).write_text(markdown_page(Path(args.table).read_text()), encoding="utf-8")
    log.info("wrote %s and %s (%d methods)", args.figure, args.page, len(comparison["methods"]))
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
