"""Benchmark: what a fresh process costs before it does any work, with the installed packages' bytecode and without.

Every stage is a process of its own and every test of the workflow starts Snakemake, so start-up is paid hundreds of
times by the test suite and once per job by a run. Where Python writes no bytecode (``PYTHONDONTWRITEBYTECODE``, as
in many container images and on CI here), a process whose environment was not compiled at install time
(``uv run --compile-bytecode``, the README's set-up) compiles PyTorch's sources again each time. Measured in the same
run, each the median of ``--repeats`` fresh processes:

- baseline: ``PYTHONDONTWRITEBYTECODE=1`` with ``PYTHONPYCACHEPREFIX`` set to an empty folder, so no compiled file is
  found (what every process cost before the set-up compiled the environment);
- compiled: the environment as installed (needs ``uv sync --compile-bytecode``; the script says when it is not).

for ``import torch``, importing a training stage, and ``snakemake -n`` on the tests' tiny config (planning: it
imports no PyTorch). Run from the repository root:

    .venv/bin/python benchmarks/start_up.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seconds(cmd: list[str], env: dict, repeats: int, cwd) -> float:
    """The median wall time of ``repeats`` runs of ``cmd`` (each must succeed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return statistics.median(times)


def compiled() -> bool:
    """True when PyTorch's package folder holds its compiled bytecode."""
    import importlib.util

    origin = Path(importlib.util.find_spec("torch").origin)
    return any((origin.parent / "__pycache__").glob("__init__.*.pyc"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="start_up_"))
    plan = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
            "--configfile", str(REPO / "tests" / "tiny_config.yaml"), "-n"]
    commands = {"import torch": [sys.executable, "-c", "import torch"],
                "import a training stage": [sys.executable, "-c", "import wsss_steps.train_classifier"],
                "snakemake -n (tiny config)": plan}
    empty = Path(tempfile.mkdtemp(prefix="no_bytecode_"))
    baseline = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=str(empty))
    installed = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    installed.pop("PYTHONPYCACHEPREFIX", None)
    if not compiled():
        print("the environment holds no compiled bytecode: run .uv/bin/uv sync --frozen --compile-bytecode first")
        return 1
    print(f"median of {args.repeats} fresh processes, seconds: baseline (no bytecode) / compiled / ratio")
    for name, cmd in commands.items():
        before, after = seconds(cmd, baseline, args.repeats, REPO), seconds(cmd, installed, args.repeats, REPO)
        print(f"{name:28s} {before:6.2f} / {after:6.2f} / {before / after:4.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
