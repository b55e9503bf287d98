# Stages 1-2: the CAM classifier and multi-scale CAM extraction.


rule train_classifier:
    input:
        split=split_list(TRAIN),
    output:
        weights=artifact("classifier.weights.h5"),
    log:
        log_of("train_classifier"),
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=240,
    params:
        version=VERSION,
        dataset=DATASET_ARG,
        backbone=BACKBONE_ARG,
        hyper=method_arg("classifier"),
        seed=config["seed"],
        split=TRAIN,
        check_masks=shlex.join([VAL, SCORE]),
        health_splits=shlex.join([TRAIN, VAL]),
        checkpoint=checkpoint_of("train_classifier"),
    shell:
        stage_shell(
            "train_classifier",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --split {params.split} --seed {params.seed} --check-masks {params.check_masks}"
            " --health-splits {params.health_splits}"
            " --threads {threads} --out {output.weights} --checkpoint {params.checkpoint}",
        )


rule extract_cams:
    input:
        split=split_list(TRAIN),
        classifier=rules.train_classifier.output.weights,
    output:
        cams=artifact(f"cams_{TRAIN}.h5"),
    log:
        log_of("extract_cams"),
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        version=VERSION,
        dataset=DATASET_ARG,
        backbone=BACKBONE_ARG,
        hyper=method_arg("cams"),
        split=TRAIN,
    shell:
        stage_shell(
            "extract_cams",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --classifier {input.classifier} --split {params.split} --threads {threads} --out {output.cams}",
        )
