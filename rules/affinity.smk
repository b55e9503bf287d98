# Stages 3-5: affinity labels, AffinityNet, random walk.


rule make_affinity_labels:
    """Confident foreground and background from the CAMs with the dense CRF; the rest neutral."""
    input:
        cams=localisation,
        images=manifest("images"),
    output:
        labels=artifact(f"affinity_labels_{TRAIN}.h5"),
    log:
        log_of("make_affinity_labels"),
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        code=stage_code("make_affinity_labels"),
        dataset=DATASET_ARG,
        hyper=section_arg("affinity_labels"),
    shell:
        stage_shell(
            "make_affinity_labels",
            "--dataset {params.dataset} --params {params.hyper} --cams {input.cams} --threads {threads}"
            " --out {output.labels}",
            gpu=False,
        )


rule train_affinity:
    """Train AffinityNet on the pairs of the affinity labels within the radius."""
    input:
        labels=owned("make_affinity_labels", f"affinity_labels_{TRAIN}.h5"),
        classifier=owned("train_classifier", "classifier.weights.h5"),
        images=manifest("images"),
        weights=manifest("weights"),
    output:
        weights=artifact("affinity.weights.h5"),
    log:
        log_of("train_affinity"),
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        gpu=TRAINING_GPUS,
        mem_mb=4000,
        runtime=240,
    params:
        code=stage_code("train_affinity"),
        dataset=DATASET_ARG,
        backbone=per_run(backbone_arg),
        hyper=section_arg("affinity"),
        seed=per_run(lambda c: c["seed"]),
    shell:
        stage_shell(
            "train_affinity",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --labels {input.labels} --classifier {input.classifier} --seed {params.seed} --threads {threads}"
            " --out {output.weights} --checkpoint " + checkpoint_of("train_affinity"),
            processes=TRAINING_GPUS,
        )


rule random_walk:
    """Propagate the CAMs with AffinityNet's affinities: the pseudo-labels (random_walk section)."""
    input:
        cams=localisation,
        affinity=owned("train_affinity", "affinity.weights.h5"),
        affinity_labels=owned("make_affinity_labels", f"affinity_labels_{TRAIN}.h5"),
        images=manifest("images"),
    output:
        labels=artifact(f"pseudo_labels_{TRAIN}.h5"),
        png=directory(artifact(f"pseudo_labels_{TRAIN}")),
    log:
        log_of("random_walk"),
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        code=stage_code("random_walk"),
        dataset=DATASET_ARG,
        backbone=per_run(backbone_arg),
        hyper=section_arg("random_walk"),
        affinity=section_arg("affinity"),
    shell:
        stage_shell(
            "random_walk",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --affinity-params {params.affinity} --cams {input.cams} --affinity {input.affinity}"
            " --affinity-labels {input.affinity_labels}"
            " --threads {threads} --out {output.labels} --png-dir {output.png}",
        )
