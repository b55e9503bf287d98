"""Loading and validating the workflow configuration against ``wsss_steps/schemas/config.schema.yaml``."""

from __future__ import annotations

import argparse
import copy
import json
import re
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"  # installed with the package


TRAINING_SECTIONS = ("classifier", "affinity", "segmentation")  # each gives epochs or steps


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def load_schema(schema_path=SCHEMA_PATH) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where built in: the same dict, 7x faster
    return yaml.load(Path(schema_path).read_text(), Loader=loader)


def _filling_defaults(validator_class):
    """A validator class that also writes each property's schema ``default`` into the instance where it is missing."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, properties, instance, schema):
        if validator.is_type(instance, "object"):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


FillingValidator = _filling_defaults(jsonschema.Draft7Validator)


# Names by which a class list may call its class 0, the background (compared in lower case, without _ - and spaces).
BACKGROUND_NAMES = ("background", "bg", "backgrounds")


def is_background_name(name: str) -> bool:
    """Whether a class name says background: background, bg, _background_, __background__, Background ..."""
    return re.sub(r"[\s_-]+", "", str(name)).lower() in BACKGROUND_NAMES


def check_background_first(classes) -> None:
    """Refuse a class list whose class 0 (mask value 0, which every stage treats as the background) is not the
    background: a background name further down, or an object name first, would swap the classes of every mask."""
    later = [(i, name) for i, name in enumerate(classes) if i > 0 and is_background_name(name)]
    if later:
        index, name = later[0]
        raise ConfigError(f"config key 'dataset.classes': '{name}' is class {index}, but class 0 (mask value 0) is the "
                          f"background; list the background first, e.g. [{name}, "
                          f"{', '.join(n for n in classes if n != name)}].")
    if not is_background_name(classes[0]):
        raise ConfigError(f"config key 'dataset.classes': class 0 (mask value 0) is the background, but the list "
                          f"starts with '{classes[0]}'; put 'background' first, e.g. [background, "
                          f"{', '.join(map(str, classes))}] if the masks mark the background with 0 and "
                          f"'{classes[0]}' with 1.")


# The dataset blocks that make the workflow write the dataset itself, each with the rule that writes it.
DATASET_WRITERS = {"generate": "make_dataset", "coco": "make_coco", "oxford_pet": "make_oxford_pet",
                   "voc_sbd": "make_voc_sbd"}


def validate_config(config: dict, schema_path=SCHEMA_PATH) -> dict:
    """Raise ConfigError naming the first bad key; fill in the schema's defaults and return the config when it is valid.

    Defaults live in the schema only (``default:`` of a property) and are written into ``config`` here,
    so every rule and stage sees the same complete settings.
    """
    schema = load_schema(schema_path)
    validator = FillingValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        error = errors[0]
        where = list(error.absolute_path)
        if error.validator == "additionalProperties":
            unknown = re.findall(r"'([^']+)' (?:was|were) unexpected", error.message)
            names = re.findall(r"'([^']+)'", error.message.split("(")[-1]) if not unknown else unknown
            raise ConfigError(f"config: unknown key '{_key(where + names[:1])}' (check its spelling against wsss_steps/schemas/config.schema.yaml).")
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            raise ConfigError(f"config: missing key '{_key(where + missing[:1])}'.")
        raise ConfigError(f"config key '{_key(where)}': {error.message}.")
    config["dataset"].setdefault("score_split", config["dataset"]["train_split"])  # documented in the schema
    config.setdefault("run_name", "-".join(filter(None, [config["dataset"]["name"], config.get("preset")])))
    writers = [key for key in DATASET_WRITERS if key in config["dataset"]]
    if len(writers) > 1:
        raise ConfigError(f"config key 'dataset.{writers[1]}': dataset.{writers[0]} and dataset.{writers[1]} both "
                          "write the dataset at dataset.root; keep one of them.")
    classes = config["dataset"]["classes"]
    if len(set(classes)) != len(classes):
        raise ConfigError("config key 'dataset.classes': class names must be unique.")
    check_background_first(classes)
    for pair in config["dataset"].get("cooccurrence", []):
        if pair["class"] not in classes:
            raise ConfigError(f"config key 'dataset.cooccurrence': '{pair['class']}' is not a class of dataset.classes.")
    for section in TRAINING_SECTIONS:
        given = [k for k in ("epochs", "steps") if k in config[section]]
        if len(given) != 1:
            what = "both epochs and steps" if given else "neither epochs nor steps"
            raise ConfigError(f"config key '{section}.steps': {section} gives {what}; give one of them.")
    affinity = config["affinity"]
    if affinity.get("method") == "irn" and not affinity["init_from_classifier"] and not config["backbone"].get("weights"):
        raise ConfigError("config key 'affinity.init_from_classifier': IRN freezes its backbone, and without "
                          "backbone.weights it would be random; set it to true (the classifier's backbone) or give "
                          "backbone.weights.")
    labels_cfg = config["affinity_labels"]
    if labels_cfg["alpha_low"] >= labels_cfg["alpha_high"]:
        raise ConfigError("config key 'affinity_labels.alpha_low': must be smaller than affinity_labels.alpha_high.")
    return config


WEIGHTS_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def weights_file(weights) -> Path | None:
    """backbone.weights as a local file whose content the weights manifest records, or None (no weights, or a
    torchvision ResNet-50 weights name, which the stage downloads); a path that is not there or a name torchvision
    does not know raises ConfigError naming the key."""
    if not weights:
        return None
    if Path(weights).is_file():
        return Path(weights)
    if WEIGHTS_NAME.fullmatch(str(weights)):
        from torchvision.models import ResNet50_Weights  # only for a name: it imports PyTorch

        if weights not in ResNet50_Weights.__members__:
            raise ConfigError(f"config key 'backbone.weights': {weights} is not a torchvision ResNet-50 weights name "
                              f"({', '.join(ResNet50_Weights.__members__)}) nor a file (from {Path.cwd()}).")
        return None
    raise ConfigError(f"config key 'backbone.weights': {weights}: file not found (from {Path.cwd()}); give a local "
                      "state-dict file or a torchvision weights name such as IMAGENET1K_V1.")


def method_choices(schema_path=SCHEMA_PATH) -> dict:
    """{section: its ``method`` values} for every config section that selects a method: the one list of methods."""
    sections = load_schema(schema_path)["properties"]
    return {name: tuple(body["properties"]["method"]["enum"]) for name, body in sections.items()
            if "method" in body.get("properties", {})}


def method_blocks(schema_path=SCHEMA_PATH) -> dict:
    """{section: the methods that have a settings block of their own in it}, e.g. classifier: (hide_and_seek, ...)."""
    sections = load_schema(schema_path)["properties"]
    return {name: tuple(m for m in methods if m in sections[name]["properties"])
            for name, methods in method_choices(schema_path).items()}


def load_config(path) -> dict:
    """Read a YAML config file and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.")
    return validate_config(yaml.safe_load(path.read_text()) or {})


