"""Figures and Snakemake's report: the figures rule plots training curves, the CAM threshold curve and per-class
IoU from a finished run, and `snakemake --report` gathers them with the summary and the examples.

The tests here run the workflow; those that do not are in tests/unit/test_report.py.
"""

import json

import pytest

from conftest import load_script, snakemake

PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ("training_curves.png", "cam_threshold_curve.png", "iou_per_class.png")


def test_the_run_has_its_figures_and_the_report_holds_every_figure(run_copy, tmp_path):
    run = run_copy / "results" / "tiny"
    for name in FIGURES:
        assert (run / name).read_bytes()[:8] == PNG, name
    assert "wrote" in (run / "logs" / "figures.log").read_text()
    report = tmp_path / "report.html"
    snakemake(run_copy, "--report", str(report))
    html = report.read_text(errors="replace")
    for name in (*FIGURES, "examples.png", "summary.html", "provenance.html"):
        assert name in html, f"{name} is not in the report"
    provenance = (run / "provenance.html").read_text()
    assert "extract_cams:" in provenance and "scales:" in provenance, "the stages' settings are not on the page"
    for stage in ("train_classifier", "extract_cams", "make_affinity_labels", "train_affinity", "random_walk",
                  "train_segmentation"):
        assert f"<td>{stage}</td>" in provenance, f"{stage}'s provenance is not on the page"
    # classifier, CAMs, AffinityNet, walk, segmentation net and its predictions: each ran a backbone
    assert provenance.count("<th>amp</th><td>float32</td>") == 6, "each network stage's precision is not on the page"
    assert json.loads((run / "summary.json").read_text())["run_name"] == "tiny"


def test_the_report_shows_every_figure_and_the_summary_in_a_headless_browser(run_copy, tmp_path, capsys):
    browser = load_script("report_browser")
    try:
        browser.chromium(timeout=1800, log=lambda line: None)  # a hang guard for apt-get (34 s here)
    except browser.debian_packages.Unavailable as exc:  # not root, no apt-get, or no package mirror: says which
        pytest.skip(f"no headless Chromium to open the report in (Debian's chromium package): {exc}")
    report = tmp_path / "report.html"
    snakemake(run_copy, "--report", str(report))
    # the README's command: python scripts/report_browser.py report.html --screenshot first_screen.png
    code = browser.main([str(report), "--screenshot", str(tmp_path / "first_screen.png")])
    printed = capsys.readouterr().out
    names = dict(line.rsplit("/", 1)[-1].split(": ", 1) for line in printed.splitlines() if ": " in line)
    for name in (*FIGURES, "examples.png"):
        assert names.get(name, "").startswith("image "), f"{name}: {names.get(name, 'not listed')}"
    # the summary table and the health checks, as a page (the report offers Markdown only as a download)
    assert names.get("summary.html", "").startswith("page with "), names.get("summary.html", "not listed")
    assert names.get("provenance.html", "").startswith("page with "), names.get("provenance.html", "not listed")
    assert code == 0, printed
    assert (tmp_path / "first_screen.png").read_bytes()[:8] == PNG
