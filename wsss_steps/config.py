"""Loading and validating the workflow configuration against ``schemas/config.schema.yaml``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def validate_config(config: dict, schema_path=SCHEMA_PATH) -> dict:
    """Raise ConfigError naming the first bad key; return the config unchanged when it is valid."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        error = errors[0]
        where = list(error.absolute_path)
        if error.validator == "additionalProperties":
            unknown = re.findall(r"'([^']+)' (?:was|were) unexpected", error.message)
            names = re.findall(r"'([^']+)'", error.message.split("(")[-1]) if not unknown else unknown
            raise ConfigError(f"config: unknown key '{_key(where + names[:1])}' (check its spelling against schemas/config.schema.yaml).")
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            raise ConfigError(f"config: missing key '{_key(where + missing[:1])}'.")
        raise ConfigError(f"config key '{_key(where)}': {error.message}.")
    classes = config["dataset"]["classes"]
    if len(set(classes)) != len(classes):
        raise ConfigError("config key 'dataset.classes': class names must be unique.")
    aff = config["affinity_labels"]
    if aff["alpha_low"] >= aff["alpha_high"]:
        raise ConfigError("config key 'affinity_labels.alpha_low': must be smaller than affinity_labels.alpha_high.")
    return config


def load_config(path) -> dict:
    """Read a YAML config file and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.")
    return validate_config(yaml.safe_load(path.read_text()) or {})


def load_params(text: str) -> dict:
    """A stage's parameters from a JSON string or from a YAML/JSON file path."""
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    path = Path(text)
    if not path.is_file():
        raise ConfigError(f"{path}: parameter file not found.")
    return yaml.safe_load(path.read_text())
