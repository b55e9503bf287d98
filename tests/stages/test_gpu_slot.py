"""GPU slots: one GPU id per job on one machine, released by the kernel however the job ends."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import TINY
from wsss_steps import gpu_slot

SLOT = [sys.executable, "-m", "wsss_steps.gpu_slot"]
SHOW = [sys.executable, "-c", "import json, os; print(json.dumps([os.getpid(), os.environ.get('CUDA_VISIBLE_DEVICES')]))"]


def clean_env(**extra):
    """This process's environment without GPU-slot or SLURM settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SLURM_") and k not in ("WSSS_GPU_IDS", "WSSS_GPU_LOCK_DIR", "CUDA_VISIBLE_DEVICES")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run_slot(args, env, cwd, timeout=600):  # a hang guard, not a speed limit
    return subprocess.run([*SLOT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# Pure helpers.

def test_parse_ids_keeps_order_and_drops_blanks_and_repeats():
    assert gpu_slot.parse_ids(" 5, 7,,5 ") == ["5", "7"]
    assert gpu_slot.parse_ids("") == []
    assert gpu_slot.parse_ids("GPU-1a2b,MIG-3c") == ["GPU-1a2b", "MIG-3c"]


def test_visible_ids_stop_at_a_negative_id_like_cuda():
    assert gpu_slot.visible_ids("0,1") == ["0", "1"]
    assert gpu_slot.visible_ids("-1") == []
    assert gpu_slot.visible_ids("2,-1,3") == ["2"]
    assert gpu_slot.visible_ids("") == []


@pytest.mark.parametrize("environ, probed, expected", [
    ({}, [], []),
    ({}, ["0", "1"], ["0", "1"]),
    ({"CUDA_VISIBLE_DEVICES": "5,7"}, ["0"], ["5", "7"]),
    ({"CUDA_VISIBLE_DEVICES": ""}, ["0"], []),
    ({"WSSS_GPU_IDS": "3", "CUDA_VISIBLE_DEVICES": "5,7"}, [], ["3"]),
    ({"WSSS_GPU_IDS": "", "CUDA_VISIBLE_DEVICES": "5,7"}, ["0"], []),
    ({"SLURM_JOB_ID": "42", "WSSS_GPU_IDS": "5,7", "CUDA_VISIBLE_DEVICES": "1"}, ["0"], []),
])
def test_slot_ids_first_source_wins(environ, probed, expected):
    ids, source = gpu_slot.slot_ids(environ, probe=lambda: probed)
    assert ids == expected
    assert source


def test_slot_ids_say_why_under_slurm():
    assert "SLURM job 42" in gpu_slot.slot_ids({"SLURM_JOB_ID": "42"}, probe=lambda: ["0"])[1]


def test_lock_dir_option_then_environment_then_working_directory(tmp_path):
    assert gpu_slot.lock_dir("x", {"WSSS_GPU_LOCK_DIR": "/y"}, tmp_path) == tmp_path / "x"
    assert gpu_slot.lock_dir(None, {"WSSS_GPU_LOCK_DIR": "/y"}, tmp_path) == Path("/y")
    assert gpu_slot.lock_dir(None, {}, tmp_path) == tmp_path / "results" / ".gpu-slots"


def test_lock_path_is_a_safe_file_name(tmp_path):
    assert gpu_slot.lock_path(tmp_path, "7") == tmp_path / "gpu-7.lock"
    assert gpu_slot.lock_path(tmp_path, "MIG-a/b:1").name == "gpu-MIG-a_b_1.lock"


def test_a_held_lock_is_refused_until_closed(tmp_path):
    path = tmp_path / "gpu-0.lock"
    fd = gpu_slot.try_lock(path)
    assert fd is not None
    assert gpu_slot.try_lock(path) is None
    os.close(fd)
    again = gpu_slot.try_lock(path)
    assert again is not None
    os.close(again)


def test_acquire_takes_ids_in_order_and_gives_up_after_timeout(tmp_path):
    first, fd_first = gpu_slot.acquire(["5", "7"], tmp_path)
    second, fd_second = gpu_slot.acquire(["5", "7"], tmp_path)
    assert (first, second) == ("5", "7")
    now, sleeps, waits = [0.0], [], []

    def fake_sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    got = gpu_slot.acquire(["5", "7"], tmp_path, poll=0.25, timeout=1.0, sleep=fake_sleep,
                           clock=lambda: now[0], on_wait=lambda: waits.append(1))
    assert got == (None, None)
    assert sleeps == [0.25] * 4 and waits == [1]
    os.close(fd_first)
    assert gpu_slot.acquire(["5", "7"], tmp_path, timeout=0)[0] == "5"
    os.close(fd_second)


def test_acquire_many_takes_all_or_none(tmp_path):
    held, fd_held = gpu_slot.acquire(["0", "1", "2"], tmp_path)  # another job holds GPU 0
    got, fds = gpu_slot.acquire_many(["0", "1", "2"], 2, tmp_path, timeout=0)
    assert held == "0" and got == ["1", "2"]
    # nothing free: the attempt gives back what it locked, so the one free GPU stays free for a one-GPU job
    for fd in fds[1:]:
        os.close(fd)  # GPU 2 free again, GPU 1 still held
    assert gpu_slot.acquire_many(["0", "1", "2"], 2, tmp_path, timeout=0, sleep=lambda s: None) == ([], [])
    assert gpu_slot.acquire(["2"], tmp_path, timeout=0)[0] == "2"
    for fd in (fd_held, fds[0]):
        os.close(fd)


def test_a_command_needing_two_gpus_gets_both_or_a_clear_refusal(tmp_path):
    env = clean_env(CUDA_VISIBLE_DEVICES="5,7")
    proc = run_slot(["--gpus", "2", "--", *SHOW], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[1] == "5,7"
    too_many = run_slot(["--gpus", "3", "--", *SHOW], env, tmp_path)
    assert too_many.returncode == 75 and "needs 3 GPUs" in too_many.stderr


# The command line.

def test_help():
    proc = subprocess.run([*SLOT, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "wsss_steps.gpu_slot" in proc.stdout and "--lock-dir" in proc.stdout


def test_without_gpu_ids_the_command_runs_directly(tmp_path):
    # No WSSS_GPU_IDS, no CUDA_VISIBLE_DEVICES and no nvidia-smi on PATH: a CPU machine.
    env = clean_env(PATH=str(tmp_path / "empty-bin"))
    proc = subprocess.Popen([*SLOT, "--timeout", "0", "--", *SHOW], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    pid, visible = json.loads(out)
    assert pid == proc.pid, "the command should replace the wrapper, not run beside it"
    assert visible is None
    assert "no GPU found" in err
    assert not (tmp_path / ".snakemake").exists()


def test_under_slurm_the_command_keeps_the_device_slurm_gave_it(tmp_path):
    env = clean_env(SLURM_JOB_ID="42", CUDA_VISIBLE_DEVICES="1", WSSS_GPU_IDS="5,7")
    proc = run_slot(["--", *SHOW], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[1] == "1"
    assert not (tmp_path / ".snakemake").exists()


def test_the_command_gets_one_id_and_its_exit_status_comes_back(tmp_path):
    env = clean_env(CUDA_VISIBLE_DEVICES="5,7")
    proc = run_slot(["--", *SHOW], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[1] == "5"
    assert "gpu slot: CUDA_VISIBLE_DEVICES=5" in proc.stderr
    assert (tmp_path / "results" / ".gpu-slots" / "gpu-5.lock").exists()
    failing = run_slot(["--", sys.executable, "-c", "raise SystemExit(3)"], env, tmp_path)
    assert failing.returncode == 3
    missing = run_slot(["--", str(tmp_path / "no-such-program")], env, tmp_path)
    assert missing.returncode == 127 and "cannot run" in missing.stderr


def test_a_killed_holder_frees_its_slot(tmp_path):
    env = clean_env(WSSS_GPU_IDS="5", WSSS_GPU_LOCK_DIR=str(tmp_path / "locks"))
    holder = subprocess.Popen([*SLOT, "--", sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(3600)"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready", holder.stderr.read()
        busy = run_slot(["--timeout", "0.5", "--", "true"], env, tmp_path)
        assert busy.returncode == 75 and "giving up" in busy.stderr
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=600)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdout.close()
        holder.stderr.close()
    freed = run_slot(["--timeout", "5", "--", *SHOW], env, tmp_path)
    assert freed.returncode == 0, freed.stderr
    assert json.loads(freed.stdout)[1] == "5"


# Under Snakemake: four GPU jobs, two GPU ids.

RECORD = """\
import json, os, sys, time
start = time.time()
time.sleep(3.0)  # long enough that two jobs started together overlap on a busy machine
record = {"start": start, "end": time.time(), "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}
open(sys.argv[1], "w").write(json.dumps(record))
"""


def write_gpu_workflow(directory: Path, rules=("a", "b", "c", "d")):
    (directory / "record.py").write_text(RECORD)
    text = "rule all:\n    input: " + ", ".join(f'"rec/{name}.json"' for name in rules) + "\n"
    for name in rules:
        text += textwrap.dedent(f"""
            rule gpu_{name}:
                output: "rec/{name}.json"
                resources: gpu=1
                shell: "python -m wsss_steps.gpu_slot -- python record.py {{output}}"
            """)
    (directory / "Snakefile").write_text(text)


def overlaps(a, b):
    return a["start"] < b["end"] and b["start"] < a["end"]


def most_at_once(records):
    """The largest number of records running at the same moment."""
    return max(sum(r["start"] <= t["start"] < r["end"] for r in records) for t in records)


@pytest.mark.parametrize("gpus", [2, 4], ids=["snakemake-caps-at-2", "locks-cap-at-2"])
def test_snakemake_gpu_jobs_never_share_a_gpu(tmp_path, gpus):
    write_gpu_workflow(tmp_path)
    env = clean_env(WSSS_GPU_IDS="5,7", CUDA_VISIBLE_DEVICES="5,7")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "4", "--resources", f"gpu={gpus}"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:]
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "rec").glob("*.json"))]
    assert len(records) == 4
    assert {r["gpu"] for r in records} == {"5", "7"}
    assert most_at_once(records) <= 2, records
    for i, a in enumerate(records):
        for b in records[i + 1:]:
            assert not (overlaps(a, b) and a["gpu"] == b["gpu"]), (a, b)


# What a stage does with the device it got.

def test_a_stage_asked_for_cuda_without_one_stops_with_one_line(tmp_path):
    env = clean_env(WSSS_DEVICE="cuda", CUDA_VISIBLE_DEVICES="")
    classifier = json.dumps(yaml.safe_load(TINY.read_text())["classifier"])  # settings that parse: the device fails
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.train_classifier", "--dataset",
                           '{"root": "none", "classes": ["background", "a"]}', "--params", classifier,
                           "--backbone", '{"name": "tiny"}', "--split", "train", "--out", str(tmp_path / "w.h5")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    assert "no CUDA device (CUDA_VISIBLE_DEVICES=)" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "w.h5").exists()
