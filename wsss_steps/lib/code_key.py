"""The code a stage runs, as part of its cache key: a digest of the package modules its entry point imports.

Snakemake reruns a rule when its params change; a rule's ``code`` param is ``stage_code(<stage>)``, so editing
a module that a stage imports (directly or through other package modules, lazy imports included) reruns that
stage and what is made from it, and editing one it never imports reruns nothing. The digest covers each file's
bytes and its path inside the package, and the package's ``__init__.py`` (the version).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent


def _module_file(root: Path, parts: list[str]) -> Path | None:
    """The file of the package module ``parts`` (a.b -> a/b.py or a/b/__init__.py) under ``root``, or None."""
    base = root.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=None)
def _imports(root: Path, path: Path) -> frozenset[Path]:
    """The package files that the module at ``path`` imports anywhere in its body (relative or ``wsss_steps.``)."""
    here = list(path.relative_to(root).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == root.name]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                module = parent + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == root.name:
                module = node.module.split(".")[1:]
            else:
                continue
            targets = [module] + [module + [a.name] for a in node.names]
        else:
            continue
        for parts in targets:
            for i in range(len(parts) + 1):  # a.b.c also imports the packages a and a.b
                target = _module_file(root, parts[:i])
                if target is not None:
                    found.add(target)
    return frozenset(found)


def module_closure(module: str, root: Path = PACKAGE) -> list[Path]:
    """Every package file that ``python -m <package>.<module>`` can import, the module itself and __init__ included."""
    start = _module_file(root, module.split("."))
    if start is None:
        raise ValueError(f"no module {module!r} in {root}")
    seen, todo = {root / "__init__.py"}, [start]
    while todo:
        path = todo.pop()
        if path in seen and path != start:
            continue
        seen.add(path)
        todo.extend(p for p in _imports(root, path) if p not in seen)
    return sorted(seen)


@functools.lru_cache(maxsize=None)
def stage_code(module: str, root: Path = PACKAGE) -> str:
    """sha256 (16 hex digits) over the path and bytes of every file of ``module_closure``: the stage's code key."""
    digest = hashlib.sha256()
    for path in module_closure(module, root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
