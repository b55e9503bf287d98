# Stages 1-2: the CAM classifier (with EPS's saliency maps where the dataset has none) and multi-scale CAM extraction.


rule make_saliency:
    """Saliency maps for EPS where the dataset has none (classifier.eps.saliency)."""
    input:
        split=split_list(TRAIN),
        images=manifest("images"),
    output:
        maps=directory(artifact("saliency")),
    log:
        log_of("make_saliency"),
    conda:
        ENV
    threads: 1
    params:
        code=stage_code("make_saliency"),
        dataset=DATASET_ARG,
        method=saliency_method,
        split=TRAIN,
    shell:
        stage_shell(
            "make_saliency",
            "--dataset {params.dataset} --splits {params.split} --method {params.method} --threads {threads}"
            " --out {output.maps}",
            gpu=False,
        )


rule train_classifier:
    """Train the CAM classifier on the image-level labels (classifier section)."""
    input:
        split=split_list(TRAIN),
        saliency=saliency_maps,
        saliency_manifest=saliency_manifest,
        images=manifest("images"),
        labels=manifest("labels"),
        weights=manifest("weights"),
    output:
        weights=artifact("classifier.weights.h5"),
    log:
        log_of("train_classifier"),
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
        seed=per_run(lambda c: c["seed"]),
        split=TRAIN,
        check_masks=shlex.join([VAL, SCORE]),
        health_splits=shlex.join([TRAIN, VAL]),
        stop=per_run(stop_unlearnt),
        saliency=per_run(lambda c: "--saliency-dir" if eps_saliency(c["classifier"], DATASET) else ""),
    shell:
        stage_shell(
            "train_classifier",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --split {params.split} --seed {params.seed} --check-masks {params.check_masks}"
            " --health-splits {params.health_splits} {params.stop}"
            " --threads {threads} --out {output.weights} --checkpoint "
            + checkpoint_of("train_classifier")
            + " {params.saliency} {input.saliency}",
            processes=TRAINING_GPUS,
        )


rule extract_cams:
    """Multi-scale, flipped class activation maps of the training images (cams section)."""
    input:
        split=split_list(TRAIN),
        classifier=owned("train_classifier", "classifier.weights.h5"),
        images=manifest("images"),
        labels=manifest("labels"),
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
        code=stage_code("extract_cams"),
        dataset=DATASET_ARG,
        backbone=per_run(backbone_arg),
        hyper=method_arg("cams"),
        split=TRAIN,
    shell:
        stage_shell(
            "extract_cams",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --classifier {input.classifier} --split {params.split} --threads {threads} --out {output.cams}",
        )
