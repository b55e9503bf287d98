"""Figures and Snakemake's report: the figures rule plots training curves, the CAM threshold curve and per-class
IoU from a finished run, and `snakemake --report` gathers them with the summary and the examples.

The tests here run no workflow; those that do are in tests/workflow/test_report_run.py.
"""


import numpy as np
import pytest

from wsss_steps.figures import smoothed, stage_settings
from wsss_steps.lib.pages import markdown_page

PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ("training_curves.png", "cam_threshold_curve.png", "iou_per_class.png")


def test_the_running_mean_averages_the_last_window_steps():
    assert smoothed([1, 3, 5, 7], 2).tolist() == [1.0, 2.0, 4.0, 6.0]
    assert smoothed([2, 4], 1).tolist() == [2.0, 4.0]


def test_the_settings_section_is_the_dataset_then_each_stage_once_in_the_order_made():
    records = [{"path": "e.h5", "stage": "train_affinity", "created": "2026-12-03T10:00:00Z", "params": {}},
               {"path": "a.h5", "stage": "train_classifier", "created": "2026-12-03T08:00:00Z", "params": {"lr": 0.1}},
               {"path": "b.h5", "stage": "extract_cams", "created": "2026-12-03T09:00:00Z", "params": {"scales": [1.0]}},
               {"path": "c.h5", "stage": "train_classifier", "created": "2026-12-03T11:00:00Z", "params": {"lr": 0.5}},
               {"path": "d.h5"}]
    settings = stage_settings({"root": "data"}, records)
    assert list(settings) == ["dataset", "train_classifier", "extract_cams", "train_affinity", "d.h5"]
    assert settings["train_classifier"] == {"lr": 0.1} and settings["d.h5"] == {}


def test_the_markdown_page_renders_the_markdown_tables():
    page = markdown_page("# run on data\n\n| method | mIoU |\n|---|---|\n| CAM | **57.2** |\n\n## Health\n\nAll passed.\n")
    assert "<title>run on data</title>" in page
    assert "<td>CAM</td>" in page and "<strong>57.2</strong>" in page and "<h2>Health</h2>" in page


@pytest.mark.parametrize("rows", [("cam", "rw", "seg"), ("cam",)])
def test_the_iou_figure_draws_one_bar_per_class_and_row(rows):
    from wsss_steps.figures import iou_figure

    summary = {"classes": ["background", "a"], **{r: {"split": "train", "miou": 50.0, "iou": {"background": 80.0, "a": None}}
                                                     for r in rows}}
    fig = iou_figure(summary)
    bars = [p for p in fig.axes[0].patches]
    assert len(bars) == 2 * len(rows) and [b.get_height() for b in bars[:2]] == [80.0, 0.0]
    assert np.isclose(fig.axes[0].get_ylim()[1], 100)


def test_the_legend_shows_each_class_colour_and_the_ignored_colour():
    from wsss_steps.evaluate import legend_strip
    from wsss_steps.data.label_png import voc_palette

    palette = np.asarray(voc_palette(), np.uint8).reshape(256, 3)
    strip = np.asarray(legend_strip(["background", "horse", "cat"], 255, 2000))
    colours = {tuple(c) for c in strip.reshape(-1, 3)}
    for index in (0, 1, 2, 255):
        assert tuple(palette[index]) in colours, index
    assert strip.shape[0] == 24  # one line at this width
    assert np.asarray(legend_strip(["background", "horse", "cat"], 255, 120)).shape[0] > 24  # wrapped


def test_the_examples_are_spread_over_the_classes_warned_classes_first():
    from wsss_steps.evaluate import spread_examples

    # a list sorted by class (ids 0-3 horse = 1, 4-5 cat = 2, 6 dog = 3, 7 unlabelled): not the first three horses
    images = [(f"h{i}", [1]) for i in range(4)] + [("c0", [2]), ("c1", [2]), ("d0", [3]), ("x", [])]
    assert spread_examples(images, 3) == ["h0", "c0", "d0"]
    assert spread_examples(images, 5) == ["h0", "c0", "d0", "h1", "c1"]
    assert spread_examples(images, 4, first=[3]) == ["d0", "h0", "c0", "h1"]  # a warned class is shown first
    # every labelled image once, never the unlabelled one
    assert spread_examples(images, 20) == ["h0", "c0", "d0", "h1", "c1", "h2", "h3"]
    assert spread_examples([("a", [1, 2]), ("b", [2])], 2) == ["a", "b"]  # an image counts for each of its classes
