# Shared set-up: config validation, the paths of a run as small named functions, the one shell
# shape every stage rule shares, and helpers that turn config sections into command-line values.
# Every stage's hyperparameters reach its rule as `params`, so changing one reruns exactly the
# stages that use it.

import hashlib
import json
import os
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from wsss_steps.code_key import stage_code
from wsss_steps.config import ConfigError, method_blocks, validate_config
from wsss_steps.data.manifest import write_manifests
from wsss_steps.sweep import cam_point_names, cam_point_settings, point_names, point_settings
from wsss_steps.runs import check_run_matches

validate_config(config)  # also fills in the schema's defaults

RUN = config["run_name"]
COMPARE_RUN = f"{RUN}-compare"  # the folder of `python -m wsss_steps.compare`'s table
DATASET = config["dataset"]
TRAIN = DATASET["train_split"]
VAL = DATASET["val_split"]
SCORE = DATASET["score_split"]
# Every stage runs with the interpreter that runs Snakemake (an activated venv, `uv run`,
# `.venv/bin/snakemake`, conda, a SLURM job), never whatever `python3` comes first on the user's PATH:
# its folder goes first on the PATH the jobs inherit (sbatch --export=ALL passes it on). The commands
# themselves say plain `python3`, so they and the cache keys are the same in every checkout.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


def run_dir(run=RUN):
    """Where every artifact of a run goes."""
    return f"results/{run}"


def artifact(name, run=RUN):
    """An artifact of a run, e.g. artifact("cams_train.h5")."""
    return f"{run_dir(run)}/{name}"


def log_of(rule, run=RUN):
    """The log file of a rule's job in a run."""
    return f"{run_dir(run)}/logs/{rule}.log"


def checkpoint_of(rule, run=RUN):
    """Where a training stage saves its per-epoch checkpoint: not a declared output, so Snakemake keeps
    it when a job is killed; the rerun resumes from it and deletes it when done."""
    return f"{run_dir(run)}/checkpoints/{rule}.h5"


# health.stop_on (absent: [classifier]): a class the classifier has still not learnt when its training ends stops the
# run in train_classifier (no weights written, its checkpoint kept) instead of warning
STOP_UNLEARNT = "--stop-unlearnt" if "classifier" in config.get("health", {}).get("stop_on", ["classifier"]) else ""


def split_list(split, dataset=DATASET):
    """The list file of a split of the dataset."""
    return f"{dataset['root']}/{dataset.get('list_dir', 'ImageSets/Segmentation')}/{split}.txt"


def stage_shell(stage, args, gpu=True, processes=1):
    """The shell command of a rule: `python -m wsss_steps.<stage> <args>` with its output in {log}; a GPU
    stage runs under wsss_steps.gpu_slot, which gives the job a GPU of its own (``processes`` GPUs, one per
    data-parallel process that torchrun starts, when more than one)."""
    if MANIFESTS and stage not in ("make_dataset", "make_coco", "predict", "export"):
        args += " --manifests " + " ".join(str(path) for path in MANIFESTS.values())
    if processes == 1:
        slot = "python3 -m wsss_steps.gpu_slot -- " if gpu else ""
        return f"{slot}python3 -m wsss_steps.{stage} {args} > {{log}} 2>&1"
    return (
        f"python3 -m wsss_steps.gpu_slot --gpus {processes} -- python3 -m torch.distributed.run --standalone"
        f" --nproc_per_node {processes} -m wsss_steps.{stage} {args} > {{log}} 2>&1"
    )


# Data-parallel processes (and GPUs) per training job: training_gpus, absent = 1 (wsss_steps/distributed.py).
TRAINING_GPUS = config.get("training_gpus", 1)


check_run_matches(run_dir(), DATASET)

# A dataset on disk is checked for its folders and split lists before any job is planned; the
# images, labels and masks themselves are checked by train_classifier before it trains. A dataset the
# workflow writes (generate, coco) may not exist yet: only a root holding someone else's files stops it.
if "generate" in DATASET or "coco" in DATASET:
    from wsss_steps.data.synthetic import NotOurs

    _writer = "coco" if "coco" in DATASET else "generate"
    if _writer == "coco":
        from wsss_steps.data.coco import refuse_foreign_root
    else:
        from wsss_steps.data.synthetic import refuse_foreign_root

    try:
        refuse_foreign_root(DATASET["root"])
    except NotOurs as exc:
        raise ConfigError(f"config key 'dataset.{_writer}': {exc}") from None
else:
    from wsss_steps.data import VOCLayout

    _layout = VOCLayout.from_config(DATASET)
    _layout.check_folders()
    for _split in dict.fromkeys([TRAIN, VAL, SCORE]):
        _layout.ids(_split)
    # A val split of photos without masks is decided here, before any training: the segmentation network is trained
    # and predicts on it, evaluate scores what has masks and says that val has none (train_classifier likewise leaves
    # images without labels out of its health check).
    if not any(_layout.has_mask(_id) for _id in _layout.ids(VAL)):
        print(
            f"Note: no image of dataset.val_split '{VAL}' has a mask in {_layout.root / _layout.mask_dir}: the "
            "segmentation network is trained and predicts on it, but is not scored.",
            file=sys.stderr,
        )

# What the stages read of the dataset and the backbone weights, as content manifests (wsss_steps/data/manifest.py):
# rewritten only when their content changes, so a rule that declares one reruns when what it reads changed and a
# touched file reruns nothing. A dataset the workflow writes itself (generate, coco) has none: its split lists are
# the outputs of the rule that writes it.
MANIFEST_DIR = f"results/manifests/{DATASET['name']}-{hashlib.sha256(str(Path(DATASET['root']).resolve()).encode()).hexdigest()[:8]}"


