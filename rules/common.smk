# Shared set-up: config validation, the runs of the workflow and the paths of their artifacts as small named
# functions, the one shell shape every stage rule shares, and helpers that turn config sections into command-line
# values. Every stage's hyperparameters reach its rule as `params`, so changing one reruns exactly the stages that
# use it.
#
# One workflow holds several runs (wsss_steps/lib/runs.py): the run of the config (run_name) and, for the `compare`
# target, one run per method of compare.methods. The stage rules are written once with the run as the wildcard
# {run}; a stage two runs share (same settings for it and every stage before it) is computed once, in the folder
# of the first run that has those settings (OWNERS), and the later run's next stage reads it from there. The
# dataset is the same for every run of a workflow.

import hashlib
import json
import os
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from wsss_steps.lib.code_key import stage_code
from wsss_steps.lib.config import DATASET_WRITERS, ConfigError, method_blocks, validate_config, weights_file
from wsss_steps.data.manifest import write_manifests
from wsss_steps.lib.sweep_points import cam_point_names, cam_point_settings, point_names, point_settings
from wsss_steps.lib.runs import check_run_matches, comparison_runs, round_owner, stage_owners

validate_config(config)  # also fills in the schema's defaults

RUN = config["run_name"]
RUNS = comparison_runs(config)  # {run name: its config}, the config's own run first
OWNERS = stage_owners(RUNS)  # {run: {stage: the run whose folder holds it}}
COMPARE_RUN = f"{RUN}-compare"  # the folder of the `compare` target's table
DATASET = config["dataset"]
TRAIN = DATASET["train_split"]
VAL = DATASET["val_split"]
SCORE = DATASET["score_split"]
# Every stage runs with the interpreter that runs Snakemake (an activated venv, `uv run`,
# `.venv/bin/snakemake`, conda, a SLURM job), never whatever `python3` comes first on the user's PATH:
# its folder goes first on the PATH the jobs inherit (sbatch --export=ALL passes it on). The commands
# themselves say plain `python3`, so they and the cache keys are the same in every checkout.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
# The jobs import the wsss_steps of this Snakefile's folder, the code whose digest is each rule's `code` param, also
# where the interpreter has no wsss_steps installed (the rules' conda environment under --sdm conda).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [workflow.basedir, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != workflow.basedir]]
)


wildcard_constraints:
    run="|".join(re.escape(name) for name in RUNS),


def run_dir(run="{run}"):
    """Where every artifact of a run goes (by default the pattern of a stage rule's run)."""
    return f"results/{run}"


def artifact(name, run="{run}"):
    """An artifact of a run, e.g. artifact("cams_train.h5") (a rule's output pattern) or artifact(name, RUN)."""
    return f"{run_dir(run)}/{name}"


def log_of(rule, run="{run}"):
    """The log file of a rule's job in a run."""
    return f"{run_dir(run)}/logs/{rule}.log"


def checkpoint_of(rule):
    """Where a training stage saves its per-epoch checkpoint, in the job's run folder: not a declared output, so
    Snakemake keeps it when a job is killed; the rerun resumes from it and deletes it when done. It is written
    into the shell command (whose unformatted text Snakemake's between-workflow cache hashes), not into params,
    so the run's name is not part of the cache key."""
    return f"results/{{wildcards.run}}/checkpoints/{rule}.h5"


def owned(stage, name):
    """An input function: the artifact ``name`` of ``stage`` from the folder of the run that holds it for the job's run."""
    return lambda wildcards: artifact(name, OWNERS[wildcards.run][stage])


def per_run(value):
    """A param (or input) function: ``value(config)`` for the config of the job's run."""
    return lambda wildcards: value(RUNS[wildcards.run])


def stop_unlearnt(run_config):
    """health.stop_on (absent: [classifier]): a class the classifier has still not learnt when its training ends
    stops the run in train_classifier (no weights written, its checkpoint kept) instead of warning."""
    return "--stop-unlearnt" if "classifier" in run_config.get("health", {}).get("stop_on", ["classifier"]) else ""


def split_list(split, dataset=DATASET):
    """The list file of a split of the dataset."""
    return f"{dataset['root']}/{dataset.get('list_dir', 'ImageSets/Segmentation')}/{split}.txt"


