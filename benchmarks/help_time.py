"""Benchmark: how long each command takes to answer ``--help``, against starting Python and importing PyTorch.

``python -m wsss_steps.<command> --help`` answers from ``wsss_steps/help/<command>.txt`` before the command's module
imports PyTorch (``wsss_steps/__init__.py``). Measured in the same run, each the median of ``--repeats`` fresh
processes: ``python -c pass`` (the floor), ``python -c "import torch"`` (what answering after the imports would
cost) and every command's ``--help``. Printed: seconds per command and PASS / FAIL for the target of under 1 s.
Run from the repository root:

    .venv/bin/python benchmarks/help_time.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seconds(cmd: list[str], repeats: int, env: dict | None = None) -> float:
    """The median wall time of ``repeats`` runs of ``cmd`` (each must succeed), in ``env`` (default: this one's)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    commands = sorted(p.stem for p in (REPO / "wsss_steps").glob("*.py") if p.name != "__init__.py")
    floor = seconds([sys.executable, "-c", "pass"], args.repeats)
    torch = seconds([sys.executable, "-c", "import torch"], args.repeats)
    print(f"python -c pass: {floor:.3f} s; python -c 'import torch': {torch:.3f} s (median of {args.repeats})")
    worst = 0.0
    for command in commands:
        took = seconds([sys.executable, "-m", f"wsss_steps.{command}", "--help"], args.repeats)
        worst = max(worst, took)
        print(f"{command:22s} --help {took:.3f} s")
    print(f"slowest --help {worst:.3f} s: {'PASS' if worst < 1.0 else 'FAIL'} (target under 1 s)")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
