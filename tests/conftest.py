import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "tiny_config.yaml"


TIERS = ("unit", "stages", "workflow")  # tests/<tier>/: each test is marked with its folder's name
WORKFLOW_FIXTURES = {"tiny_run", "run_copy"}


def pytest_collection_modifyitems(config, items):
    """Mark each test with its tier (the folder it lives in); a test outside tests/workflow/ that needs the tiny
    workflow run is a collection error, so `pytest -m "not workflow"` never starts Snakemake for a fixture."""
    for item in items:
        tier = item.path.parent.name
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/unit, tests/stages or tests/workflow")
        item.add_marker(getattr(pytest.mark, tier))
        if tier != "workflow" and WORKFLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(f"{item.nodeid} uses the tiny workflow run: move it to tests/workflow/")


BIN = Path(sys.executable).parent  # the project environment's bin folder (.venv/bin)


def not_activated_env() -> dict:
    """The environment of a shell where the project environment is not activated: its bin folder off PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and Path(p).resolve() != BIN.resolve())
    return env


def snakemake(workdir, *args, configfiles=(TINY,), check=True, activated=True):
    """Run the workflow's Snakefile in ``workdir`` and return the completed process (output merged).

    ``activated=False`` runs ``.venv/bin/snakemake`` from a shell where the environment is not activated.
    """
    common = ["-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", *map(str, configfiles), *args]
    if activated:
        cmd = [sys.executable, "-m", "snakemake", *common]
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    else:
        cmd, env = [str(BIN / "snakemake"), *common], not_activated_env()
    proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=3600)  # a hang guard
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-6000:]}")
    return proc


def load_script(name: str):
    """A module from the repository's scripts/ folder (not a package), loaded by path."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arrays(path) -> dict:
    """Every dataset of an HDF5 file (artifact or weights) as {name: array}."""
    import h5py

    out = {}
    with h5py.File(path, "r") as store:
        store.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def planned_jobs(output: str) -> dict:
    """The 'Job stats' table of a dry run as {rule: count}."""
    jobs, inside = {}, False
    for line in output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            inside = True
            continue
        if inside and parts and parts[0] == "total":
            break
        if inside and len(parts) == 2 and parts[1].isdigit():
            jobs[parts[0]] = int(parts[1])
    return jobs


def write_config(path, **sections):
    """The tiny config with some sections updated (one level deep)."""
    config = yaml.safe_load(TINY.read_text())
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    Path(path).write_text(yaml.safe_dump(config))
    return Path(path)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole workflow run once on the tiny config, as a user would: --cores 8 --resources gpu=2, started as
    ``.venv/bin/snakemake`` without activating the environment (every stage must still find its interpreter)."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    proc = snakemake(workdir, "--cores", "8", "--resources", "gpu=2", activated=False)
    return workdir, proc


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A copy of the finished tiny run's working directory (timestamps kept), to rerun or break things in."""
    workdir, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    return copy
