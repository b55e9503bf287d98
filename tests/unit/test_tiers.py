"""The test suite's tiers (tests/conftest.py): each test is marked with its folder, and only tests/workflow/ may ask
for the tiny workflow run, so `pytest -m "not workflow"` never starts Snakemake."""

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text()


def suite(pytester, files):
    pytester.makeconftest(CONFTEST)
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_each_test_is_marked_with_its_folder(pytester):
    suite(pytester, {"unit/test_a.py": "def test_a():\n    pass\n",
                     "workflow/test_b.py": "def test_b(tiny_run):\n    pass\n"})
    result = pytester.runpytest("--collect-only", "-q", "-m", "not workflow")
    result.stdout.fnmatch_lines(["unit/test_a.py::test_a", "1/2 tests collected (1 deselected)*"])


def test_a_test_outside_the_workflow_folder_that_needs_the_tiny_run_is_refused(pytester):
    suite(pytester, {"stages/test_c.py": "def test_c(run_copy):\n    pass\n"})
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret != 0
    assert "stages/test_c.py::test_c uses the tiny workflow run: move it to tests/workflow/" in result.stderr.str()


def test_a_test_outside_the_three_folders_is_refused(pytester):
    suite(pytester, {"test_d.py": "def test_d():\n    pass\n"})
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret != 0 and "tests live in tests/unit, tests/stages or tests/workflow" in result.stderr.str()