def load_params(text: str, section: str | None = None) -> dict:
    """A stage's parameters from a JSON string or from a YAML/JSON file path.

    With ``section`` (a top-level key of the config schema), missing keys get the schema's defaults, so a stage run
    by hand with a partial section behaves as the workflow's validated config does.
    """
    text = text.strip()
    if text.startswith("{"):
        params = json.loads(text)
    else:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"{path}: parameter file not found.")
        params = yaml.safe_load(path.read_text())
    if section is not None:
        params = section_defaults(section, params)
    return params


def settings_arg(section: str | None = None, needs=None):
    """An argparse ``type`` for a settings argument (JSON text or a YAML/JSON file): malformed text, a missing file,
    a value that is not a mapping, or a missing key (``needs``; default the section's required keys) is reported by
    argparse as one sentence naming the argument, exit status 2. The text itself is returned, for ``load_params``."""
    def check(text: str) -> str:
        try:
            params = load_params(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            first = str(exc).splitlines()[0]
            raise argparse.ArgumentTypeError(f"not valid JSON or YAML ({first})") from None
        if not isinstance(params, dict):
            raise argparse.ArgumentTypeError(f"must be a mapping of settings, not {type(params).__name__}")
        filled = section_defaults(section, params) if section else params
        wanted = needs if needs is not None else (load_schema()["properties"][section].get("required", [])
                                                   if section else ())
        missing = [key for key in wanted if key not in filled]
        if missing:
            where = f"the {section} section of the config" if section else "the settings"
            raise argparse.ArgumentTypeError(f"missing key '{missing[0]}' ({where}; see "
                                             f"wsss_steps/schemas/config.schema.yaml)")
        return text

    check.__name__ = f"{section or 'settings'} settings"
    return check


def section_defaults(section: str, params: dict) -> dict:
    """``params`` with the schema's defaults of config section ``section`` filled in, nested blocks included."""
    filled = copy.deepcopy(params)
    for _ in FillingValidator(load_schema()["properties"][section]).iter_errors(filled):
        pass  # validation errors are the workflow's to report (validate_config); here only the defaults matter
    return filled


def crf_settings(text: str) -> dict:
    """The evaluate.crf block from JSON or YAML text (or a file) with the schema's defaults filled in and checked:
    {gt_prob, iterations, gaussian_sxy, ...} as ``crf_labels`` takes them."""
    given = load_params(text)
    if not isinstance(given, dict):
        raise ConfigError(f"the CRF settings must be a mapping of evaluate.crf's keys, not {type(given).__name__}")
    crf = section_defaults("evaluate", {"crf": given})["crf"]
    schema = load_schema()["properties"]["evaluate"]["properties"]["crf"]
    try:
        jsonschema.validate(crf, schema)
    except jsonschema.ValidationError as exc:
        raise ConfigError(f"evaluate.crf: {exc.message}") from None
    return crf
