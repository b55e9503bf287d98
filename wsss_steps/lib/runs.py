"""Runs: one run name belongs to one dataset, and the runs of one workflow (a method comparison) share the
stages whose settings they share."""

from __future__ import annotations

import copy
from pathlib import Path

import h5py

from .config import ConfigError, method_choices, validate_config


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


# ---------------------------------------------------------------------------------------------------------------
# Many runs in one workflow: the method comparison's runs, and which run's folder holds each of their stages.

def merged(base: dict, overlay: dict) -> dict:
    """``base`` updated by ``overlay`` recursively (as Snakemake merges config files)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# IRN as its authors run it: the boundary head on the frozen ImageNet backbone (jiwoon-ahn/irn net/resnet50_irn.py:
# resnet50(pretrained=True)), the walk with run_sample.py's beta 10, exp_times 8 (t = 2^8) and sem_seg_bg_thres 0.25
# at radius 5 on the stride-4 grid (step/make_sem_seg_labels.py): the comparison's irn row.
IRN_SETTINGS = {"affinity": {"radius": 5, "init_from_classifier": False},
                "random_walk": {"stride": 4, "beta": 10, "t": 256, "background": "threshold", "bg_threshold": 0.25}}


def comparison_methods() -> dict:
    """{method: the settings it sets on top of the run's}: one per non-default ``method`` of a section (from the
    schema, where each list starts with the plain default: the list of methods is written once; ``irn`` with irn's
    own settings, IRN_SETTINGS), and adversarial erasing by its number of rounds (``ae_psl``: the union of three rounds'
    regions with PSL's segmentation loss)."""
    methods = {method: {section: {"method": method}}
               for section, choices in method_choices().items() for method in choices[1:]}
    methods["irn"] = merged(methods["irn"], IRN_SETTINGS)
    return {"cam": {}, **methods,
            "ae_round2": {"adversarial_erasing": {"rounds": 2}},
            "ae_round3": {"adversarial_erasing": {"rounds": 3}},
            "ae_psl": {"adversarial_erasing": {"rounds": 3}, "segmentation": {"method": "psl"}}}


# The pipeline's stages in order and the config sections each reads on top of those of the stages before it.
STAGES = [
    ("train_classifier", ("seed", "dataset", "backbone", "classifier", "health")),
    ("extract_cams", ("cams",)),
    ("make_affinity_labels", ("adversarial_erasing", "affinity_labels")),
    ("train_affinity", ("affinity",)),
    ("random_walk", ("random_walk",)),
    ("train_segmentation", ("segmentation",)),
    ("evaluate", ("evaluate",)),
]
# What every adversarial-erasing round reads besides ``adversarial_erasing`` (whose ``rounds`` no round reads).
ROUND_SECTIONS = ("seed", "dataset", "backbone", "classifier", "cams")


def comparison_runs(config: dict) -> dict:
    """{run name: config} of the run (first) and, for each method of ``compare.methods``, the run
    ``<run_name>-<method>``: its config is the run's with the method's settings on top, validated."""
    methods = comparison_methods()
    runs = {config["run_name"]: config}
    for method in config.get("compare", {}).get("methods", []):
        if method not in methods:
            raise ConfigError(f"config key 'compare.methods': unknown method '{method}'; choose from "
                              f"{', '.join(sorted(methods))}.")
        name = f"{config['run_name']}-{method}"
        settings = methods[method]
        if method == "irn" and not config["backbone"].get("weights"):
            # irn freezes ImageNet features; without pretrained weights the frozen features are the classifier's
            settings = merged(settings, {"affinity": {"init_from_classifier": True}})
        runs[name] = validate_config(merged(config, {**settings, "run_name": name}))
    return runs


def stage_owners(runs: dict) -> dict:
    """{run: {stage: the run whose folder holds that stage's artifacts}}: the first run (in order, the run itself
    at the latest) that agrees with it on every section the stage and the stages before it read; so a stage two
    runs share is computed once, where its settings first appear."""
    owners = {}
    for name, config in runs.items():
        sections = []
        owners[name] = {}
        for stage, reads in STAGES:
            sections += reads
            owners[name][stage] = next(other for other, c in runs.items()
                                       if all(c.get(s) == config.get(s) for s in sections))
    return owners


def round_owner(runs: dict, run: str, r: int) -> str:
    """The run whose folder holds adversarial-erasing round ``r`` of ``run``: the first that erases with the same
    settings (``rounds`` aside), reads the same sections, and has at least ``r`` rounds."""
    config = runs[run]
    erasing = {k: v for k, v in config["adversarial_erasing"].items() if k != "rounds"}
    for other, c in runs.items():
        ae = c.get("adversarial_erasing")
        if (ae and ae["rounds"] >= r and {k: v for k, v in ae.items() if k != "rounds"} == erasing
                and all(c.get(s) == config.get(s) for s in ROUND_SECTIONS)):
            return other
    return run
