"""The method comparison: which stages a method may reuse, and a real comparison of two methods on the tiny config.

The tests here run the workflow; those that do not are in tests/unit/test_compare.py.
"""

import json
import os
import shutil
import subprocess
import sys


from conftest import REPO, TINY
from wsss_steps.compare import (STAGES, up_to_date)


def test_two_methods_run_side_by_side_from_the_plain_run_and_the_second_reuses_the_classifier(run_copy):
    # run_copy holds the plain run results/tiny (the tiny config run as it is): the baseline reuses all of it
    # the dataset's split list newer than every artifact, as after copying the data anew: the plain run stands on the
    # input checksums Snakemake recorded, and so must what the comparison links from it (regression: each linked
    # stage had no record and was trained again)
    os.utime(run_copy / "data" / "tiny-synthetic" / "ImageSets" / "Segmentation" / "train.txt")
    cmd = [sys.executable, "-m", "wsss_steps.compare", "--configfile", str(TINY), "--methods", "cam", "gradcam",
           "--cores", "2", "--directory", str(run_copy)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3600)  # a hang guard
    assert proc.returncode == 0, proc.stderr[-4000:]
    folder = run_copy / "results" / "tiny-compare"
    rows = json.loads((folder / "comparison.json").read_text())["methods"]
    assert [r["method"] for r in rows] == ["cam", "gradcam"]
    plain, cam, grad = (run_copy / "results" / name for name in ("tiny", "tiny-cam", "tiny-gradcam"))
    assert rows[0]["reused"] == [stage for stage, _, _ in STAGES]  # nothing of the baseline trained again
    assert sorted(p.name for p in (cam / "logs").iterdir()) == ["figures.log"]  # only the figures were drawn
    assert "the plain run tiny is complete and up to date" in (folder / "compare.log").read_text()
    for run in (cam, grad):
        assert run.joinpath("classifier.weights.h5").stat().st_ino == plain.joinpath("classifier.weights.h5").stat().st_ino
    # the table's structure, not a speed bound: a reused stage is marked, a stage that ran has its logged time
    assert rows[1]["reused"] == ["train_classifier"] and rows[1]["seconds"]["train_classifier"] == "reused"
    assert not (grad / "logs" / "train_classifier.log").exists()  # not run again
    assert isinstance(rows[1]["seconds"]["extract_cams"], float)
    for row, run in zip(rows, (cam, grad)):
        summary = json.loads((run / "summary.json").read_text())
        assert (row["cam"], row["rw"], row["seg"]) == (summary["cam"]["miou"], summary["rw"]["miou"], summary["seg"]["miou"])
    with open(grad / "cams_train.h5", "rb") as a, open(cam / "cams_train.h5", "rb") as b:
        assert a.read() != b.read()  # Grad-CAM's maps were extracted anew
    table = (folder / "comparison.md").read_text()
    assert "| cam |" in table and "| gradcam |" in table and "boat/water" in table and "reused" in table
    assert os.path.getsize(folder / "compare.log") > 0
    # the comparison in Snakemake's report: the workflow's comparison rule drew the bars and the table's page
    assert (folder / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<td>gradcam</td>" in (folder / "comparison.html").read_text()
    report = (folder / "report.html").read_text(errors="replace")
    assert "comparison.png" in report and "comparison.html" in report and "Method comparison" in report


def test_a_plain_run_counts_as_an_earlier_run_only_when_snakemake_finds_it_up_to_date_for_the_same_settings(run_copy):
    base = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(run_copy), "--cores", "1",
            "--configfile", str(TINY)]
    assert up_to_date(base, run_copy)
    assert not up_to_date([*base, "--config", "seed=1"], run_copy)  # other settings: its outputs would be redone
    shutil.rmtree(run_copy / ".snakemake" / "metadata")
    assert not up_to_date(base, run_copy)  # files Snakemake did not make there: their settings are not on record
    (run_copy / "results" / "tiny" / "summary.md").unlink()
    assert not up_to_date(base, run_copy)  # incomplete


def test_a_dry_run_comparison_prints_each_plan_and_writes_nothing(tmp_path):
    cmd = [sys.executable, "-m", "wsss_steps.compare", "--configfile", str(TINY), "--methods", "cam", "sec",
           "--cores", "2", "--directory", str(tmp_path), "--snakemake-args", "-n"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3600)  # a hang guard
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "== cam (results/tiny-cam): planned" in proc.stdout and "== sec (results/tiny-sec): planned" in proc.stdout
    assert "train_segmentation" in proc.stdout and "nothing was written" in proc.stdout
    assert "FAILED" not in proc.stdout
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()
