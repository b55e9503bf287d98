"""Every command the README documents, run on the tiny run's real artifacts, not only its --help.

Each stage run alone (`python -m wsss_steps.<stage>`, as "Running one stage" says) must give the same
arrays as the workflow's artifact; diagnose (module and `snakemake diagnose` target) and inspect run on the
run's files; the README's rerun commands are executed on a copy of the run.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import TINY, arrays, planned_jobs, snakemake

CONFIG = yaml.safe_load(TINY.read_text())
DATASET = json.dumps({k: v for k, v in CONFIG["dataset"].items()
                      if k not in ("generate", "score_split", "cooccurrence")})
BACKBONE = json.dumps(CONFIG["backbone"])


def section(name: str) -> str:
    return json.dumps(CONFIG[name])


def stage_command(stage: str, results, out) -> list[str]:
    """The stage's command line as a user writes it from --help, reading the tiny run's artifacts."""
    common = ["--dataset", DATASET, "--threads", "2", "--seed", str(CONFIG["seed"])]
    args = {
        "train_classifier": ["--backbone", BACKBONE, "--params", section("classifier"), "--split", "train",
                             "--check-masks", "val", "train", "--health-splits", "train", "val", "--out", out / "classifier.weights.h5"],
        "extract_cams": ["--backbone", BACKBONE, "--params", section("cams"), "--split", "train",
                         "--classifier", results / "classifier.weights.h5", "--out", out / "cams_train.h5"],
        "make_affinity_labels": ["--params", section("affinity_labels"), "--cams", results / "cams_train.h5",
                                 "--out", out / "affinity_labels_train.h5"],
        "train_affinity": ["--backbone", BACKBONE, "--params", section("affinity"),
                           "--labels", results / "affinity_labels_train.h5",
                           "--classifier", results / "classifier.weights.h5", "--out", out / "affinity.weights.h5"],
        "random_walk": ["--backbone", BACKBONE, "--params", section("random_walk"),
                        "--affinity-params", section("affinity"), "--cams", results / "cams_train.h5",
                        "--affinity", results / "affinity.weights.h5",
                        "--affinity-labels", results / "affinity_labels_train.h5", "--out", out / "pseudo_labels_train.h5"],
        "train_segmentation": ["--backbone", BACKBONE, "--params", section("segmentation"),
                               "--pseudo-labels", results / "pseudo_labels_train.h5",
                               "--classifier", results / "classifier.weights.h5", "--predict-splits", "val", "train",
                               "--out", out / "segmentation.weights.h5",
                               "--predictions", out / "segmentation_predictions.h5"],
        "evaluate": ["--params", section("evaluate"), "--run-name", "tiny", "--cams", results / "cams_train.h5",
                     "--affinity-labels", results / "affinity_labels_train.h5",
                     "--pseudo-labels", results / "pseudo_labels_train.h5",
                     "--predictions", results / "segmentation_predictions.h5",
                     "--classifier", results / "classifier.weights.h5", "--train-split", "train",
                     "--val-split", "val", "--score-split", "train",
                     "--cooccurrence", json.dumps(CONFIG["dataset"].get("cooccurrence", [])), "--summary", out / "summary.json", "--table", out / "summary.md",
                     "--examples", out / "examples.png"],
    }[stage]
    return [sys.executable, "-m", f"wsss_steps.{stage}", *common, *map(str, args)]


def run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800)  # a hang guard
    assert proc.returncode == 0, f"{' '.join(cmd[:3])} failed:\n{proc.stderr[-4000:]}"
    return proc


STORES = {"train_classifier": ["classifier.weights.h5"], "extract_cams": ["cams_train.h5"],
          "make_affinity_labels": ["affinity_labels_train.h5"], "train_affinity": ["affinity.weights.h5"],
          "random_walk": ["pseudo_labels_train.h5"],
          "train_segmentation": ["segmentation.weights.h5", "segmentation_predictions.h5"]}


@pytest.mark.parametrize("stage", [*STORES, "evaluate"])
def test_a_stage_run_alone_reproduces_the_workflows_artifact(tiny_run, tmp_path, stage):
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    run(stage_command(stage, results, tmp_path), cwd=workdir)
    if stage == "evaluate":
        ours, theirs = (json.loads((d / "summary.json").read_text()) for d in (tmp_path, results))
        for key in ("cam", "rw", "seg"):
            assert ours[key]["miou"] == theirs[key]["miou"] and ours[key]["iou"] == theirs[key]["iou"], key
        assert (tmp_path / "summary.md").read_text() == (results / "summary.md").read_text()
        return
    for name in STORES[stage]:
        ours, theirs = arrays(tmp_path / name), arrays(results / name)
        assert ours.keys() == theirs.keys(), name
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=f"{name}:{key}")


def test_extract_cams_with_gradcam_at_the_last_layer_matches_cam_on_the_tiny_run(tiny_run, tmp_path):
    """cams.method gradcam, run alone on the tiny run's classifier: at the last layer Grad-CAM is the CAM / Z, so
    at one scale without flip the stored maps differ from the workflow's CAMs by the ReLU's place and rounding only."""
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    params = {**CONFIG["cams"], "scales": [1.0], "flip": False}
    cmd = stage_command("extract_cams", results, tmp_path)
    plain, grad = (cmd[:] for _ in range(2))
    for command, name, extra in ((plain, "plain", {}), (grad, "grad", {"method": "gradcam"})):
        command[command.index("--params") + 1] = json.dumps({**params, **extra})
        command[command.index("--out") + 1] = str(tmp_path / f"{name}.h5")
        run(command, cwd=workdir)
    ours, theirs = arrays(tmp_path / "grad.h5"), arrays(tmp_path / "plain.h5")
    assert ours.keys() == theirs.keys() and len(ours) == 24
    for key in ours:
        assert ours[key].shape == theirs[key].shape
        a, b = ours[key].astype(np.float32).ravel(), theirs[key].astype(np.float32).ravel()
        if b.any():
            assert np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.9, key


def test_diagnose_module_and_workflow_target_agree(tiny_run, tmp_path):
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    proc = snakemake(workdir, "--cores", "2", "diagnose")
    assert "diagnose" in proc.stdout
    target = json.loads((results / "diagnose.json").read_text())
    assert target["images"] == 24 and set(target["affinity"]) == {"object", "background", "cross"}
    assert all(0 <= target["walk_miou"][k] <= 100 for k in ("learned", "oracle"))
    assert all(0 <= row["mean_w"] <= 1 for row in target["affinity"].values())
    cmd = [sys.executable, "-m", "wsss_steps.diagnose", "--dataset", DATASET, "--backbone", BACKBONE,
           "--affinity-params", section("affinity"), "--random-walk-params", section("random_walk"),
           "--cams", str(results / "cams_train.h5"), "--affinity", str(results / "affinity.weights.h5"),
           "--threads", "2", "--out", str(tmp_path / "d.json")]
    proc = run(cmd, cwd=workdir)
    assert "pseudo-label mIoU over 24 images" in proc.stderr
    assert json.loads((tmp_path / "d.json").read_text()) == target


def test_inspect_prints_a_real_artifact(tiny_run):
    workdir, _ = tiny_run
    proc = run([sys.executable, "-m", "wsss_steps.inspect_artifact", "results/tiny/cams_train.h5"], cwd=workdir)
    shown = json.loads(proc.stdout)
    assert shown["stage"] == "extract_cams" and shown["contents"]["datasets"] == 24
    assert any(path.endswith("classifier.weights.h5") for path in shown["inputs"])


def test_readme_rerun_commands_do_what_they_say(run_copy):
    walk = run_copy / "results" / "tiny" / "pseudo_labels_train.h5"
    before = arrays(walk)
    mtime = walk.stat().st_mtime_ns
    proc = snakemake(run_copy, "--cores", "2", "-R", "random_walk", "--until", "random_walk")
    assert planned_jobs(proc.stdout) == {"random_walk": 1}
    assert walk.stat().st_mtime_ns != mtime
    after = arrays(walk)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    proc = snakemake(run_copy, "--cores", "2", "-f", "results/tiny/affinity.weights.h5")
    assert planned_jobs(proc.stdout) == {"train_affinity": 1}
    # "the next plain snakemake reruns those, since their input changed"
    proc = snakemake(run_copy, "--cores", "2")
    assert planned_jobs(proc.stdout) == {"random_walk": 1, "train_segmentation": 1, "evaluate": 1, "figures": 1, "all": 1}
