"""Every command line of the package answers --version, and its --help description is a whole paragraph."""

import importlib
from pathlib import Path

import pytest

import wsss_steps

PACKAGE = Path(wsss_steps.__file__).parent
COMMANDS = sorted(p.stem for p in PACKAGE.glob("*.py") if "\ndef main(" in p.read_text())


def test_the_commands_are_found():
    assert {"train_classifier", "random_walk", "evaluate", "compare", "inspect_artifact", "gpu_slot"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_version(command, capsys):
    module = importlib.import_module(f"wsss_steps.{command}")
    with pytest.raises(SystemExit) as stop:
        module.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"wsss-steps {wsss_steps.__version__}"


def test_the_help_texts_are_what_the_parsers_print():
    from conftest import load_script

    assert load_script("help_texts").main(["--check"]) == 0, "run python scripts/help_texts.py"


def test_help_is_answered_without_importing_pytorch():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "wsss_steps.train_classifier", "--help"],
                          capture_output=True, text=True, timeout=600)  # a hang guard
    assert proc.returncode == 0
    assert proc.stdout == (PACKAGE / "help" / "train_classifier.txt").read_text()
    assert "--split SPLIT" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "wsss_steps" in imported and not {"torch", "numpy"} & imported
    # what follows -- belongs to another command (gpu_slot runs it): not answered here
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.gpu_slot", "--", sys.executable, "-c", "print('ran')",
                           "--help"], capture_output=True, text=True, timeout=600, env={"WSSS_GPU_IDS": "",
                                                                                      "PATH": "/usr/bin:/bin"})
    assert proc.stdout.strip().endswith("ran")
