"""Figures and Snakemake's report: the figures rule plots training curves, the CAM threshold curve and per-class
IoU from a finished run, and `snakemake --report` gathers them with the summary and the examples."""

import json

import numpy as np
import pytest

from conftest import snakemake
from wsss_steps.figures import smoothed

PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ("training_curves.png", "cam_threshold_curve.png", "iou_per_class.png")


def test_the_running_mean_averages_the_last_window_steps():
    assert smoothed([1, 3, 5, 7], 2).tolist() == [1.0, 2.0, 4.0, 6.0]
    assert smoothed([2, 4], 1).tolist() == [2.0, 4.0]


def test_the_run_has_its_figures_and_the_report_holds_every_figure(run_copy, tmp_path):
    run = run_copy / "results" / "tiny"
    for name in FIGURES:
        assert (run / name).read_bytes()[:8] == PNG, name
    assert "wrote" in (run / "logs" / "figures.log").read_text()
    report = tmp_path / "report.html"
    snakemake(run_copy, "--report", str(report))
    html = report.read_text(errors="replace")
    for name in (*FIGURES, "examples.png", "summary.md"):
        assert name in html, f"{name} is not in the report"
    assert json.loads((run / "summary.json").read_text())["run_name"] == "tiny"


@pytest.mark.parametrize("rows", [("cam", "rw", "seg"), ("cam",)])
def test_the_iou_figure_draws_one_bar_per_class_and_row(rows):
    from wsss_steps.figures import iou_figure

    summary = {"classes": ["background", "a"], **{r: {"split": "train", "miou": 50.0, "iou": {"background": 80.0, "a": None}}
                                                     for r in rows}}
    fig = iou_figure(summary)
    bars = [p for p in fig.axes[0].patches]
    assert len(bars) == 2 * len(rows) and [b.get_height() for b in bars[:2]] == [80.0, 0.0]
    assert np.isclose(fig.axes[0].get_ylim()[1], 100)
