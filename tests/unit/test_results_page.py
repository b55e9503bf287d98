"""The results page is generated from the recorded runs, and the README quotes only what it holds."""

import json
import re

from conftest import REPO, load_script

SUMMARY = {"run_name": "demo", "dataset": "synthetic", "classes": ["background", "kite"],
           "cam": {"miou": 57.24, "iou": {"background": 91.4, "kite": 23.08}, "split": "train", "threshold": 0.2,
                   "curve": [{"threshold": 0.2, "miou": 57.24}, {"threshold": 0.35, "miou": 60.06}]},
           "rw": {"miou": 66.06, "iou": {"background": 97.8, "kite": 34.32}, "split": "train"},
           "not_scored": {"seg": "no image of split val has a mask"},
           "health": {"warnings": [{"message": "train_classifier: image-level recall on val is low"}],
                      "stages": {"random_walk": {"survival": {"kite": {"images": 9, "rate": 1.0}},
                                                 "whole_image_share": {"kite": {"images": 9, "rate": 0.111}}}}}}


def test_the_page_holds_each_figure_of_a_record_with_its_provenance():
    page_script = load_script("results_page")
    record = {"run": "demo", "command": "snakemake --cores 2", "commit": "abc1234", "date": "2026-12-06",
              "machine": "a CPU, 2 cores", "computed_in": {"train_classifier": "cpu float32"}, "wall_seconds": 539.4,
              "stage_seconds": {"train_classifier": 129.0}, "summary": SUMMARY}
    page = page_script.build_page([record])
    assert "| CAM | train | 91.4 | 23.1 | **57.2** |" in page
    assert "| CAM + RW | train | 97.8 | 34.3 | **66.1** |" in page
    assert "| segmentation | not scored: no image of split val has a mask |" in page
    assert "- command: `snakemake --cores 2`" in page and "commit abc1234 on 2026-12-06" in page
    assert "- wall time: 8 min 59 s" in page and "train_classifier cpu float32" in page
    assert "image-level recall on val is low" in page
    assert "- CAM at the best threshold of its curve: **60.1** at 0.35 (the table's CAM row: 0.2)" in page
    assert "survives the walk): kite 1.00" in page and "covers the whole image): kite 0.11" in page
    assert "diagnose" not in page  # a record without diagnose.json
    # the side-by-side table: one row per run under its dataset, "-" where a stage is not scored
    assert "### synthetic" in page
    assert "| demo | 57.2 | 60.1 (0.35) | 66.1 | - | - | 1 | 8 min | abc1234 |" in page
    record["diagnose"] = {"images": 100, "walk_miou": {"learned": 55.65, "oracle": 50.12},
                          "boundary": {"precision": 0.116, "recall": 0.284, "tolerance_px": 2, "threshold": 0.5}}
    page = page_script.build_page([record])
    assert ("- diagnose (100 images): pseudo-label mIoU of the walk with the learned affinity 55.6, with the masks' "
            "(oracle) 50.1; boundary B > 0.5 within 2 px of the masks' boundaries: precision 0.12, recall 0.28") in page


def test_a_record_times_every_job_of_the_run_s_folder(tmp_path):
    # regression: the adversarial-erasing rounds and make_saliency ran but were missing from the record's times
    import h5py

    page_script = load_script("results_page")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "train_affinity.log").write_text("INFO stage took 10.0 s, peak\nINFO stage took 303.9 s, peak memory 2 MiB\n")
    (logs / "ae_train_classifier_round2.log").write_text("INFO stage took 184.6 s, peak memory 1 MiB\n")
    (logs / "mine_regions_round1.log").write_text("INFO stage took 2.6 s, peak memory 1 MiB\n")
    (logs / "random_walk.log").write_text("Traceback: the job failed before it finished\n")
    assert page_script.stage_seconds(tmp_path) == {"train_affinity": 303.9, "ae_train_classifier_round2": 184.6,
                                                   "mine_regions_round1": 2.6}
    (tmp_path / "adversarial_erasing").mkdir()
    for path, amp in ((tmp_path / "adversarial_erasing" / "classifier_round2.h5", "bf16"),
                      (tmp_path / "segmentation.weights.h5", "float32")):
        with h5py.File(path, "w") as store:
            store.attrs.update({"device": "cpu", "amp": amp})
    assert page_script.computed_in(tmp_path) == {"ae_train_classifier_round2": "cpu bf16",
                                                 "train_segmentation": "cpu float32"}


def test_docs_results_md_is_what_the_records_give():
    page_script = load_script("results_page")
    records = page_script.read_records()
    assert (REPO / "docs" / "results.md").read_text() == page_script.build_page(records), \
        "run python scripts/results_page.py build"
    for record in records:  # a record holds a finished run's summary and where it came from
        assert {"run", "command", "commit", "date", "machine", "summary"} <= set(record)


def test_the_readme_s_measured_results_are_figures_of_the_results_page():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Measured results", 1)[1].split("\n## ", 1)[0]
    page = (REPO / "docs" / "results.md").read_text()
    quoted = re.findall(r"\*\*(\d+\.\d)\*\*", section)
    assert quoted, "the section quotes no figure"
    for figure in quoted:
        assert f"**{figure}**" in page, f"README's Measured results quotes {figure}, which docs/results.md does not hold"


def test_the_configuration_reference_is_what_the_schema_gives():
    reference = load_script("config_reference")
    assert reference.main(["--check"]) == 0, "docs/config-reference.md is stale: run python scripts/config_reference.py"
    text = reference.PAGE.read_text()
    assert "| `affinity.feature_stride` |" in text and "| `classifier.puzzle_cam.alpha` |" in text


def test_the_examples_figure_comes_only_from_the_run_recorded(tmp_path):
    import pytest

    page_script = load_script("results_page")
    runs, run = tmp_path / "runs", tmp_path / "results" / "demo"
    runs.mkdir()
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps(SUMMARY))
    (run / "examples.png").write_bytes(b"\x89PNG demo")
    with pytest.raises(SystemExit, match="not recorded"):
        page_script.copy_examples(run, runs)
    (runs / "demo.json").write_text(json.dumps({"run": "demo", "summary": {**SUMMARY, "cam": {"miou": 1.0}}}))
    with pytest.raises(SystemExit, match="not the summary recorded"):  # another run of that name
        page_script.copy_examples(run, runs)
    (runs / "demo.json").write_text(json.dumps({"run": "demo", "summary": SUMMARY}))
    assert page_script.copy_examples(run, runs).read_bytes() == b"\x89PNG demo"


def test_the_readme_s_picture_is_a_recorded_run_s_examples_figure():
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (REPO / "README.md").read_text())
    assert pictures, "the README shows no examples figure"
    for picture in pictures:
        match = re.fullmatch(r"docs/runs/(.+)-examples\.png", picture)
        assert match and (REPO / picture).is_file() and (REPO / "docs" / "runs" / f"{match[1]}.json").is_file(), picture
