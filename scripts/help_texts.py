"""The --help text of every command of the package, written to wsss_steps/help/<command>.txt.

``python -m wsss_steps.<command> --help`` prints that file without importing PyTorch (the package's
``__init__`` answers it), so a user reading the options waits well under a second instead of the seconds an
import of PyTorch takes. The files are made from the commands' own parsers, 80 columns wide:

    python scripts/help_texts.py            # writes wsss_steps/help/*.txt
    python scripts/help_texts.py --check    # exit 1 when a file is not what its parser prints

``tests/unit/test_command_lines.py`` runs the check, so a parser changed without this script fails the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "wsss_steps"
FOLDER = PACKAGE / "help"
WIDTH = "80"


def commands() -> list[str]:
    """The package's modules with a ``main``: its command lines."""
    return sorted(p.stem for p in PACKAGE.glob("*.py") if "\ndef main(" in p.read_text())


def help_text(command: str) -> str:
    """What ``main(["--help"])`` of the command prints, at WIDTH columns."""
    sys.path.insert(0, str(REPO))
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    out = io.StringIO()
    try:
        module = importlib.import_module(f"wsss_steps.{command}")
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            module.main(["--help"])
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return out.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/help_texts.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a help file differs from its parser's text")
    args = parser.parse_args(argv)
    stale = []
    names = commands()
    for command in names:
        path, text = FOLDER / f"{command}.txt", help_text(command)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(command)
        else:
            FOLDER.mkdir(exist_ok=True)
            path.write_text(text)
    # a help text of a command that no longer exists: only files this script wrote (they start with the usage line)
    extra = sorted(p.stem for p in FOLDER.glob("*.txt") if p.stem not in names
                   and p.read_text().startswith(f"usage: python -m wsss_steps.{p.stem} "))
    if args.check and (stale or extra):
        print(f"stale help texts: {stale + extra}; run python scripts/help_texts.py", file=sys.stderr)
        return 1
    if not args.check:
        for name in extra:
            (FOLDER / f"{name}.txt").unlink()
        print(f"wrote {len(names)} help texts to {FOLDER.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
