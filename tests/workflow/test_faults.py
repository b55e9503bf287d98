"""Faults: nothing finished is thrown away, and the README's words after a stop finish the run.

Each case runs the tiny workflow in a fresh folder, injects a fault (environment variables read by
wsss_steps.lib.runtime.fault_point), follows the README's "Resuming" steps literally and checks that the
run ends with exactly the figures and arrays of the uninterrupted tiny run, having redone only what
the fault interrupted.
"""

import json
import os
import re
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from conftest import BIN, REPO, TINY, arrays, planned_jobs, snakemake

HANG_GUARD_S = 1200


def assert_same_run(workdir, reference):
    ours, theirs = workdir / "results" / "tiny", reference / "results" / "tiny"
    a, b = (json.loads((d / "summary.json").read_text()) for d in (ours, theirs))
    for key in ("cam", "rw", "seg"):
        assert a[key] == b[key], key
    for name in ("classifier.weights.h5", "affinity.weights.h5", "segmentation.weights.h5",
                 "segmentation_predictions.h5", "pseudo_labels_train.h5"):
        x, y = arrays(ours / name), arrays(theirs / name)
        assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x), name
    assert not list((ours / "checkpoints").glob("*.h5")), "a checkpoint was left behind"
    assert not [p for p in ours.rglob("*") if ".tmp" in p.name], "a temporary file was left behind"


def run_with_fault(workdir, monkeypatch, *args, **fault):
    """The tiny workflow in ``workdir`` with a fault-injection variable set for its jobs; it is expected to fail."""
    with monkeypatch.context() as patch:
        for key, value in fault.items():
            patch.setenv(key, value)
        proc = snakemake(workdir, "--cores", "2", *args, check=False)
    assert proc.returncode != 0, proc.stdout[-3000:]
    return proc


def test_failure_after_training_keeps_the_trained_weights(tiny_run, run_copy, monkeypatch):
    """train_segmentation fails after training (forced to rerun on a copy of the finished run): the same command goes
    on from the trained weights, trains nothing again and ends with the uninterrupted run's arrays."""
    reference, _ = tiny_run
    failed = run_with_fault(run_copy, monkeypatch, "--forcerun", "train_segmentation",
                            WSSS_FAULT_FAIL_AT="segmentation predict")
    assert "fault injection: failing at 'segmentation predict'" in failed.stdout
    checkpoint = run_copy / "results" / "tiny" / "checkpoints" / "train_segmentation.h5"
    assert checkpoint.is_file(), "the trained weights were thrown away with the failed job"
    again = snakemake(run_copy, "--cores", "2", "--forcerun", "train_segmentation")  # the same command
    log = (run_copy / "results" / "tiny" / "logs" / "train_segmentation.log").read_text()
    assert "training had finished (1 epochs); going on from the trained weights" in log
    assert "segmentation epoch 1/1 loss" not in log.split("going on from the trained weights")[-1]  # not trained again
    assert "train_segmentation" in again.stdout and "train_affinity" not in again.stdout.split("Job stats")[-1]
    assert_same_run(run_copy, reference)


def stopped_log_line(log_path, name):
    return log_path.is_file() and f"fault injection: stopping this process at '{name}'" in log_path.read_text()


STOPS = [("train_classifier", "classifier epoch 1"), ("train_affinity", "affinity epoch 1"),
         ("train_segmentation", "segmentation epoch 1")]


def start_and_kill_at(workdir, rule, point):
    """Start the tiny workflow as a user would and SIGKILL Snakemake's whole process group once ``rule`` reaches
    ``point``, as a power loss would stop it."""
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(TINY),
           "--cores", "2"]
    env = dict(os.environ, WSSS_FAULT_STOP_AT=point)
    job = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    log_path = workdir / "results" / "tiny" / "logs" / f"{rule}.log"
    deadline = time.monotonic() + HANG_GUARD_S
    try:
        while not stopped_log_line(log_path, point):
            assert job.poll() is None, f"the workflow ended before {rule} reached '{point}'"
            assert time.monotonic() < deadline, f"{rule} never reached '{point}'"
            time.sleep(0.2)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()


def test_sigkill_of_the_whole_workflow_in_each_training_stage_then_the_readme_steps_finish_the_run(tiny_run, tmp_path):
    """The whole workflow is killed in each training stage in turn; after each kill, the README's steps: the same
    command stops on the lock, the same command with --unlock, the same command. The run after a kill in stage k
    resumes stage k from its checkpoint (it is then killed in stage k + 1); the last finishes the run with exactly the
    uninterrupted run's arrays. One fresh folder for the three kills (one workflow's worth of training, not three)."""
    reference, _ = tiny_run
    for rule, point in STOPS:
        start_and_kill_at(tmp_path, rule, point)
        locked = snakemake(tmp_path, "--cores", "2", check=False)
        assert locked.returncode != 0 and "--unlock" in locked.stdout
        snakemake(tmp_path, "--cores", "2", "--unlock")
    snakemake(tmp_path, "--cores", "2")
    for rule, _ in STOPS:
        log = (tmp_path / "results" / "tiny" / "logs" / f"{rule}.log").read_text()
        assert "after epoch 1" in log, f"{rule} was not resumed from its checkpoint:\n{log[-2000:]}"
    assert_same_run(tmp_path, reference)


