"""Every dotted ``wsss_steps.`` name in the README, docs/, docstrings and comments of the code imports (or is an
attribute of a module that does): documentation that names modules which no longer exist is caught here."""

import importlib
import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bwsss_steps(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
SOURCES = ["README.md", "docs/*.md", "wsss_steps/**/*.py", "benchmarks/*.py", "scripts/*.py", "rules/*.smk",
           "Snakefile", "configs/**/*.yaml", "config.yaml", "wsss_steps/schemas/*.yaml"]


def resolves(name: str) -> bool:
    """True when ``name`` is a module of the package, or a chain of attributes of one."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            if importlib.util.find_spec(module) is None:
                continue
        except ModuleNotFoundError:
            continue
        obj = importlib.import_module(module)
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_dotted_package_name_in_docs_and_code_resolves():
    found = {}
    for pattern in SOURCES:
        for path in REPO.glob(pattern):
            for name in NAME.findall(path.read_text()):
                found.setdefault(name.rstrip("."), set()).add(str(path.relative_to(REPO)))
    assert len(found) > 20  # the scan sees the package's names at all
    broken = {name: sorted(where) for name, where in found.items() if not resolves(name)}
    assert not broken, f"names that do not import: {broken}"


def test_no_test_imports_the_tests_folder_as_a_package():
    """CI runs pytest from a fresh clone without the repository on sys.path: ``tests`` is not a package there, so
    helpers are imported as ``conftest`` (the folder pytest puts on the path). Regression: one such import stopped CI
    at collection."""
    pattern = re.compile(r"^\s*(from|import)\s+tests\b", re.MULTILINE)
    offenders = [str(path.relative_to(REPO)) for path in (REPO / "tests").rglob("*.py")
                 if pattern.search(path.read_text())]
    assert not offenders, f"import conftest, not tests.conftest: {offenders}"
