"""The tiny pipeline through a real one-node SLURM cluster with two fake GPUs (profiles/slurm).

Installs Debian's slurm-wlm and munge when missing (needs root and apt-get; skipped otherwise),
starts munged, slurmctld and slurmd from scripts/slurm_cluster.py, runs the workflow with
`--profile profiles/slurm`, and stops every daemon it started, by PID, however the test ends.
Deselect with `-m "not slurm"`.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, load_script, write_config

pytestmark = pytest.mark.slurm

# Hang guards, not speed limits: only a hung cluster or a stuck job runs this long. The measured times
# are printed with the job table (pytest -s, or -rA, shows them).
INSTALL_TIMEOUT_S = 900
START_TIMEOUT_S = 300
WORKFLOW_TIMEOUT_S = 2400
GPU_RULES = {"train_classifier", "extract_cams", "train_affinity", "random_walk", "train_segmentation"}
CPU_RULES = {"make_dataset", "make_affinity_labels"}
LOCAL_RULES = {"evaluate", "figures", "all"}  # localrules: they run on the submitting machine, not through sbatch


slurm_cluster = load_script("slurm_cluster")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running test cluster; skipped where it cannot be installed, always stopped afterwards."""
    began = time.monotonic()
    if not sys.platform.startswith("linux"):
        pytest.skip("the SLURM test cluster needs Linux")
    if slurm_cluster.missing_programs() and os.geteuid() != 0:
        pytest.skip("SLURM is not installed and installing it (apt-get) needs root")
    if os.geteuid() != 0:
        pytest.skip("the SLURM test cluster runs its daemons as root")
    try:
        slurm_cluster.install(timeout=INSTALL_TIMEOUT_S, log=lambda line: None)
    except slurm_cluster.Unavailable as exc:
        pytest.skip(f"cannot install SLURM here: {exc}")
    installed = time.monotonic()
    started = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm") / "cluster")
    started.began = began
    try:
        try:
            started.start(timeout=START_TIMEOUT_S)
            started.timings = {"install": installed - began, "start": time.monotonic() - installed}
        except slurm_cluster.Unavailable as exc:
            pytest.skip(f"cannot run a SLURM cluster here: {exc}")
        yield started
    finally:
        pids = dict(started.pids)
        started.stop()
        still = {name: pid for name, pid in pids.items() if slurm_cluster.alive(pid)}
        assert not still, f"daemons left running: {still}"


def slot_line(log: Path) -> str:
    """The line wsss_steps.gpu_slot wrote at the top of a stage's log."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("gpu slot: "):
            return line
    return ""


def job_table(rows) -> str:
    header = ("job", "rule", "node", "CUDA_VISIBLE_DEVICES", "state")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)) for r in [header, *rows]]
    return "\n".join(lines)


def job_env(cluster) -> dict:
    """What a user's shell would have: the cluster's clients and the project's python on PATH."""
    env = cluster.env()
    env["PATH"] = os.pathsep.join([str(cluster.root / "bin"), str(Path(sys.executable).parent), env["PATH"]])
    for name in ("WSSS_GPU_IDS", "WSSS_GPU_LOCK_DIR", "CUDA_VISIBLE_DEVICES"):
        env.pop(name, None)
    return env


