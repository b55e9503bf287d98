"""The import graph of the wsss_steps package: stage-to-stage imports and the graph's depth.

    python scripts/import_graph.py [PACKAGE_DIR]      (default: wsss_steps next to this script)

Reads the modules' source with `ast` (nothing is imported or run). A stage is a module run as
`python -m wsss_steps.<stage>`: every top-level module of the package (the shared code lives in its
subpackages). Prints every import edge inside the package, the stage-to-stage edges, and the depth: the
number of modules on the longest import chain.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path



def module_name(package: Path, path: Path) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(package: Path, path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports (relative or absolute), at any depth of the file."""
    here = module_name(package, path).split(".") if path.name != "__init__.py" else \
        module_name(package, path).split(".") + ["__init__"]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level]
            elif node.module and node.module.split(".")[0] == package.name:
                base = []
                node_module = node.module.split(".", 1)[1] if "." in node.module else ""
                candidates = [f"{node_module}.{a.name}".strip(".") for a in node.names] + [node_module]
                found |= {c for c in candidates if c in modules}
                continue
            else:
                continue
            prefix = ".".join([*base, *(node.module.split(".") if node.module else [])]).strip(".")
            candidates = [f"{prefix}.{a.name}".strip(".") for a in node.names] + [prefix]
            found |= {c for c in candidates if c in modules}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package.name:
                    found |= {alias.name.split(".", 1)[1]} & modules if "." in alias.name else set()
    found.discard(module_name(package, path))
    found.discard("")
    return found


def graph(package: Path) -> dict[str, set[str]]:
    """{module: package modules it imports}, modules named relative to the package ('nets.backbones')."""
    files = {module_name(package, p): p for p in sorted(package.rglob("*.py"))}
    modules = set(files)
    return {name: imports_of(package, path, modules) for name, path in files.items()}


def stages(edges: dict[str, set[str]]) -> set[str]:
    """The stages: the package's top-level modules (not the package itself, not its subpackages)."""
    packages = {m.split(".")[0] for m in edges if "." in m}
    return {m for m in edges if m and "." not in m and m not in packages}


def stage_edges(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    top = stages(edges)
    return sorted((a, b) for a, targets in edges.items() if a in top for b in targets if b in top)


def longest_chain(edges: dict[str, set[str]]) -> list[str]:
    """The longest import chain, as module names (cycles are cut where they close)."""

    @functools.lru_cache(maxsize=None)
    def longest(module: str, seen: frozenset = frozenset()) -> tuple:
        nexts = [m for m in sorted(edges.get(module, ())) if m not in seen and m != ""]
        return (module, *max((longest(m, seen | {module}) for m in nexts), key=len, default=()))

    return list(max((longest(m) for m in sorted(edges)), key=len, default=()))


def depth(edges: dict[str, set[str]]) -> int:
    """Modules on the longest import chain."""
    return len(longest_chain(edges))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    package = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "wsss_steps"
    edges = graph(package)
    for module in sorted(edges):
        if edges[module]:
            print(f"{module} -> {', '.join(sorted(edges[module]))}")
    bad = stage_edges(edges)
    print(f"\nmodules: {len(edges)}, import edges: {sum(map(len, edges.values()))}")
    print(f"stage-to-stage imports: {len(bad)}" + "".join(f"\n  {a} -> {b}" for a, b in bad))
    chain = longest_chain(edges)
    print(f"depth of the import graph (modules on the longest chain): {len(chain)}: {' -> '.join(chain)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
