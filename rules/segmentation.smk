# Stage 6: DeepLabV3 on the pseudo-labels, predictions on the val (and train) split.


rule train_segmentation:
    input:
        # SEC trains from the affinity labels' confident pixels (seeds) instead of the walk's labels
        pseudo=(
            rules.make_affinity_labels.output.labels
            if config["segmentation"].get("method") == "sec"
            else rules.random_walk.output.labels
        ),
        classifier=rules.train_classifier.output.weights,
        val=split_list(VAL),
        images=manifest("images"),
        labels=manifest("labels"),
        weights=manifest("weights"),
    output:
        weights=artifact("segmentation.weights.h5"),
        predictions=artifact("segmentation_predictions.h5"),
    log:
        log_of("train_segmentation"),
    cache: True
    conda:
        ENV
    threads: 2
    resources:
        gpu=TRAINING_GPUS,
        mem_mb=6000,
        runtime=480,
    params:
        code=stage_code("train_segmentation"),
        dataset=DATASET_ARG,
        backbone=BACKBONE_ARG,
        hyper=method_arg("segmentation", "random_walk"),
        seed=config["seed"],
        splits=f"{VAL} {TRAIN}",
        checkpoint=checkpoint_of("train_segmentation"),
    shell:
        stage_shell(
            "train_segmentation",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --pseudo-labels {input.pseudo} --classifier {input.classifier} --predict-splits {params.splits}"
            " --seed {params.seed} --threads {threads} --out {output.weights}"
            " --predictions {output.predictions} --checkpoint {params.checkpoint}",
            processes=TRAINING_GPUS,
        )


# Segment new images with the trained network: snakemake predict --config predict='{images: DIR, out: DIR}'.
rule predict:
    input:
        weights=predict_weights,
    output:
        record=artifact("predict.json"),
    log:
        log_of("predict"),
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=240,
    params:
        code=stage_code("predict"),
        images=PREDICT.get("images", ""),
        out=PREDICT.get("out", ""),
        scales=" ".join(str(s) for s in PREDICT.get("scales", [1.0])),
        flip="--flip" if PREDICT.get("flip") else "",
        crf=("--crf " + shlex.quote(json.dumps(config["evaluate"].get("crf", {}))) if PREDICT.get("crf") else ""),
    shell:
        stage_shell(
            "predict",
            "--weights {input.weights} --images {params.images:q} --out {params.out:q} --scales {params.scales}"
            " {params.flip} {params.crf} --threads {threads} --record {output.record}",
        )


# `snakemake export`: the segmentation network and the classifier as TorchScript (normalisation inside), state
# dicts and JSON, for use without this package (wsss_steps/export.py).
rule export:
    input:
        segmentation=rules.train_segmentation.output.weights,
        classifier=rules.train_classifier.output.weights,
    output:
        folder=directory(artifact("export")),
    log:
        log_of("export"),
    conda:
        ENV
    threads: 1
    params:
        code=stage_code("export"),
        run=lambda wildcards, input: os.path.dirname(input.segmentation),
    shell:
        stage_shell("export", "--run {params.run} --out {output.folder}", gpu=False)
