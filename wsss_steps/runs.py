"""Guarding a run's folder: one run name belongs to one dataset."""

from __future__ import annotations

from pathlib import Path

import h5py

from .config import ConfigError


def same_folder(a: str, b: str) -> bool:
    """Whether two spellings of a folder name the same place (trailing '/', './', symlinks, relative or absolute)."""
    return Path(a).resolve() == Path(b).resolve()


def check_run_matches(results: str, dataset: dict):
    """Fail if ``results`` already holds a classifier trained on another dataset root."""
    weights = Path(results) / "classifier.weights.h5"
    if not weights.is_file():
        return
    try:
        with h5py.File(weights, "r") as store:
            root = store.attrs.get("dataset_root")
    except OSError:
        return  # an unreadable file is reported by the stage that reads it
    if root is not None and not same_folder(str(root), str(dataset["root"])):
        raise ConfigError(f"config key 'run_name': {results} holds a run on dataset root '{root}', not "
                          f"'{dataset['root']}'; choose another run_name so the runs do not overwrite each other.")
