# Shared set-up: config validation, paths, and helpers that turn config sections into
# command-line values. Every stage's hyperparameters reach its rule as `params`, so
# changing one reruns exactly the stages that use it.

import json
import os
import shlex
import sys

sys.path.insert(0, workflow.basedir)

from wsss_steps.config import validate_config
from wsss_steps.runs import check_run_matches

validate_config(config)

RUN = config["run_name"]
DATASET = config["dataset"]
RESULTS = f"results/{RUN}"
LOGS = f"{RESULTS}/logs"
LISTS = f"{DATASET['root']}/ImageSets/Segmentation"
TRAIN = DATASET["train_split"]
VAL = DATASET["val_split"]

check_run_matches(RESULTS, DATASET)

# The device is not a hyperparameter: switching between CPU and GPU must not rerun stages,
# so it reaches the jobs through the environment instead of params.
os.environ.update(WSSS_DEVICE=config["device"])


envvars:
    "WSSS_DEVICE",


def as_arg(value):
    """A config value as one shell-quoted JSON word."""
    return shlex.quote(json.dumps(value, sort_keys=True))


DATASET_ARG = as_arg({k: v for k, v in DATASET.items() if k != "generate"})
BACKBONE_ARG = as_arg(config["backbone"])


def split_list(split):
    return f"{LISTS}/{split}.txt"
