"""The method comparison as one workflow: `snakemake compare` on the tiny config.

Which run holds which stage is tested without a workflow in tests/unit/test_compare.py.
"""

import json

from conftest import planned_jobs, snakemake

COMPARE = ("compare", "--config", "compare={methods: [cam, gradcam]}")


def test_a_dry_run_plans_each_shared_stage_once_and_writes_no_result(tmp_path):
    proc = snakemake(tmp_path, "-n", "--cores", "2", "compare", "--config",
                     "compare={methods: [cam, gradcam, sec, ae_round2]}")
    jobs = planned_jobs(proc.stdout)
    assert jobs["train_classifier"] == 1  # every method's classifier is the run's
    assert jobs["extract_cams"] == 2  # the run's (cam, sec, adversarial erasing's round 1) and Grad-CAM's
    assert jobs["random_walk"] == 3  # the run's (cam, sec), Grad-CAM's, adversarial erasing's
    assert jobs["train_segmentation"] == jobs["evaluate"] == 4
    assert jobs["compare_table"] == jobs["compare"] == 1
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()
    # without methods the target says how to give them
    proc = snakemake(tmp_path, "-n", "--cores", "2", "compare", check=False)
    assert proc.returncode != 0 and "--config compare='{methods: [cam, gradcam]}'" in proc.stdout


def test_two_methods_in_one_workflow_share_the_run_s_classifier_and_the_table_says_so(run_copy):
    # run_copy holds the run results/tiny, made with the same settings: the cam row is that run, trained nothing
    planned = planned_jobs(snakemake(run_copy, "-n", "--cores", "2", *COMPARE).stdout)
    assert "train_classifier" not in planned and planned["extract_cams"] == 1  # Grad-CAM's maps only
    snakemake(run_copy, "--cores", "2", *COMPARE)
    folder = run_copy / "results" / "tiny-compare"
    rows = json.loads((folder / "comparison.json").read_text())["methods"]
    assert [(r["method"], r["run"]) for r in rows] == [("cam", "tiny"), ("gradcam", "tiny-gradcam")]
    grad = run_copy / "results" / "tiny-gradcam"
    assert not (grad / "classifier.weights.h5").exists() and not (grad / "logs" / "train_classifier.log").exists()
    assert not (run_copy / "results" / "tiny-cam").exists()
    # the table's structure, not a speed bound: a shared stage names the method it ran for, the others their time
    assert rows[1]["seconds"]["train_classifier"] == "= cam" and isinstance(rows[1]["seconds"]["extract_cams"], float)
    for row in rows:
        summary = json.loads((run_copy / "results" / row["run"] / "summary.json").read_text())
        assert (row["cam"], row["rw"], row["seg"]) == (summary["cam"]["miou"], summary["rw"]["miou"], summary["seg"]["miou"])
    with open(grad / "cams_train.h5", "rb") as a, open(run_copy / "results" / "tiny" / "cams_train.h5", "rb") as b:
        assert a.read() != b.read()  # Grad-CAM's maps were extracted anew
    assert (grad / "provenance.html").is_file()  # each method's run has its own figures and report pages
    table = (folder / "comparison.md").read_text()
    assert "| cam |" in table and "| gradcam |" in table and "boat/water" in table and "= cam" in table
    assert (folder / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<td>gradcam</td>" in (folder / "comparison.html").read_text()
    assert "Nothing to be done" in snakemake(run_copy, "-n", "--cores", "2", *COMPARE).stdout
    report = folder / "report.html"
    snakemake(run_copy, "--report", str(report), "--cores", "1", *COMPARE)
    text = report.read_text(errors="replace")
    assert "comparison.png" in text and "comparison.html" in text and "Method comparison" in text
