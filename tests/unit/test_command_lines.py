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
