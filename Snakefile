# AffinityNet (Ahn & Kwak, CVPR 2018) as a Snakemake workflow:
# classifier -> CAMs -> affinity labels -> AffinityNet -> random walk -> DeepLabV3 -> evaluation.
# Settings: config.yaml (validated against wsss_steps/schemas/config.schema.yaml before any job runs).
# GPU rules (resources: gpu=1) run their stage under wsss_steps.gpu_slot, which gives each job a
# GPU of its own on a workstation; local defaults: profiles/default, SLURM: profiles/slurm.

from snakemake.utils import min_version

min_version("9.0")


# config.yaml (the built-in demo) is the default only: a run given its own --configfile reads those files
# alone. Snakemake would otherwise merge them over config.yaml section by section, and a user's dataset
# would inherit the demo's `dataset.generate` block, which writes the built-in dataset.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/dataset.smk"
include: "rules/cam.smk"
include: "rules/adversarial_erasing.smk"
include: "rules/affinity.smk"
include: "rules/segmentation.smk"
include: "rules/evaluate.smk"
include: "rules/sweep.smk"


# Rules a cluster profile runs on the submitting machine: they read finished artifacts and write small files.
localrules:
    all,
    evaluate,
    figures,
    verify,
    compare,
    compare_table,
    sweep_walk,
    sweep_cams,


# Every artifact of the run is a target too (the list `snakemake verify` checks): Snakemake does not rebuild a
# missing intermediate file while the files made from it are present, so a stage output lost to a killed
# `--forcerun` would otherwise leave "Nothing to be done" and a run without it.
rule all:
    """The whole pipeline of the run, every artifact, summary and figure."""
    default_target: True
    input:
        artifacts=rules.verify.input,
        summary=artifact("summary.json", RUN),
        table=artifact("summary.md", RUN),
        examples=artifact("examples.png", RUN),
        figures=expand(rules.figures.output, run=RUN),