def stage_shell(stage, args, gpu=True, processes=1):
    """The shell command of a rule: `python -m wsss_steps.<stage> <args>` with its output in {log}; a GPU
    stage runs under wsss_steps.gpu_slot, which gives the job a GPU of its own (``processes`` GPUs, one per
    data-parallel process that torchrun starts, when more than one)."""
    if MANIFESTS and stage not in (*DATASET_WRITERS.values(), "predict", "export"):
        args += " --manifests " + " ".join(str(path) for path in MANIFESTS.values())
    if processes == 1:
        slot = "python3 -m wsss_steps.gpu_slot -- " if gpu else ""
        return f"{slot}python3 -m wsss_steps.{stage} {args} > {{log}} 2>&1"
    return (
        f"python3 -m wsss_steps.gpu_slot --gpus {processes} -- python3 -m torch.distributed.run --standalone"
        f" --nproc_per_node {processes} -m wsss_steps.{stage} {args} > {{log}} 2>&1"
    )


# Data-parallel processes (and GPUs) per training job: training_gpus, absent = 1 (wsss_steps/lib/distributed.py).
TRAINING_GPUS = config.get("training_gpus", 1)


for _run in RUNS:
    check_run_matches(run_dir(_run), DATASET)

# A dataset on disk is checked for its folders and split lists before any job is planned; the
# images, labels and masks themselves are checked by train_classifier before it trains. A dataset the
# workflow writes (generate, coco, oxford_pet, voc_sbd) may not exist yet: only a root holding someone else's files stops it.
WRITER = next((key for key in DATASET_WRITERS if key in DATASET), None)  # the dataset block the workflow writes from
if WRITER:
    import importlib

    from wsss_steps.data.synthetic import NotOurs

    _module = {"generate": "synthetic", "coco": "coco", "oxford_pet": "oxford_pet", "voc_sbd": "voc_sbd"}[WRITER]
    refuse_foreign_root = importlib.import_module(f"wsss_steps.data.{_module}").refuse_foreign_root

    try:
        refuse_foreign_root(DATASET["root"])
    except NotOurs as exc:
        raise ConfigError(f"config key 'dataset.{WRITER}': {exc}") from None
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
# touched file reruns nothing. A dataset the workflow writes itself (generate, coco, oxford_pet, voc_sbd) has none: its split lists are
# the outputs of the rule that writes it.
MANIFEST_DIR = f"results/manifests/{DATASET['name']}-{hashlib.sha256(str(Path(DATASET['root']).resolve()).encode()).hexdigest()[:8]}"


WEIGHTS_FILE = weights_file(config["backbone"].get("weights"))  # checked here: a bad one stops planning
if WRITER:
    MANIFESTS = write_manifests(MANIFEST_DIR, None, (), WEIGHTS_FILE) if WEIGHTS_FILE else {}