def test_concurrent_gpu_jobs_get_different_gpus_through_gpu_slot(cluster, tmp_path):
    env = job_env(cluster)
    show = "echo $SLURM_JOB_ID $CUDA_VISIBLE_DEVICES; sleep 3"
    jobs = []
    for index in range(2):
        wrap = f"{sys.executable} -m wsss_steps.gpu_slot -- sh -c '{show}'"
        submit = subprocess.run(["sbatch", "--parsable", "--gpus=1", "--cpus-per-task=1",
                                 "-o", str(tmp_path / f"{index}.out"), "--wrap", wrap],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
        assert submit.returncode == 0, submit.stderr
        jobs.append(submit.stdout.strip().split(";")[0])
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        states = cluster.client("squeue", "--states=all", "-h", "-j", ",".join(jobs), "-o", "%T").stdout.split()
        if len(states) == 2 and all(s in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT") for s in states):
            break
        time.sleep(0.5)
    assert states == ["COMPLETED", "COMPLETED"], f"{states}\n{cluster.log_tails()}"
    seen = [(tmp_path / f"{i}.out").read_text().split("\n") for i in range(2)]
    devices = [next(line for line in lines if line and not line.startswith("gpu slot")).split()[1] for lines in seen]
    assert sorted(devices) == ["0", "1"], seen
    assert all(any(line.startswith("gpu slot: SLURM job") for line in lines) for lines in seen), seen


def test_tiny_pipeline_runs_through_slurm_one_gpu_per_job(cluster, tmp_path, capsys):
    started = time.monotonic()
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = job_env(cluster)
    # The tiny config on a third of its images: every SLURM job costs two Snakemake start-ups and
    # a status-check wait on top of the stage, so the stages' own time is kept small.
    config = write_config(tmp_path / "tiny_slurm.yaml", classifier={"epochs": 1},
                          dataset={"generate": {"image_size": 64, "train_images": 8, "val_images": 4, "seed": 0}})
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(config), "--profile", str(REPO / "profiles" / "slurm"),
           # A test cluster answers at once: ask about job states every few seconds, not every 40.
           "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1"]
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=WORKFLOW_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        queue = cluster.client("squeue", "--states=all", "-o", "%i|%k|%N|%T|%M").stdout
        pytest.fail(f"the workflow did not finish on SLURM within {exc.timeout:.0f} s\n{output[-4000:]}\n"
                    f"squeue:\n{queue}\n{cluster.log_tails()}")
    assert proc.returncode == 0, f"snakemake --profile profiles/slurm failed:\n{proc.stdout[-6000:]}\n" \
                                 f"{cluster.log_tails()}"

    # Every job of the DAG but the localrules was submitted with sbatch (the plugin says so, and SLURM knows it).
    submitted = {}
    for match in re.finditer(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", proc.stdout):
        submitted[match.group(2)] = match.group(1)
    assert set(submitted) == GPU_RULES | CPU_RULES, proc.stdout[-4000:]
    assert not LOCAL_RULES & set(submitted)  # and those are not among them
    queue = cluster.client("squeue", "--states=all", "-h", "-o", "%i|%k|%N|%T")
    assert queue.returncode == 0, queue.stderr
    known = {}
    for line in queue.stdout.splitlines():
        job, comment, node, state = line.split("|")
        known[job] = (comment, node, state)

    rows = []
    results = workdir / "results" / "tiny"
    for rule, job in sorted(submitted.items(), key=lambda item: int(item[1])):
        assert job in known, f"SLURM does not know job {job} ({rule}):\n{queue.stdout}"
        comment, node, state = known[job]
        # the plugin's comment names the rule, and the run for the stage rules (whose wildcard it is)
        assert comment in (f"rule_{rule}", f"rule_{rule}_wildcards_tiny") and state == "COMPLETED", known[job]
        visible = "-"
        if rule in GPU_RULES:
            line = slot_line(results / "logs" / f"{rule}.log")
            match = re.search(r"SLURM job (\d+) .*CUDA_VISIBLE_DEVICES=(\S+),", line)
            assert match, f"{rule}.log does not say which GPU SLURM gave it: {line!r}"
            assert match.group(1) == job, (rule, job, line)
            visible = match.group(2)
            assert visible in {"0", "1"}, f"{rule} saw CUDA_VISIBLE_DEVICES={visible}, not one GPU of its own"
        rows.append((job, rule, node, visible, state))
    assert (results / "summary.json").exists()

    with capsys.disabled():
        times = cluster.timings
        print(f"\nSLURM jobs of the tiny pipeline (measured: installing SLURM {times['install']:.0f} s, starting the "
              f"daemons {times['start']:.0f} s, the workflow {time.monotonic() - started:.0f} s, "
              f"{time.monotonic() - cluster.began:.0f} s since the SLURM tests began):")
        print(job_table(rows))