def test_a_killed_job_is_rerun_by_the_same_command(tiny_run, run_copy, monkeypatch):
    """SIGKILL of one stage process (an out-of-memory kill), train_affinity forced to rerun on a copy of the finished
    run: Snakemake stops; the same command resumes the stage from its checkpoint and finishes the run."""
    reference, _ = tiny_run
    run_with_fault(run_copy, monkeypatch, "--forcerun", "train_affinity", WSSS_FAULT_KILL_AT="affinity epoch 1")
    snakemake(run_copy, "--cores", "2", "--forcerun", "train_affinity")  # the same command
    assert "after epoch 1" in (run_copy / "results" / "tiny" / "logs" / "train_affinity.log").read_text()
    assert_same_run(run_copy, reference)


ARTIFACTS = {"classifier.weights.h5": "train_classifier", "cams_train.h5": "extract_cams",
             "affinity_labels_train.h5": "make_affinity_labels", "affinity.weights.h5": "train_affinity",
             "pseudo_labels_train.h5": "random_walk", "segmentation.weights.h5": "train_segmentation",
             "segmentation_predictions.h5": "train_segmentation"}
STAGE_ORDER = ["make_dataset", "train_classifier", "extract_cams", "make_affinity_labels", "train_affinity",
               "random_walk", "train_segmentation", "evaluate"]


def forcerun_named(output: str) -> list[str]:
    """The `snakemake --forcerun <rule>` an error message names, as arguments."""
    match = re.search(r"`snakemake (--forcerun \w+)`", output)
    assert match, output[-3000:]
    return match.group(1).split()


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("name", list(ARTIFACTS))
def test_a_truncated_artifact_stops_the_run_naming_the_command_that_rebuilds_it(run_copy, name):
    """The command the error names plans the artifact's stage and what follows, none before it; that following it
    rebuilds the run exactly is the next test (that every stage's rerun gives the same arrays, test_cache.py)."""
    truncate(run_copy / "results" / "tiny" / name)
    failed = snakemake(run_copy, "--cores", "2", check=False)
    assert failed.returncode != 0
    command = forcerun_named(failed.stdout)
    assert command == ["--forcerun", ARTIFACTS[name]]
    planned = planned_jobs(snakemake(run_copy, "-n", "--cores", "2", *command).stdout)
    rule = ARTIFACTS[name]
    assert rule in planned and not set(planned) & set(STAGE_ORDER[:STAGE_ORDER.index(rule)]), planned


def test_the_command_a_truncated_artifact_names_rebuilds_the_run_exactly(tiny_run, run_copy):
    reference, _ = tiny_run
    truncate(run_copy / "results" / "tiny" / "segmentation.weights.h5")
    command = forcerun_named(snakemake(run_copy, "--cores", "2", check=False).stdout)
    snakemake(run_copy, "--cores", "2", *command)
    assert_same_run(run_copy, reference)


def test_a_stage_output_lost_from_a_finished_run_is_rebuilt_by_the_plain_command(run_copy):
    """A killed `--forcerun train_affinity` leaves the run without affinity.weights.h5 but with what was made from it:
    the plain command plans the stage and what follows, not "Nothing to be done" (regression)."""
    (run_copy / "results" / "tiny" / "affinity.weights.h5").unlink()
    planned = planned_jobs(snakemake(run_copy, "-n", "--cores", "2").stdout)
    assert {"train_affinity", "random_walk", "train_segmentation", "evaluate"} <= set(planned), planned
    assert not set(planned) & {"train_classifier", "extract_cams", "make_affinity_labels"}, planned


def test_verify_finds_changed_content_whose_modification_time_did_not_change(tiny_run, run_copy):
    reference, _ = tiny_run
    path = run_copy / "results" / "tiny" / "pseudo_labels_train.h5"
    stat = path.stat()
    with h5py.File(path, "r+") as store:
        first = json.loads(store.attrs["ids"])[0]
        store[first][0, 0] = 255 - store[first][0, 0]
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "Nothing to be done" in snakemake(run_copy, "-n", "--cores", "2").stdout
    failed = snakemake(run_copy, "--cores", "2", "verify", check=False)
    assert failed.returncode != 0 and f"dataset '{first}' differs from what was written" in failed.stdout
    snakemake(run_copy, "--cores", "2", *forcerun_named(failed.stdout))
    assert "ok results/tiny/pseudo_labels_train.h5" in snakemake(run_copy, "--cores", "2", "verify").stdout
    assert_same_run(run_copy, reference)
