# Stage 6: DeepLabV3 on the pseudo-labels, predictions on the val (and train) split.


rule train_segmentation:
    """Train DeepLabV3 on the pseudo-labels; its predictions on val and train."""
    input:
        # SEC trains from the affinity labels' confident pixels (seeds) instead of the walk's labels
        pseudo=segmentation_pseudo_labels,
        classifier=owned("train_classifier", "classifier.weights.h5"),
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
        backbone=per_run(backbone_arg),
        hyper=method_arg("segmentation", "random_walk"),
        seed=per_run(lambda c: c["seed"]),
        splits=f"{VAL} {TRAIN}",
    shell:
        stage_shell(
            "train_segmentation",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --pseudo-labels {input.pseudo} --classifier {input.classifier} --predict-splits {params.splits}"
            " --seed {params.seed} --threads {threads} --out {output.weights}"
            " --predictions {output.predictions} --checkpoint " + checkpoint_of("train_segmentation"),
            processes=TRAINING_GPUS,
        )


# Segment new images with the trained network: snakemake predict --config predict='{images: DIR, out: DIR}'.
rule predict:
    """Segment a folder of new images with the run's network (--config predict='{images: DIR, out: DIR}')."""
    input:
        weights=predict_weights,
    output:
        record=artifact("predict.json", RUN),
    log:
        log_of("predict", RUN),
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
    """The run's networks as TorchScript, state dicts and JSON, for use without this package."""
    input:
        segmentation=artifact("segmentation.weights.h5", RUN),
        classifier=artifact("classifier.weights.h5", RUN),
    output:
        folder=directory(artifact("export", RUN)),
    log:
        log_of("export", RUN),
    conda:
        ENV
    threads: 1
    params:
        code=stage_code("export"),
        run=lambda wildcards, input: os.path.dirname(input.segmentation),
    shell:
        stage_shell("export", "--run {params.run} --out {output.folder}", gpu=False)
