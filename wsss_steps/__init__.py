"""wsss_steps: the stages of a weakly supervised semantic segmentation workflow.

One module per stage (run any of them with ``python -m wsss_steps.<stage> --help``)
plus the library code they share.
"""

import sys as _sys
from pathlib import Path as _Path

__version__ = "0.1.0"


def _answer_help_without_importing() -> None:
    """``python -m wsss_steps.<command> --help`` (or ``--version``) answered from wsss_steps/help/<command>.txt,
    before the command's module imports PyTorch: the text is what its parser prints (scripts/help_texts.py writes
    it, a unit test checks it). Runs only while Python is locating a ``-m`` module (sys.argv[0] is then "-m")."""
    argv = getattr(_sys, "orig_argv", [])
    if _sys.argv[:1] != ["-m"] or "-m" not in argv:
        return
    at = argv.index("-m")
    module, args = (argv[at + 1], argv[at + 2:]) if at + 1 < len(argv) else ("", [])
    if not module.startswith(__name__ + "."):
        return
    args = args[:args.index("--")] if "--" in args else args  # what follows -- is another command's
    text = _Path(__file__).parent / "help" / f"{module.split('.', 1)[1]}.txt"
    if {"-h", "--help"} & set(args) and text.is_file():
        _sys.stdout.write(text.read_text())
        raise SystemExit(0)
    if "--version" in args and text.is_file():
        _sys.stdout.write(f"wsss-steps {__version__}\n")
        raise SystemExit(0)


_answer_help_without_importing()
