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
import sys
import tempfile
from pathlib import Path

from help_time import seconds  # this folder is on sys.path when a benchmark runs as a script

REPO = Path(__file__).resolve().parents[1]


def compiled() -> bool:
    """True when PyTorch's package folder holds its compiled bytecode."""
    import importlib.util

    origin = Path(importlib.util.find_spec("torch").origin)
    return any((origin.parent / "__pycache__").glob("__init__.*.pyc"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    work = tempfile.TemporaryDirectory(prefix="start_up_")
    empty = tempfile.TemporaryDirectory(prefix="no_bytecode_")
    plan = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", work.name,
            "--configfile", str(REPO / "tests" / "tiny_config.yaml"), "-n"]
    commands = {"import torch": [sys.executable, "-c", "import torch"],
                "import a training stage": [sys.executable, "-c", "import wsss_steps.train_classifier"],
                "snakemake -n (tiny config)": plan}
    baseline = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=empty.name)
    installed = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    installed.pop("PYTHONPYCACHEPREFIX", None)
    if not compiled():
        print("the environment holds no compiled bytecode: run .uv/bin/uv sync --frozen --compile-bytecode first")
        return 1
    print(f"median of {args.repeats} fresh processes, seconds: baseline (no bytecode) / compiled / ratio")
    for name, cmd in commands.items():
        before, after = seconds(cmd, args.repeats, baseline), seconds(cmd, args.repeats, installed)
        print(f"{name:28s} {before:6.2f} / {after:6.2f} / {before / after:4.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