else:
    MANIFESTS = write_manifests(
        MANIFEST_DIR,
        _layout,
        [TRAIN, VAL, SCORE],
        WEIGHTS_FILE,
        saliency=any(c["classifier"].get("method") == "eps" for c in RUNS.values()),
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
    "PYTHONPATH",


def as_arg(value):
    """A config value as one shell-quoted JSON word."""
    return shlex.quote(json.dumps(value, sort_keys=True))


# What the stages read of the dataset; the blocks the workflow writes the dataset from (their rules' own params), score_split
# and cooccurrence (evaluate only) stay out, so changing them reruns only the rules that use them.
DATASET_ARG = as_arg({k: v for k, v in DATASET.items() if k not in (*DATASET_WRITERS, "score_split", "cooccurrence")})
COOCCURRENCE_ARG = as_arg(DATASET.get("cooccurrence", []))


def backbone_arg(run_config):
    return as_arg(run_config["backbone"])


def method_section(run_config, section, default="cam"):
    """A section with only its selected method's block (`<section>.method`, absent = `default`)."""
    values = dict(run_config[section])
    chosen = values.get("method", default)
    blocks = METHOD_BLOCKS.get(section, ())
    return {k: v for k, v in values.items() if k not in blocks or k == chosen}


def method_arg(section, default="cam"):
    """A param function: the run's method_section as one shell word (editing a block of a method that is not
    selected reruns nothing)."""
    return per_run(lambda c: as_arg(method_section(c, section, default)))


def section_arg(section):
    """A param function: the run's config section as one shell word."""
    return per_run(lambda c: as_arg(c[section]))


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


def saliency_method(wildcards):
    """The make_saliency method of the job's run (make_saliency runs only for a run whose classifier needs it)."""
    return eps_saliency(RUNS[wildcards.run]["classifier"], DATASET) or "spectral_residual"


def saliency_maps(wildcards):
    """The saliency maps make_saliency writes for the job's run's classifier, [] where it reads none or the dataset's."""
    if not eps_saliency(RUNS[wildcards.run]["classifier"], DATASET):
        return []
    return artifact("saliency", OWNERS[wildcards.run]["train_classifier"])


def saliency_manifest(wildcards):
    """The manifest of the dataset's saliency maps where the job's run's classifier reads them, else []."""
    classifier = RUNS[wildcards.run]["classifier"]
    return manifest("saliency") if classifier.get("method") == "eps" and not eps_saliency(classifier, DATASET) else []


# Each section's method blocks (keys named as the methods of its `method` setting), from the schema.
METHOD_BLOCKS = method_blocks()
# Every rule declares the project's one environment, for `--sdm conda` users (the same pins as uv.lock).
ENV = "../environment.yml"


# Adversarial erasing (rules/adversarial_erasing.smk): its round artifacts and settings.
def ae_file(name, round, run="{run}"):
    """An adversarial-erasing artifact of a round, e.g. ae_file("regions", 2)."""
    return artifact(f"adversarial_erasing/{name}_round{round}.h5", run)


def ae_round_file(name, wildcards, r):
    """The artifact ``name`` of round ``r`` of the job's run, from the run that holds that round."""
    return ae_file(name, r, round_owner(RUNS, wildcards.run, r))


def ae_classifier(wildcards):
    r = int(wildcards.round)
    return (
        owned("train_classifier", "classifier.weights.h5")(wildcards)
        if r == 1
        else ae_file("classifier", r, wildcards.run)
    )


def ae_cams(wildcards):
    r = int(wildcards.round)
    return owned("extract_cams", f"cams_{TRAIN}.h5")(wildcards) if r == 1 else ae_file("cams", r, wildcards.run)


def ae_previous(wildcards):
    r = int(wildcards.round)
    return [] if r == 1 else ae_round_file("regions", wildcards, r - 1)


def ae_arg(run_config):
    return as_arg({k: v for k, v in (run_config.get("adversarial_erasing") or {}).items() if k != "rounds"})


def localisation(wildcards):
    """What the later stages of the job's run read as CAMs: the last adversarial-erasing round's union of mined
    regions, or the CAMs."""
    ae = RUNS[wildcards.run].get("adversarial_erasing")
    if ae:
        return ae_round_file("regions", wildcards, ae["rounds"])
    return owned("extract_cams", f"cams_{TRAIN}.h5")(wildcards)


def segmentation_pseudo_labels(wildcards):
    """What train_segmentation trains from: the walk's labels, or for SEC the affinity labels' confident pixels."""
    if RUNS[wildcards.run]["segmentation"].get("method") == "sec":
        return owned("make_affinity_labels", f"affinity_labels_{TRAIN}.h5")(wildcards)
    return owned("random_walk", f"pseudo_labels_{TRAIN}.h5")(wildcards)


# The compare target (rules/evaluate.smk): each method's run, and the run whose folder holds each of its stages.
COMPARE_METHODS = config.get("compare", {}).get("methods", [])
COMPARE_ROWS = [
    {
        "method": method,
        "run": f"{RUN}-{method}",
        "stages": OWNERS[f"{RUN}-{method}"],
        "rounds": {
            r: round_owner(RUNS, f"{RUN}-{method}", r)
            for r in range(1, (RUNS[f"{RUN}-{method}"].get("adversarial_erasing") or {"rounds": 0})["rounds"] + 1)
        },
    }
    for method in COMPARE_METHODS
]


def compare_runs(name):
    """The compare target's input function: the artifact ``name`` of each method's evaluation (where it is held)."""

    def inputs(wildcards):
        if not COMPARE_ROWS:
            raise ValueError(
                "snakemake compare needs the methods to compare: --config compare='{methods: [cam, gradcam]}' "
                "(or a compare section in a config file)."
            )
        return [artifact(name, row["stages"]["evaluate"]) for row in COMPARE_ROWS]

    return inputs


class Base:
    """The run of the config as wildcards, for the input functions of the rules that serve it alone (targets)."""

    run = RUN


BASE = Base()


# The predict target (rules/segmentation.smk): snakemake predict --config predict='{images: DIR, out: DIR}'.
PREDICT = config.get("predict", {})


def predict_weights(wildcards):
    """The run's segmentation weights, once predict's images and output folder are given."""
    if "images" not in PREDICT or "out" not in PREDICT:
        raise ValueError(
            "snakemake predict needs the images and the output folder: --config predict='{images: DIR, out: DIR}'."
        )
    return artifact("segmentation.weights.h5", RUN)
