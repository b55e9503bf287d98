"""A stage's code key: the digest of the package files its entry point imports, so an edit reruns what it touches."""

from pathlib import Path

from wsss_steps.lib.code_key import PACKAGE, module_closure, stage_code


def _package(root: Path) -> Path:
    pkg = root / "pkg"
    (pkg / "lib").mkdir(parents=True)
    (pkg / "__init__.py").write_text('__version__ = "1"\n')
    (pkg / "lib" / "__init__.py").write_text("")
    (pkg / "lib" / "maths.py").write_text("def f():\n    return 1\n")
    (pkg / "lib" / "unused.py").write_text("X = 1\n")
    (pkg / "helper.py").write_text("from .lib import maths\n")
    (pkg / "stage.py").write_text("import json\n\ndef main():\n    from . import helper  # lazy\n    return helper\n")
    (pkg / "other.py").write_text("from pkg.lib.unused import X\n")
    return pkg


def test_the_closure_follows_relative_absolute_and_lazy_imports(tmp_path):
    pkg = _package(tmp_path)
    names = {str(p.relative_to(pkg)) for p in module_closure("stage", pkg)}
    assert names == {"__init__.py", "stage.py", "helper.py", "lib/__init__.py", "lib/maths.py"}
    assert {str(p.relative_to(pkg)) for p in module_closure("other", pkg)} == {
        "__init__.py", "other.py", "lib/__init__.py", "lib/unused.py"}


def test_an_edit_changes_the_key_of_the_stages_that_import_it_only(tmp_path):
    pkg = _package(tmp_path)
    before = stage_code.__wrapped__("stage", pkg), stage_code.__wrapped__("other", pkg)
    (pkg / "lib" / "maths.py").write_text("def f():\n    return 2\n")
    after = stage_code.__wrapped__("stage", pkg), stage_code.__wrapped__("other", pkg)
    assert after[0] != before[0] and after[1] == before[1]
    (pkg / "__init__.py").write_text('__version__ = "2"\n')  # the version is in every key
    assert stage_code.__wrapped__("other", pkg) != after[1]


def test_affinitynet_is_in_the_keys_of_the_stages_that_run_it_and_not_of_those_before():
    closure = {stage: {str(p.relative_to(PACKAGE)) for p in module_closure(stage)}
               for stage in ("train_classifier", "make_affinity_labels", "train_affinity", "random_walk")}
    assert "nets/affinity.py" in closure["train_affinity"] and "nets/affinity.py" in closure["random_walk"]
    assert "nets/affinity.py" not in closure["train_classifier"] | closure["make_affinity_labels"]
    assert "methods/puzzle_cam.py" in closure["train_classifier"]
