"""The method comparison: which stages a method may reuse, and a real comparison of two methods on the tiny config.

The tests here run no workflow; those that do are in tests/workflow/test_compare_run.py.
"""

import json

import yaml

from conftest import TINY
from wsss_steps.compare import (METHODS, best_source, link_artifacts, merged, method_row, reusable_stages, round_artifacts,
                                 snakemake_record)
from wsss_steps.config import validate_config


def test_a_method_reuses_exactly_the_stages_before_the_first_section_it_changes():
    base = yaml.safe_load(TINY.read_text())
    configs = {m: validate_config(merged(base, METHODS[m])) for m in ("cam", "gradcam", "puzzle_cam", "sec", "ae_round2", "psl")}
    assert reusable_stages(configs["cam"], configs["gradcam"]) == ["train_classifier"]
    assert reusable_stages(configs["cam"], configs["sec"]) == ["train_classifier", "extract_cams", "make_affinity_labels",
                                                               "train_affinity", "random_walk"]
    assert reusable_stages(configs["cam"], configs["puzzle_cam"]) == []
    # adversarial erasing's round 1 is the run's own classifier and CAMs; the union changes the affinity labels
    assert reusable_stages(configs["cam"], configs["ae_round2"]) == ["train_classifier", "extract_cams"]
    assert reusable_stages(configs["cam"], configs["psl"]) == reusable_stages(configs["cam"], configs["sec"])
    assert len(reusable_stages(configs["cam"], configs["cam"])) == 7
    assert merged({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_a_method_reuses_the_earlier_run_it_shares_most_with_and_its_adversarial_erasing_rounds(tmp_path):
    base = yaml.safe_load(TINY.read_text())
    configs = {m: validate_config(merged(base, METHODS[m])) for m in ("cam", "sec", "ae_round2", "ae_round3", "ae_psl")}
    runs = [(configs[m], tmp_path / m) for m in ("cam", "sec", "ae_round2", "ae_round3")]
    # ae_psl: AE-PSL's three rounds, affinity labels, AffinityNet and walk are ae_round3's; only segmentation differs
    source, stages, rounds = best_source(runs, configs["ae_psl"])
    assert source[1].name == "ae_round3" and stages[-1] == "random_walk" and rounds == 3
    # ae_round3: the union after 3 rounds changes the affinity labels, but rounds 1 and 2 are ae_round2's
    source, stages, rounds = best_source(runs[:3], configs["ae_round3"])
    assert source[1].name == "ae_round2" and stages == ["train_classifier", "extract_cams"] and rounds == 2
    # the first run wins a tie (PSL shares everything up to the walk with cam and with sec); no erasing, no rounds
    source, stages, rounds = best_source(runs[:3], validate_config(merged(base, METHODS["psl"])))
    assert source[1].name == "cam" and stages[-1] == "random_walk" and rounds == 0
    # another erasing threshold mines other regions: nothing of a round is reused
    other = validate_config(merged(base, {"adversarial_erasing": {"rounds": 3, "delta": 0.7}}))
    assert best_source(runs, other)[2] == 0
    assert best_source([], configs["cam"]) == (None, [], 0)
    # the rounds' files are linked, round 1 having only its regions, and the row says which rounds were reused
    source = tmp_path / "ae_round2" / "adversarial_erasing"
    source.mkdir(parents=True)
    for name in ("regions_round1.h5", "classifier_round2.h5", "cams_round2.h5", "regions_round2.h5"):
        (source / name).write_bytes(name.encode())
    linked = link_artifacts(tmp_path / "ae_round2", tmp_path / "ae_round3", round_artifacts(2))
    assert sorted(linked) == sorted(f"adversarial_erasing/{n}" for n in ("regions_round1.h5", "classifier_round2.h5",
                                                                          "cams_round2.h5", "regions_round2.h5"))
    assert (tmp_path / "ae_round3" / "adversarial_erasing" / "cams_round2.h5").read_bytes() == b"cams_round2.h5"
    # a rerun of the comparison finds them linked already and still reports them reused; a file of its own is not
    (tmp_path / "ae_round3" / "adversarial_erasing" / "regions_round1.h5").unlink()
    (tmp_path / "ae_round3" / "adversarial_erasing" / "regions_round1.h5").write_bytes(b"regions_round1.h5")
    again = link_artifacts(tmp_path / "ae_round2", tmp_path / "ae_round3", round_artifacts(2))
    assert sorted(again) == sorted(n for n in linked if "regions_round1" not in n)
    row = method_row("ae_round3", tmp_path / "ae_round3", ["train_classifier", "extract_cams"], 1, [1, 2])
    assert row["reused_rounds"] == [1, 2] and row["seconds"]["adversarial_erasing"] == "reused"
    logs = tmp_path / "ae_round3" / "logs"
    logs.mkdir()
    (logs / "ae_train_classifier_round3.log").write_text("... stage took 30.5 s, peak memory 1 MiB\n")
    (logs / "mine_regions_round3.log").write_text("... stage took 1.5 s, peak memory 1 MiB\n")
    assert method_row("ae_round3", tmp_path / "ae_round3", [], 1, [1, 2])["seconds"]["adversarial_erasing"] == 32.0


def test_a_linked_artifact_takes_over_its_source_s_snakemake_record_and_a_stale_one_goes(tmp_path):
    source, target = tmp_path / "results" / "a", tmp_path / "results" / "a-gradcam"
    record = {"rule": "extract_cams", "input": ["data/train.txt", "results/a/classifier.weights.h5"],
              "log": ["results/a/logs/extract_cams.log"], "params": ["'{\"scales\": [1.0]}'", "'a'"],
              "input_checksums": {"data/train.txt": "sha256:00"}}
    snakemake_record(tmp_path, source / "cams_train.h5").parent.mkdir(parents=True)
    snakemake_record(tmp_path, source / "cams_train.h5").write_text(json.dumps(record))
    assert snakemake_record(tmp_path, source / "cams_train.h5").name == "cmVzdWx0cy9hL2NhbXNfdHJhaW4uaDU="
    for name in ("cams_train.h5", "classifier.weights.h5"):
        source.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(name.encode())
    # an earlier run of the target's name left a record for the classifier; the source has none for it
    snakemake_record(tmp_path, target / "classifier.weights.h5").write_text(json.dumps({"params": ["'old'"]}))
    assert link_artifacts(source, target, ["cams_train.h5", "classifier.weights.h5"], tmp_path) == [
        "cams_train.h5", "classifier.weights.h5"]
    adopted = json.loads(snakemake_record(tmp_path, target / "cams_train.h5").read_text())
    assert adopted == {**record, "input": ["data/train.txt", "results/a-gradcam/classifier.weights.h5"],
                       "log": ["results/a-gradcam/logs/extract_cams.log"], "params": [record["params"][0], "'a-gradcam'"]}
    assert not snakemake_record(tmp_path, target / "classifier.weights.h5").exists()
    assert snakemake_record(tmp_path, tmp_path / ("x" * 300)).parent.name.startswith("@")  # Snakemake's long names


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
