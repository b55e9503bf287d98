# Adversarial erasing (AE-PSL): rounds r = 2..rounds train a classifier on the images with the regions mined in
# the rounds before erased; each round's mining adds its CAMs to the union map the later stages read as CAMs.
# Round 1 is the run's own classifier and CAMs. No round's params hold `rounds`, so raising it reruns only the
# new rounds and what follows.


wildcard_constraints:
    round="[1-9]",


rule ae_train_classifier:
    """Adversarial erasing: a classifier trained with the earlier rounds' regions erased."""
    input:
        split=split_list(TRAIN),
        regions=ae_previous,
        images=manifest("images"),
        labels=manifest("labels"),
        weights=manifest("weights"),
    output:
        weights=ae_file("classifier", "{round}"),
    log:
        log_of("ae_train_classifier_round{round}"),
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        gpu=TRAINING_GPUS,
        mem_mb=4000,
        runtime=240,
    params:
        code=stage_code("train_classifier"),
        dataset=DATASET_ARG,
        backbone=per_run(backbone_arg),
        hyper=method_arg("classifier"),
        erasing=per_run(ae_arg),
        seed=per_run(lambda c: c["seed"]),
        split=TRAIN,
        health_splits=shlex.join([TRAIN, VAL]),
    shell:
        stage_shell(
            "train_classifier",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --split {params.split} --seed {params.seed} --health-splits {params.health_splits}"
            " --erase-regions {input.regions} --erasing {params.erasing}"
            " --threads {threads} --out {output.weights} --checkpoint "
            + checkpoint_of("ae_train_classifier_round{wildcards.round}"),
            processes=TRAINING_GPUS,
        )


rule ae_extract_cams:
    """Adversarial erasing: a round's CAMs on the images with the earlier rounds' regions erased."""
    input:
        split=split_list(TRAIN),
        classifier=ae_file("classifier", "{round}"),
        regions=ae_previous,
        images=manifest("images"),
        labels=manifest("labels"),
    output:
        cams=ae_file("cams", "{round}"),
    log:
        log_of("ae_extract_cams_round{round}"),
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        code=stage_code("extract_cams"),
        dataset=DATASET_ARG,
        backbone=per_run(backbone_arg),
        hyper=method_arg("cams"),
        erasing=per_run(ae_arg),
        split=TRAIN,
    shell:
        stage_shell(
            "extract_cams",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --classifier {input.classifier} --split {params.split} --erase-regions {input.regions}"
            " --erasing {params.erasing} --threads {threads} --out {output.cams}",
        )


rule mine_regions:
    """Adversarial erasing: the regions a round mines, added to the union the later stages read."""
    input:
        cams=ae_cams,
        classifier=ae_classifier,
        previous=ae_previous,
    output:
        regions=ae_file("regions", "{round}"),
    log:
        log_of("mine_regions_round{round}"),
    conda:
        ENV
    threads: 1
    params:
        code=stage_code("mine_regions"),
        dataset=DATASET_ARG,
        erasing=per_run(ae_arg),
        split=TRAIN,
        previous=lambda w: "--previous" if int(w.round) > 1 else "",
    shell:
        stage_shell(
            "mine_regions",
            "--dataset {params.dataset} --params {params.erasing} --round {wildcards.round}"
            " --cams {input.cams} --classifier {input.classifier} {params.previous} {input.previous}"
            " --split {params.split}"
            " --threads {threads} --out {output.regions}",
            gpu=False,
        )
