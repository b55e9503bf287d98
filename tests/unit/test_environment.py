"""The conda environment pins exactly what the Python project metadata pins."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _pins(requirements):
    pins = {}
    for req in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", req.strip())
        assert match, f"'{req}' is not an exact pin"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def test_environment_yml_pins_the_same_packages_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    expected = _pins(project["project"]["dependencies"] + project["dependency-groups"]["dev"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == expected
    # no path to install: Snakemake creates the rules' environment (--sdm conda) from a copy of the file elsewhere,
    # where "-e ." would not resolve; the jobs import the package from the Snakefile's folder instead
    assert not [p for p in pip_section if p.startswith("-e") or "/" in p or p == "."]
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert project["project"]["requires-python"].startswith(">=3.11") and python == "python=3.11"


def test_lock_file_matches_pins():
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {p["name"].lower(): p["version"] for p in lock["package"] if "version" in p}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    for name, version in _pins(project["project"]["dependencies"]).items():
        assert locked.get(name) == version, name
