# Shared set-up: config validation, paths, and helpers that turn config sections into
# command-line values. Every stage's hyperparameters reach its rule as `params`, so
# changing one reruns exactly the stages that use it.

import json
import os
import shlex
import sys

sys.path.insert(0, workflow.basedir)

from wsss_steps import __version__ as VERSION
from wsss_steps.config import ConfigError, validate_config
from wsss_steps.runs import check_run_matches

validate_config(config)

RUN = config["run_name"]
DATASET = config["dataset"]
RESULTS = f"results/{RUN}"
LOGS = f"{RESULTS}/logs"
# Training stages save a checkpoint here after every epoch (not a declared output, so Snakemake
# keeps it when a job is killed); the rerun resumes from it and deletes it when done.
CHECKPOINTS = f"{RESULTS}/checkpoints"
LISTS = f"{DATASET['root']}/{DATASET.get('list_dir', 'ImageSets/Segmentation')}"
TRAIN = DATASET["train_split"]
VAL = DATASET["val_split"]
# Every stage runs with the interpreter that runs Snakemake (an activated venv, `uv run`,
# `.venv/bin/snakemake`, conda, a SLURM job), never whatever `python` comes first on PATH. Rules write
# it as {PYTHON}, resolved when the job runs, so the cache key (the unformatted command) stays the same
# across checkouts.
PYTHON = shlex.quote(sys.executable)

check_run_matches(RESULTS, DATASET)

# A dataset on disk is checked for its folders and split lists before any job is planned; the
# images, labels and masks themselves are checked by train_classifier before it trains.
if "generate" in DATASET:
    from wsss_steps.make_dataset import NotOurs, refuse_foreign_root

    try:
        refuse_foreign_root(DATASET["root"])
    except NotOurs as exc:
        raise ConfigError(f"config key 'dataset.generate': {exc}") from None
else:
    from wsss_steps.data import VOCLayout

    _layout = VOCLayout.from_config(DATASET)
    _layout.check_folders()
    for _split in dict.fromkeys([TRAIN, VAL, DATASET.get("score_split", TRAIN)]):
        _layout.ids(_split)

# The device is not a hyperparameter: switching between CPU and GPU must not rerun stages,
# so it reaches the jobs through the environment instead of params.
os.environ.update(WSSS_DEVICE=config["device"])


envvars:
    "WSSS_DEVICE",


def as_arg(value):
    """A config value as one shell-quoted JSON word."""
    return shlex.quote(json.dumps(value, sort_keys=True))


# What the stages read of the dataset; generate (make_dataset's own params) and score_split (evaluate
# only) stay out, so changing them reruns only the rules that use them.
DATASET_ARG = as_arg({k: v for k, v in DATASET.items() if k not in ("generate", "score_split")})
SCORE = DATASET.get("score_split", TRAIN)
BACKBONE_ARG = as_arg(config["backbone"])


def split_list(split):
    return f"{LISTS}/{split}.txt"
