"""The workflow end to end on the tiny config, and what Snakemake reruns."""

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import BIN, TINY, not_activated_env, planned_jobs, snakemake, write_config

STAGES = ["train_classifier", "extract_cams", "make_affinity_labels", "train_affinity", "random_walk",
          "train_segmentation", "evaluate"]


def test_whole_workflow_writes_summary_table_and_figure(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    summary = json.loads((results / "summary.json").read_text())
    for key in ("cam", "rw", "seg"):
        assert 0 <= summary[key]["miou"] <= 100
        assert set(summary[key]["iou"]) == {"background", "kite", "bug", "boat"}
    assert summary["cam"]["split"] == "train" and summary["seg"]["split"] == "val"
    assert summary["cam"]["threshold"] == 0.2 and len(summary["cam"]["curve"]) == 3
    assert "| CAM + RW | train |" in (results / "summary.md").read_text()
    assert (results / "examples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for stage in STAGES:
        text = (results / "logs" / f"{stage}.log").read_text()
        assert "peak memory" in text.splitlines()[-1], stage
    for log in (results / "logs").iterdir():
        assert "\r" not in log.read_text(), f"{log.name} holds carriage-return progress frames"
    assert len(list((results / "pseudo_labels_train").glob("*.png"))) == 24


def test_artifacts_record_provenance(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    with h5py.File(results / "cams_train.h5") as store:
        assert store.attrs["stage"] == "extract_cams"
        assert "classifier.weights.h5" in store.attrs["inputs"]
        first = json.loads(store.attrs["ids"])[0]
        assert store[first].dtype.name == "float16"
        assert store[first].shape[0] == len(store[first].attrs["classes"])
        assert (store.attrs["device"], store.attrs["amp"]) == ("cpu", "float32")  # the precision in effect
    with h5py.File(results / "pseudo_labels_train.h5") as store:
        assert json.loads(store.attrs["params"])["beta"] == 8
        assert store.attrs["package_version"]


def test_second_invocation_does_nothing(tiny_run):
    workdir, _ = tiny_run
    proc = snakemake(workdir, "-n", "--cores", "2")
    assert "Nothing to be done" in proc.stdout, proc.stdout[-2000:]


def test_changing_a_sweep_list_or_the_report_reruns_nothing(tiny_run, tmp_path):
    # Regression: the figures rule took the whole config as a param, so any key (a sweep's list, an unselected
    # method's block) reran it and the run was never up to date.
    workdir, _ = tiny_run
    changed = write_config(tmp_path / "sweep.yaml", sweep={"beta": [3, 5], "cam_scales": [[1.0, 2.0]]})
    proc = snakemake(workdir, "-n", "--cores", "2", configfiles=(changed,))
    assert "Nothing to be done" in proc.stdout, proc.stdout[-2000:]


def test_the_classifier_stops_the_run_on_an_unlearnt_class_unless_health_stop_on_is_empty(tiny_run, tmp_path):
    workdir, _ = tiny_run  # the tiny config sets health.stop_on: [] (its classifier learns no class)

    def classifier_command(*configfiles):
        planned = snakemake(workdir, "-n", "-p", "--cores", "2", "--forcerun", "train_classifier",
                            configfiles=configfiles)
        return next(line for line in planned.stdout.splitlines() if "wsss_steps.train_classifier" in line)

    assert "--stop-unlearnt" not in classifier_command(TINY)
    default = yaml.safe_load(TINY.read_text())
    del default["health"]  # absent: [classifier]
    (tmp_path / "default.yaml").write_text(yaml.safe_dump(default))
    assert "--stop-unlearnt" in classifier_command(tmp_path / "default.yaml")


def test_changing_beta_reruns_random_walk_and_what_follows(tiny_run, tmp_path):
    workdir, _ = tiny_run
    changed = write_config(tmp_path / "beta.yaml", random_walk={"beta": 6})
    proc = snakemake(workdir, "-n", "--cores", "2", configfiles=(changed,))
    assert planned_jobs(proc.stdout) == {"random_walk": 1, "train_segmentation": 1, "evaluate": 1, "figures": 1, "all": 1}


def test_changing_alpha_high_reruns_from_affinity_labels(tiny_run, tmp_path):
    workdir, _ = tiny_run
    changed = write_config(tmp_path / "alpha.yaml", affinity_labels={"alpha_high": 32})
    proc = snakemake(workdir, "-n", "--cores", "2", configfiles=(changed,))
    assert set(planned_jobs(proc.stdout)) == {"make_affinity_labels", "train_affinity", "random_walk",
                                              "train_segmentation", "evaluate", "figures", "all"}


def test_choosing_gradcam_reruns_from_extract_cams_and_its_block_alone_reruns_nothing(tiny_run, tmp_path):
    workdir, _ = tiny_run
    unselected = write_config(tmp_path / "layer.yaml", cams={"gradcam": {"layer": "previous"}})
    proc = snakemake(workdir, "-n", "--cores", "2", configfiles=(unselected,))
    assert "Nothing to be done" in proc.stdout, proc.stdout[-2000:]  # cams.method is still cam
    chosen = write_config(tmp_path / "gradcam.yaml", cams={"method": "gradcam"})
    proc = snakemake(workdir, "-n", "--cores", "2", configfiles=(chosen,))
    assert set(planned_jobs(proc.stdout)) == {"extract_cams", "make_affinity_labels", "train_affinity", "random_walk",
                                              "train_segmentation", "evaluate", "figures", "all"}


def test_hide_and_seek_block_alone_reruns_nothing_and_choosing_it_retrains_the_classifier(tiny_run, tmp_path):
    workdir, _ = tiny_run
    unselected = write_config(tmp_path / "has.yaml", classifier={"hide_and_seek": {"p": 0.25}})
    proc = snakemake(workdir, "-n", "--cores", "2", configfiles=(unselected,))
    assert "Nothing to be done" in proc.stdout, proc.stdout[-2000:]
    chosen = write_config(tmp_path / "has_on.yaml", classifier={"method": "hide_and_seek"})
    proc = snakemake(workdir, "-n", "--cores", "2", configfiles=(chosen,))
    assert {"train_classifier", "extract_cams", "evaluate"} <= set(planned_jobs(proc.stdout))


@pytest.mark.parametrize("section, change, key", [
    ("random_walk", {"beta": 0.5}, "random_walk.beta"),
    ("random_walk", {"gamma": 3}, "random_walk.gamma"),
])
def test_bad_config_stops_before_any_job(tmp_path, section, change, key):
    bad = write_config(tmp_path / "bad.yaml", **{section: change})
    proc = snakemake(tmp_path, "--cores", "2", configfiles=(bad,), check=False)
    assert proc.returncode != 0
    assert key in proc.stdout
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


def test_stages_run_with_the_interpreter_that_runs_snakemake(tiny_run, tmp_path):
    """Not whatever `python3` is first on PATH: the tiny run was started as .venv/bin/snakemake from a shell where
    the environment is not activated, and every stage found the project's packages."""
    workdir, proc = tiny_run
    assert "No module named" not in proc.stdout
    env = not_activated_env()
    assert all(Path(p).resolve() != BIN.resolve() for p in env["PATH"].split(os.pathsep) if p)
    other = shutil.which("python3", path=env["PATH"])  # what a bare `python3` would have run: not the project's
    assert other is None or Path(other).parent.resolve() != BIN.resolve(), other


def test_tiny_config_is_the_documented_schema():
    from wsss_steps.lib.config import load_config

    assert load_config(TINY)["run_name"] == "tiny"


def test_rerun_one_stage_plans_that_stage_alone(tiny_run):
    workdir, _ = tiny_run
    proc = snakemake(workdir, "-n", "--cores", "2", "-R", "train_affinity", "--until", "train_affinity")
    assert planned_jobs(proc.stdout) == {"train_affinity": 1}


def test_forcing_one_artifact_plans_its_job_alone(tiny_run):
    workdir, _ = tiny_run
    proc = snakemake(workdir, "-n", "--cores", "2", "-f", "results/tiny/affinity.weights.h5")
    assert planned_jobs(proc.stdout) == {"train_affinity": 1}


def test_device_cuda_without_a_gpu_stops_at_planning(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    config = write_config(tmp_path / "cuda.yaml", device="cuda")
    proc = snakemake(tmp_path, "-n", "--cores", "2", configfiles=(config,), check=False)
    assert proc.returncode != 0 and "config key 'device': cuda, but PyTorch sees no CUDA device" in proc.stdout
    assert planned_jobs(proc.stdout) == {}


def test_eps_reads_a_generated_datasets_saliency_maps_and_makes_them_with_opencv_when_told(tiny_run, tmp_path):
    workdir, _ = tiny_run
    auto = write_config(tmp_path / "eps.yaml", classifier={"method": "eps"})
    proc = snakemake(workdir, "-n", "--cores", "2", configfiles=(auto,))
    jobs = planned_jobs(proc.stdout)
    assert "train_classifier" in jobs and "make_saliency" not in jobs  # the generator writes SaliencyMaps/
    made = write_config(tmp_path / "eps_sr.yaml", classifier={"method": "eps", "eps": {"saliency": "spectral_residual"}})
    proc = snakemake(workdir, "-n", "--cores", "2", "-p", configfiles=(made,))
    assert {"make_saliency", "train_classifier"} <= set(planned_jobs(proc.stdout))
    assert "--method spectral_residual" in proc.stdout and "--saliency-dir results/" in proc.stdout


def test_training_stages_record_their_loss_per_step_and_affinitynet_its_three_terms(tiny_run):
    import subprocess
    import sys

    from wsss_steps.lib.artifacts import read_curve

    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    for name in ("classifier", "affinity", "segmentation"):
        with h5py.File(results / f"{name}.weights.h5", "r") as store:
            curve = read_curve(store["training_curve"])
        assert [r["step"] for r in curve] == list(range(1, len(curve) + 1)) and len(curve) > 1, name
        assert all(np.isfinite(r["loss"]) for r in curve), name
    with h5py.File(results / "affinity.weights.h5", "r") as store:
        curve = read_curve(store["training_curve"])
    for r in curve:  # L = L+fg/4 + L+bg/4 + L-/2, step by step
        assert r["loss"] == pytest.approx(r["pos_fg"] / 4 + r["pos_bg"] / 4 + r["neg"] / 2, rel=1e-5)
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.inspect_artifact", "--curve",
                           str(results / "affinity.weights.h5")], capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines[0] == "step,loss,pos_fg,pos_bg,neg" and len(lines) == len(curve) + 1
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.inspect_artifact", "--curve",
                           str(results / "cams_train.h5")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "has no training curve" in proc.stderr