def weights_file(weights):
    """backbone.weights as a local file whose content the weights manifest records, or None (no weights, or a
    torchvision weights name, which the stage downloads); a path that is not there stops planning, naming the key."""
    if not weights:
        return None
    if Path(weights).is_file():
        return Path(weights)
    if re.fullmatch(r"[A-Z][A-Z0-9_]*", str(weights)):
        return None
    raise ConfigError(
        f"config key 'backbone.weights': {weights}: file not found (from {Path.cwd()}); give a local state-dict "
        "file or a torchvision weights name such as IMAGENET1K_V1."
    )


WEIGHTS_FILE = weights_file(config["backbone"].get("weights"))
if "generate" in DATASET or "coco" in DATASET:
    MANIFESTS = write_manifests(MANIFEST_DIR, None, (), WEIGHTS_FILE) if WEIGHTS_FILE else {}
else:
    MANIFESTS = write_manifests(
        MANIFEST_DIR,
        _layout,
        [TRAIN, VAL, SCORE],
        WEIGHTS_FILE,
        saliency=config["classifier"].get("method") == "eps",
    )


def manifest(name):
    """The manifest ``name`` (images, labels, masks, weights, saliency) as a rule input, [] where there is none."""
    return str(MANIFESTS[name]) if name in MANIFESTS else []


# device: cuda where PyTorch sees no GPU stops at planning when the jobs run on this machine (a cluster's
# login node may have no GPU while the nodes the jobs go to do).
if config["device"] == "cuda" and workflow.local_exec and not workflow.remote_exec:
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "config key 'device': cuda, but PyTorch sees no CUDA device on this machine (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}); set device: auto or cpu."
        )

# The device and the loader's worker count are not hyperparameters: changing them must not rerun stages,
# so they reach the jobs through the environment instead of params.
os.environ.update(WSSS_DEVICE=config["device"], WSSS_WORKERS=str(config.get("workers", "auto")))


envvars:
    "WSSS_DEVICE",
    "WSSS_WORKERS",
    "PATH",


def as_arg(value):
    """A config value as one shell-quoted JSON word."""
    return shlex.quote(json.dumps(value, sort_keys=True))


# What the stages read of the dataset; generate and coco (make_dataset's and make_coco's own params), score_split
# and cooccurrence (evaluate only) stay out, so changing them reruns only the rules that use them.
DATASET_ARG = as_arg({k: v for k, v in DATASET.items() if k not in ("generate", "coco", "score_split", "cooccurrence")})
COOCCURRENCE_ARG = as_arg(DATASET.get("cooccurrence", []))
BACKBONE_ARG = as_arg(config["backbone"])


def method_section(section, default="cam"):
    """A section with only its selected method's block (`<section>.method`, absent = `default`)."""
    values = dict(config[section])
    chosen = values.get("method", default)
    blocks = METHOD_BLOCKS.get(section, ())
    return {k: v for k, v in values.items() if k not in blocks or k == chosen}


def method_arg(section, default="cam"):
    """method_section as one shell word: editing a block of a method that is not selected reruns nothing."""
    return as_arg(method_section(section, default))


def eps_saliency(classifier, dataset):
    """The OpenCV method make_saliency runs for EPS (classifier.eps.saliency), or None where the classifier reads
    the dataset's own saliency maps (dataset, or auto with dataset.saliency_dir present or a generated dataset)."""
    if classifier.get("method") != "eps":
        return None
    source = classifier["eps"]["saliency"]
    if source == "auto":
        folder = Path(dataset["root"]) / dataset.get("saliency_dir", "SaliencyMaps")
        source = "dataset" if "generate" in dataset or folder.is_dir() else "spectral_residual"
    return None if source == "dataset" else source


EPS_SALIENCY = eps_saliency(config["classifier"], DATASET)


# Each section's method blocks (keys named as the methods of its `method` setting), from the schema.
METHOD_BLOCKS = method_blocks()
# Every rule declares the project's one environment, for `--sdm conda` users (the same pins as uv.lock).
ENV = "../environment.yml"


# Adversarial erasing (rules/adversarial_erasing.smk): its round artifacts and settings.
def ae_file(name, round):
    """An adversarial-erasing artifact of a round, e.g. ae_file("regions", 2)."""
    return artifact(f"adversarial_erasing/{name}_round{round}.h5")


def ae_classifier(wildcards):
    r = int(wildcards.round)
    return rules.train_classifier.output.weights if r == 1 else ae_file("classifier", r)


def ae_cams(wildcards):
    r = int(wildcards.round)
    return rules.extract_cams.output.cams if r == 1 else ae_file("cams", r)


def ae_previous(wildcards):
    r = int(wildcards.round)
    return [] if r == 1 else ae_file("regions", r - 1)


AE = config.get("adversarial_erasing")
AE_ARG = as_arg({k: v for k, v in (AE or {}).items() if k != "rounds"})


# The predict target (rules/segmentation.smk): snakemake predict --config predict='{images: DIR, out: DIR}'.
PREDICT = config.get("predict", {})


def predict_weights(wildcards):
    """The run's segmentation weights, once predict's images and output folder are given."""
    if "images" not in PREDICT or "out" not in PREDICT:
        raise ValueError(
            "snakemake predict needs the images and the output folder: --config predict='{images: DIR, out: DIR}'."
        )
    return rules.train_segmentation.output.weights
