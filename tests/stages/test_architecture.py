"""The shape of the house: no stage imports another, the package installs from a wheel, the rules lint clean."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN, REPO, load_script


import_graph = load_script("import_graph")


def test_no_stage_imports_another_stage_and_the_top_level_holds_only_commands():
    edges = import_graph.graph(REPO / "wsss_steps")
    stages = import_graph.stages(edges)
    assert {"train_classifier", "extract_cams", "random_walk", "diagnose", "evaluate", "compare"} <= stages
    assert import_graph.stage_edges(edges) == []
    # every top-level module is a command: it has a main and answers --help from its help text
    for stage in stages:
        text = (REPO / "wsss_steps" / f"{stage}.py").read_text()
        assert "def main(" in text and 'if __name__ == "__main__":' in text, f"{stage} is not a command"
        assert (REPO / "wsss_steps" / "help" / f"{stage}.txt").is_file(), stage
    # the package docstring lists every command
    doc = __import__("wsss_steps").__doc__
    assert all(stage in doc for stage in stages), sorted(s for s in stages if s not in doc)


def test_no_test_imports_a_method_from_a_stage():
    """Tests import a method's functions from wsss_steps.methods, never through the stage that uses them."""
    import ast

    edges = import_graph.graph(REPO / "wsss_steps")
    stages = import_graph.stages(edges)
    method_names = set()
    for module in edges:
        if module.startswith("methods."):
            tree = ast.parse((REPO / "wsss_steps" / (module.replace(".", "/") + ".py")).read_text())
            method_names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    offenders = []
    for path in (REPO / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wsss_steps."):
                target = node.module.split(".", 1)[1]
                if target in stages:
                    offenders += [f"{path.name}: {a.name} from {node.module}" for a in node.names
                                  if a.name in method_names]
    assert offenders == []


def test_the_import_check_sees_a_stage_importing_a_stage(tmp_path):
    """The checker itself: a relative, an absolute and a nested import of a stage are all found."""
    package = tmp_path / "wsss_steps"
    (package / "methods").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "methods" / "__init__.py").write_text("")
    (package / "methods" / "cam.py").write_text("X = 1\n")
    (package / "train_classifier.py").write_text("from .methods.cam import X\n")
    (package / "extract_cams.py").write_text("from .train_classifier import X\n")
    (package / "random_walk.py").write_text("import wsss_steps.train_classifier\n")
    (package / "evaluate.py").write_text("def f():\n    from wsss_steps import extract_cams\n")
    edges = import_graph.graph(package)
    assert import_graph.stage_edges(edges) == [("evaluate", "extract_cams"), ("extract_cams", "train_classifier"),
                                               ("random_walk", "train_classifier")]
    assert import_graph.depth(edges) == 4  # evaluate -> extract_cams -> train_classifier -> methods.cam


def test_methods_read_no_files_and_parse_no_arguments():
    for path in (REPO / "wsss_steps" / "methods").glob("*.py"):
        text = path.read_text()
        for word in ("argparse", "h5py", "open(", "..lib"):
            assert word not in text, f"{path.name} uses {word}: methods are pure functions"


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800, **kwargs)  # a hang guard


def test_a_wheel_installed_outside_the_repository_validates_the_config_and_runs_a_stage(tmp_path):
    uv = shutil.which("uv") or (str(REPO / ".uv" / "bin" / "uv") if (REPO / ".uv" / "bin" / "uv").exists() else None)
    if uv is None:
        pytest.skip("uv is neither on PATH nor in .uv/ (the README's set-up installs it there)")
    dist = tmp_path / "dist"
    built = run([uv, "build", "--wheel", "--out-dir", str(dist), str(REPO)], cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(dist.glob("wsss_steps-*.whl"))
    venv = tmp_path / "venv"
    made = run([uv, "venv", "--python", sys.executable, str(venv)], cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    python = venv / "bin" / "python"
    env = dict(os.environ, VIRTUAL_ENV=str(venv))
    installed = run([uv, "pip", "install", "--python", str(python), str(wheel)], cwd=tmp_path, env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(REPO / "config.yaml", outside / "config.yaml")
    check = ("import wsss_steps, wsss_steps.lib.config as c; from pathlib import Path; "
             "assert 'site-packages' in wsss_steps.__file__, wsss_steps.__file__; "
             "cfg = c.load_config('config.yaml'); print(cfg['classifier']['momentum'], c.SCHEMA_PATH.is_file())")
    proc = run([str(python), "-c", check], cwd=outside, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["0.9", "True"]
    helped = run([str(python), "-m", "wsss_steps.random_walk", "--help"], cwd=outside, env=env)
    assert helped.returncode == 0 and "--affinity-params" in helped.stdout, helped.stderr[-3000:]


SETUP = "python3 -m venv .uv && .uv/bin/pip install uv==0.13.8 && .uv/bin/uv run --frozen --compile-bytecode "


def test_the_readme_s_set_up_works_from_a_system_python_that_refuses_pip_install(tmp_path):
    """PEP 668 (Debian 12, Ubuntu 24.04): `python3 -m pip install` is refused outside a venv, so the README's two
    commands and CI's start by giving uv a venv of its own; that start is run here with the system's python3."""
    readme = (REPO / "README.md").read_text()
    assert f"{SETUP}snakemake --cores 2" in readme and f"{SETUP}pytest" in readme
    assert f"{SETUP}pytest" in (REPO / ".ci" / "run").read_text()  # CI runs the README's test command
    system = Path("/usr/bin/python3")
    if not system.exists():
        pytest.skip("no system python3 at /usr/bin/python3")
    made = run([str(system), "-m", "venv", ".uv"], cwd=tmp_path)
    if made.returncode:
        pytest.skip(f"the system python3 has no venv module (Debian: python3-venv): {made.stderr[-300:]}")
    installed = run([str(tmp_path / ".uv" / "bin" / "pip"), "install", "--quiet", "uv==0.13.8"], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    version = run([str(tmp_path / ".uv" / "bin" / "uv"), "--version"], cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("uv 0.13.8"), version.stdout + version.stderr


def test_snakemake_lint_reports_nothing():
    proc = run([str(BIN / "snakemake"), "--lint"], cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr, \
        proc.stdout[-3000:] + proc.stderr[-3000:]


def test_snakefmt_check_passes():
    snakefmt = BIN / "snakefmt"
    if not snakefmt.exists():
        pytest.skip("snakefmt is not installed in this environment (it is in the dev group of pyproject.toml)")
    proc = run([str(snakefmt), "--check", "."], cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_planning_the_workflow_imports_no_pytorch(tmp_path):
    """Every Snakemake invocation plans first (and, on a cluster, every job); importing PyTorch there cost about 2 s
    each (regression: common.smk took the sweep's point names from the sweep stage, which imports it)."""
    plan = ("import runpy, sys\n"
            "sys.argv = ['snakemake', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('snakemake', run_name='__main__')\n"
            "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    proc = run([sys.executable, "-c", plan, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                "--configfile", str(REPO / "tests" / "tiny_config.yaml"), "-n", "all", "sweep_walk", "sweep_cams"],
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["False", "False"], "planning imported torch or matplotlib"
