"""The method comparison's runs: which run's folder holds each stage of each method, and the table.

The tests here run no workflow; tests/workflow/test_compare_run.py runs a comparison.
"""

import json

import pytest
import yaml

from conftest import TINY
from wsss_steps.compare import markdown, method_rows
from wsss_steps.lib.config import ConfigError, validate_config
from wsss_steps.lib.runs import comparison_runs, merged, round_owner, stage_owners

STAGE_NAMES = ["train_classifier", "extract_cams", "make_affinity_labels", "train_affinity", "random_walk",
               "train_segmentation", "evaluate"]


def runs_of(*methods):
    return comparison_runs(validate_config(merge_compare(yaml.safe_load(TINY.read_text()), methods)))


def merge_compare(config, methods):
    return merged(config, {"compare": {"methods": list(methods)}})


def held_by(owners, run):
    """{stage: run holding it} of one run, as the list of holders in stage order."""
    return [owners[run][stage] for stage in STAGE_NAMES]


def test_a_method_shares_exactly_the_stages_before_the_first_section_it_changes():
    runs = runs_of("cam", "gradcam", "puzzle_cam", "sec", "psl", "ae_round2")
    assert list(runs) == ["tiny", "tiny-cam", "tiny-gradcam", "tiny-puzzle_cam", "tiny-sec", "tiny-psl", "tiny-ae_round2"]
    owners = stage_owners(runs)
    assert held_by(owners, "tiny-cam") == ["tiny"] * 7  # the run's own settings: every stage is the run's
    assert held_by(owners, "tiny-gradcam") == ["tiny"] + ["tiny-gradcam"] * 6
    assert held_by(owners, "tiny-puzzle_cam") == ["tiny-puzzle_cam"] * 7
    assert held_by(owners, "tiny-sec") == ["tiny"] * 5 + ["tiny-sec"] * 2
    assert held_by(owners, "tiny-psl") == ["tiny"] * 5 + ["tiny-psl"] * 2
    # adversarial erasing's round 1 is the run's own classifier and CAMs; the union changes the affinity labels
    assert held_by(owners, "tiny-ae_round2") == ["tiny"] * 2 + ["tiny-ae_round2"] * 5
    assert merged({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_adversarial_erasing_rounds_are_made_once_by_the_first_run_that_has_them():
    runs = runs_of("ae_round2", "ae_round3", "ae_psl")
    owners = stage_owners(runs)
    assert [round_owner(runs, "tiny-ae_round3", r) for r in (1, 2, 3)] == ["tiny-ae_round2"] * 2 + ["tiny-ae_round3"]
    # AE-PSL: its rounds, affinity labels, AffinityNet and walk are ae_round3's; only segmentation differs
    assert [round_owner(runs, "tiny-ae_psl", r) for r in (1, 2, 3)] == ["tiny-ae_round2"] * 2 + ["tiny-ae_round3"]
    assert held_by(owners, "tiny-ae_psl") == ["tiny"] * 2 + ["tiny-ae_round3"] * 3 + ["tiny-ae_psl"] * 2
    # the other order: ae_round3 first makes all three, ae_round2 takes its first two
    runs = runs_of("ae_round3", "ae_round2")
    assert [round_owner(runs, "tiny-ae_round2", r) for r in (1, 2)] == ["tiny-ae_round3"] * 2
    # another erasing threshold mines other regions: no round is shared
    tiny = yaml.safe_load(TINY.read_text())
    runs = {"x": validate_config(merged(tiny, {"run_name": "x", "adversarial_erasing": {"rounds": 3}})),
            "y": validate_config(merged(tiny, {"run_name": "y", "adversarial_erasing": {"rounds": 2, "delta": 0.7}}))}
    assert runs["x"]["adversarial_erasing"]["delta"] != 0.7
    assert [round_owner(runs, "y", r) for r in (1, 2)] == ["y"] * 2
    runs["y"]["adversarial_erasing"]["delta"] = runs["x"]["adversarial_erasing"]["delta"]
    assert [round_owner(runs, "y", r) for r in (1, 2)] == ["x"] * 2


def test_an_unknown_method_is_named_with_its_key():
    with pytest.raises(ConfigError, match=r"compare.methods.*'grad_cam'.*gradcam"):
        runs_of("cam", "grad_cam")
    assert list(comparison_runs(validate_config(yaml.safe_load(TINY.read_text())))) == ["tiny"]  # the run alone


def write_run(results, run, logs=(), miou=50.0):
    folder = results / run
    (folder / "logs").mkdir(parents=True)
    for name, seconds in logs:
        (folder / "logs" / f"{name}.log").write_text(f"... stage took {seconds} s, peak memory 1 MiB\n")
    summary = {part: {"miou": miou, "iou": {"kite": miou}} for part in ("cam", "rw", "seg")}
    summary["health"] = {"warnings": [{"message": f"{run} warns"}]}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_the_table_gives_each_stage_s_time_once_and_names_the_method_it_was_computed_for(tmp_path):
    write_run(tmp_path, "a", [(s, 10.0) for s in STAGE_NAMES], miou=50.0)
    write_run(tmp_path, "a-gradcam", [(s, 2.0) for s in STAGE_NAMES[1:]], miou=40.0)
    write_run(tmp_path, "a-ae_round2", [("mine_regions_round1", 1.0), ("mine_regions_round2", 1.5),
                                        ("ae_train_classifier_round2", 30.0), ("ae_extract_cams_round2", 3.0)]
              + [(s, 4.0) for s in STAGE_NAMES[2:]])
    write_run(tmp_path, "a-ae_round3", [("mine_regions_round3", 2.0), ("ae_train_classifier_round3", 20.0),
                                        ("ae_extract_cams_round3", 3.0)] + [(s, 5.0) for s in STAGE_NAMES[2:]])
    rows = [{"method": "cam", "run": "a-cam", "stages": dict.fromkeys(STAGE_NAMES, "a"), "rounds": {}},
            {"method": "gradcam", "run": "a-gradcam", "rounds": {},
             "stages": {"train_classifier": "a", **dict.fromkeys(STAGE_NAMES[1:], "a-gradcam")}},
            {"method": "ae_round2", "run": "a-ae_round2", "rounds": {"1": "a-ae_round2", "2": "a-ae_round2"},
             "stages": {**dict.fromkeys(STAGE_NAMES[:2], "a"), **dict.fromkeys(STAGE_NAMES[2:], "a-ae_round2")}},
            {"method": "ae_round3", "run": "a-ae_round3",
             "rounds": {"1": "a-ae_round2", "2": "a-ae_round2", "3": "a-ae_round3"},
             "stages": {**dict.fromkeys(STAGE_NAMES[:2], "a"), **dict.fromkeys(STAGE_NAMES[2:], "a-ae_round3")}}]
    out = method_rows(rows, tmp_path)
    assert [r["run"] for r in out] == ["a", "a-gradcam", "a-ae_round2", "a-ae_round3"]
    assert out[0]["seconds"] == dict.fromkeys(STAGE_NAMES, 10.0)
    assert out[1]["seconds"]["train_classifier"] == "= cam" and out[1]["seconds"]["extract_cams"] == 2.0
    assert out[1]["cam"] == 40.0 and out[1]["warnings"] == ["a-gradcam warns"]
    assert out[2]["seconds"]["adversarial_erasing"] == 1.0 + 1.5 + 30.0 + 3.0
    assert out[3]["seconds"]["adversarial_erasing"] == 2.0 + 20.0 + 3.0  # rounds 1 and 2 are ae_round2's
    assert out[3]["seconds"]["extract_cams"] == "= cam"
    table = markdown(out, ["background", "kite"], "tiny")
    assert "| gradcam | 40.0 | 40.0 | 40.0 | - |" in table and "= cam" in table
    assert "| method | train_classifier | extract_cams | adversarial_erasing | make_affinity_labels |" in table
    rows[3]["rounds"] = {"1": "a-ae_round2", "2": "a-ae_round2"}  # every round an earlier method's
    assert method_rows(rows, tmp_path)[3]["seconds"]["adversarial_erasing"] == "= ae_round2"


def test_the_comparison_bars_are_each_methods_miou_and_a_failed_method_has_none():
    from wsss_steps.comparison_figures import bar_heights, comparison_figure

    methods = [{"method": "cam", "cam": 50.0, "rw": 55.5, "seg": 60.0, "seg_crf": None},
               {"method": "eps"},  # failed: no figures
               {"method": "gradcam", "cam": 45.0, "rw": 47.0, "seg": 52.0, "seg_crf": None}]
    heights = bar_heights(methods)
    assert list(heights) == ["cam", "rw", "seg"]  # no method has a CRF row
    assert heights["rw"][0] == 55.5 and heights["cam"][2] == 45.0
    assert all(value != value for value in (heights["cam"][1], heights["seg"][1]))  # NaN for the failed one
    fig = comparison_figure({"dataset": "tiny", "methods": methods})
    assert len(fig.axes[0].patches) == 3 * 3


def test_the_irn_row_runs_irn_as_its_authors_do_and_shares_the_affinity_labels():
    runs = runs_of("cam", "irn")
    irn = runs["tiny-irn"]
    assert irn["affinity"]["method"] == "irn"
    # net/resnet50_irn.py:13, resnet50(pretrained=True), frozen; the tiny config has no pretrained weights, so the
    # frozen features are the classifier's, not random ones
    assert irn["affinity"]["init_from_classifier"] is True
    config = merge_compare(yaml.safe_load(TINY.read_text()), ["irn"])
    config["backbone"]["weights"] = "IMAGENET1K_V1"
    assert comparison_runs(validate_config(config))["tiny-irn"]["affinity"]["init_from_classifier"] is False
    # run_sample.py:47-52 (beta 10, exp_times 8: 2^8 steps, sem_seg_bg_thres 0.25); step/make_sem_seg_labels.py:41
    # (radius=5), on the stride-4 grid of the boundary map
    assert irn["affinity"]["radius"] == 5
    assert {k: irn["random_walk"][k] for k in ("stride", "beta", "t", "background", "bg_threshold")} == {
        "stride": 4, "beta": 10, "t": 2 ** 8, "background": "threshold", "bg_threshold": 0.25}
    assert held_by(stage_owners(runs), "tiny-irn") == ["tiny"] * 3 + ["tiny-irn"] * 4
