"""The configuration reference, docs/config-reference.md, generated from the schema so it cannot drift.

Every key of wsss_steps/schemas/config.schema.yaml, section by section (nested blocks as dotted keys), with its
type or allowed values, its default where the schema writes one, and its description:

    python scripts/config_reference.py            # writes docs/config-reference.md
    python scripts/config_reference.py --check    # exit 1 when the page is not what the schema gives
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "wsss_steps" / "schemas" / "config.schema.yaml"
PAGE = REPO / "docs" / "config-reference.md"


def kind(spec: dict) -> str:
    """The key's type or its allowed values, as the page shows them."""
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    if "enum" in spec:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in spec["enum"])
    if "oneOf" in spec or "anyOf" in spec:
        return " or ".join(kind(s) for s in spec.get("oneOf", spec.get("anyOf")))
    if spec.get("type") == "array" and isinstance(spec.get("items"), dict):
        return f"list of {kind(spec['items'])}"
    t = spec.get("type", "")
    return " or ".join(t) if isinstance(t, list) else (t or "any")


def cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def rows(properties: dict, prefix: str, required=()):
    """(key, kind, default, description) for each property, nested objects after their own row."""
    for name, spec in properties.items():
        key = f"{prefix}{name}"
        default = f"`{json.dumps(spec['default'])}`" if "default" in spec else ("required" if name in required else "")
        yield key, kind(spec), default, cell(spec.get("description", ""))
        if spec.get("type") == "object" and "properties" in spec:
            yield from rows(spec["properties"], f"{key}.", spec.get("required", ()))


def page(schema: dict) -> str:
    lines = ["# Configuration reference", "",
             "Generated from `wsss_steps/schemas/config.schema.yaml` by `python scripts/config_reference.py`; do not "
             "edit by hand. Every key of a config file, section by section: its type or allowed values, its default "
             "where the schema writes one (it is filled in before any job runs), and what it does. How the files "
             "combine and what reruns when a key changes: [configuration.md](configuration.md).", ""]
    top = schema["properties"]
    plain = [k for k, v in top.items() if v.get("type") != "object" or "properties" not in v]
    if plain:
        lines += ["## Top level", "", "| key | type | default | description |", "|---|---|---|---|"]
        lines += [f"| `{k}` | {t} | {d} | {s} |" for k, t, d, s in rows({k: top[k] for k in plain}, "",
                                                                          schema.get("required", ()))]
        lines.append("")
    for name, spec in top.items():
        if name in plain:
            continue
        lines += [f"## {name}", "", cell(spec.get("description", "")), "",
                  "| key | type | default | description |", "|---|---|---|---|"]
        lines += [f"| `{k}` | {t} | {d} | {s} |" for k, t, d, s in rows(spec["properties"], f"{name}.",
                                                                          spec.get("required", ()))]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/config_reference.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page differs from what the schema gives")
    args = parser.parse_args(argv)
    text = page(yaml.safe_load(SCHEMA.read_text()))
    if args.check:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print(f"{PAGE.relative_to(REPO)} is not what the schema gives: run python scripts/config_reference.py",
                  file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
