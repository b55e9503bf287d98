# Stages 3-5: affinity labels, AffinityNet, random walk.


rule make_affinity_labels:
    input:
        cams=LOCALISATION,
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
        hyper=as_arg(config["affinity_labels"]),
    shell:
        stage_shell(
            "make_affinity_labels",
            "--dataset {params.dataset} --params {params.hyper} --cams {input.cams} --threads {threads}"
            " --out {output.labels}",
            gpu=False,
        )


rule train_affinity:
    input:
        labels=rules.make_affinity_labels.output.labels,
        classifier=rules.train_classifier.output.weights,
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
        backbone=BACKBONE_ARG,
        hyper=as_arg(config["affinity"]),
        seed=config["seed"],
        checkpoint=checkpoint_of("train_affinity"),
    shell:
        stage_shell(
            "train_affinity",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --labels {input.labels} --classifier {input.classifier} --seed {params.seed} --threads {threads}"
            " --out {output.weights} --checkpoint {params.checkpoint}",
            processes=TRAINING_GPUS,
        )


rule random_walk:
    input:
        cams=LOCALISATION,
        affinity=rules.train_affinity.output.weights,
        affinity_labels=rules.make_affinity_labels.output.labels,
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
        backbone=BACKBONE_ARG,
        hyper=as_arg(config["random_walk"]),
        affinity=as_arg(config["affinity"]),
    shell:
        stage_shell(
            "random_walk",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --affinity-params {params.affinity} --cams {input.cams} --affinity {input.affinity}"
            " --affinity-labels {input.affinity_labels}"
            " --threads {threads} --out {output.labels} --png-dir {output.png}",
        )
