"""Health checks: known answers for their maths, and each kind of collapse seeded on tiny data must be named.

The seeded collapses run the real stages on the tiny run's artifacts: a walk whose background drowns every
class (psa's background map with alpha far below 1), and a segmentation net trained on pseudo-labels that are
background everywhere (it predicts one class). Each must leave a WARNING naming the stage and the classes in
its log and artifact, and evaluate must carry it into the summary and fail under evaluate.strict.

The tests here run the workflow; those that do not are in tests/unit/test_health.py.
"""

import json
import shutil
import subprocess

import h5py
import numpy as np
import pytest

from wsss_steps.lib import health

from test_entry_points import CONFIG, run, section, stage_command


def _health(path):
    with h5py.File(path, "r") as store:
        return health.read(store.attrs)


def _oracle_cams(workdir, results, out):
    """A copy of the tiny run's CAM store whose maps are the ground-truth masks: every class has CAM pixels."""
    from wsss_steps.data import VOCLayout

    layout = VOCLayout.from_config({k: v for k, v in CONFIG["dataset"].items() if k != "generate"} |
                                   {"root": str(workdir / CONFIG["dataset"]["root"])})
    path = out / "cams_train.h5"
    with h5py.File(results / "cams_train.h5", "r") as src, h5py.File(path, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name in json.loads(src.attrs["ids"]):
            classes = src[name].attrs["classes"]
            mask = layout.mask(name)
            maps = np.asarray([mask == c for c in classes], np.float16).reshape(len(classes), *mask.shape)
            dst.create_dataset(name, data=maps)
            dst[name].attrs["classes"] = classes
    return path


@pytest.mark.parametrize("walk, erased", [
    ({"alpha": 0.01, "beta": 1, "t": 64, "background": "power"}, {"kite", "bug", "boat"}),  # M_bg ~ 1, mixed
    ({"beta": 1, "t": 64, "background": "threshold"}, set()),  # the same walk, background decided after it
])
def test_a_walk_that_erases_the_classes_is_named(tiny_run, tmp_path, walk, erased):
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    cmd = stage_command("random_walk", results, tmp_path)
    cmd[cmd.index("--params") + 1] = json.dumps(dict(json.loads(section("random_walk")), **walk))
    cmd[cmd.index("--cams") + 1] = str(_oracle_cams(workdir, results, tmp_path))
    cmd += ["--log", str(tmp_path / "walk.log")]
    run(cmd, cwd=workdir)
    record = _health(tmp_path / "pseudo_labels_train.h5")
    assert set(record["figures"]["survival"]) == {"kite", "bug", "boat"}
    assert {w["class"] for w in record["warnings"] if w["check"] == "survival"} == erased
    log = (tmp_path / "walk.log").read_text()
    if erased:
        assert "WARNING health: random_walk: the walk erases the class in many of its images (class 'kite'" in log
        assert "most likely at fault: random_walk.alpha" in log
    else:  # beta 1 with t 64 spreads the classes (the confident-background check says so), but erases none
        assert "the walk erases the class" not in log


def test_a_walk_that_spreads_each_image_s_first_class_over_it_is_named(tiny_run, tmp_path):
    """CAMs flat over every labelled class: after the walk each image's first class takes every pixel."""
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    flat = tmp_path / "cams_train.h5"
    first, images = {}, {}
    with h5py.File(results / "cams_train.h5", "r") as src, h5py.File(flat, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        names = json.loads(src.attrs["classes"]) if isinstance(src.attrs["classes"], str) else list(src.attrs["classes"])
        for image_id in json.loads(src.attrs["ids"]):
            classes = [int(c) for c in src[image_id].attrs["classes"]]
            dst.create_dataset(image_id, data=np.ones_like(src[image_id][()]))
            dst[image_id].attrs["classes"] = src[image_id].attrs["classes"]
            for c in classes:
                images[names[c]] = images.get(names[c], 0) + 1
                first[names[c]] = first.get(names[c], 0) + int(c == classes[0])
    cmd = stage_command("random_walk", results, tmp_path)
    cmd[cmd.index("--cams") + 1] = str(flat)
    cmd += ["--log", str(tmp_path / "walk.log")]
    run(cmd, cwd=workdir)
    record = _health(tmp_path / "pseudo_labels_train.h5")
    expected = {name: round(first[name] / images[name], 4) for name in images}  # the first class wins every tie
    assert {name: row["rate"] for name, row in record["figures"]["whole_image_share"].items()} == expected
    spread = {name for name, rate in expected.items() if rate > health.MAX_WHOLE_IMAGE}
    assert spread, "the tiny data gives no class that comes first in most of its images"
    assert {w["class"] for w in record["warnings"] if w["check"] == "whole_image"} == spread
    assert "WARNING health: random_walk: the class covers the whole image in most of its images" in \
        (tmp_path / "walk.log").read_text()


def test_a_walk_on_affinities_of_one_everywhere_is_named(tiny_run, tmp_path):
    """AffinityNet's last conv zeroed: every feature is 0, so every affinity is exp(0) = 1 and the walk spreads the
    classes over the whole image, over what the affinity labels call confident background: the new check names them."""
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    flat = tmp_path / "affinity.weights.h5"
    shutil.copy(results / "affinity.weights.h5", flat)
    with h5py.File(flat, "r+") as store:
        store["state_dict/fuse.weight"][...] = 0
    cmd = stage_command("random_walk", results, tmp_path)
    cmd[cmd.index("--affinity") + 1] = str(flat)
    # the masks as CAMs (the tiny classifier learns little) and the background decided after the walk: the flat walk
    # keeps every class at its maximum everywhere, so each image's first class takes every pixel
    cmd[cmd.index("--cams") + 1] = str(_oracle_cams(workdir, results, tmp_path))
    cmd[cmd.index("--params") + 1] = json.dumps(dict(json.loads(section("random_walk")), background="threshold",
                                                     bg_threshold=0.5))
    cmd += ["--log", str(tmp_path / "walk.log")]
    run(cmd, cwd=workdir)
    record = _health(tmp_path / "pseudo_labels_train.h5")
    rates = {name: row["rate"] for name, row in record["figures"]["confident_background"].items()}
    spread = {name for name, rate in rates.items() if rate > health.MAX_CONFIDENT_BACKGROUND}
    assert spread, f"no class was spread over confident background: {rates}"
    assert {w["class"] for w in record["warnings"] if w["check"] == "confident_background"} == spread
    name = sorted(spread)[0]
    log = (tmp_path / "walk.log").read_text()
    assert (f"WARNING health: random_walk: the walk spreads the class over what the affinity labels call confident "
            f"background (class '{name}'") in log
    assert "most likely at fault: random_walk.beta / random_walk.t" in log
    # the trained affinities of the tiny run keep every class off confident background
    trained = _health(results / "pseudo_labels_train.h5")
    assert all(row["rate"] <= health.MAX_CONFIDENT_BACKGROUND
               for row in trained["figures"]["confident_background"].values())


@pytest.fixture(scope="module")
def collapsed_segmentation(tiny_run, tmp_path_factory):
    """train_segmentation on pseudo-labels that are background everywhere: the net predicts one class."""
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    out = tmp_path_factory.mktemp("collapse")
    pseudo = out / "pseudo_labels_train.h5"
    with h5py.File(results / "pseudo_labels_train.h5", "r") as src, h5py.File(pseudo, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name in json.loads(src.attrs["ids"]):
            dst.create_dataset(name, data=np.zeros_like(src[name][()]))
    cmd = stage_command("train_segmentation", results, out)
    cmd[cmd.index("--pseudo-labels") + 1] = str(pseudo)
    cmd += ["--log", str(out / "seg.log")]
    run(cmd, cwd=workdir)
    return workdir, results, out


def test_a_segmentation_net_predicting_one_class_is_named(collapsed_segmentation):
    _, _, out = collapsed_segmentation
    record = _health(out / "segmentation_predictions.h5")
    never = {w["class"] for w in record["warnings"] if w["check"] == "never_predicted_val"}
    assert never == {"kite", "bug", "boat"}
    assert "WARNING health: train_segmentation: never predicts the class on val (class 'boat'" in (out / "seg.log").read_text()


def test_evaluate_gathers_the_warnings_and_strict_fails(collapsed_segmentation):
    workdir, results, out = collapsed_segmentation
    cmd = stage_command("evaluate", results, out)
    cmd[cmd.index("--predictions") + 1] = str(out / "segmentation_predictions.h5")
    run(cmd, cwd=workdir)
    summary = json.loads((out / "summary.json").read_text())
    stages = {(w["stage"], w["class"]) for w in summary["health"]["warnings"]}
    assert {("train_segmentation", "kite"), ("train_segmentation", "boat")} <= stages
    table = (out / "summary.md").read_text()
    assert "## Health" in table and "**WARNING** train_segmentation: never predicts the class on val" in table
    strict = dict(json.loads(section("evaluate")), strict=True)
    cmd[cmd.index("--params") + 1] = json.dumps(strict)
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=1800)  # a hang guard
    assert proc.returncode == 1
    assert "evaluate.strict" in proc.stderr and "never predicts the class on val (class 'kite'" in proc.stderr


def test_the_tiny_run_summary_has_a_health_section(tiny_run):
    workdir, _ = tiny_run
    summary = json.loads((workdir / "results" / "tiny" / "summary.json").read_text())
    assert set(summary["health"]["stages"]) == {"train_classifier", "extract_cams", "make_affinity_labels",
                                                "random_walk", "train_segmentation"}
    assert set(summary["health"]["stages"]["train_classifier"]) == {"train", "val"}
    assert summary["health"]["unchecked"] == []
