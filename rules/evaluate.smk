# Stage 7: mIoU per class of CAM, CAM+RW and the segmentation network; summary and figure.


rule evaluate:
    input:
        cams=LOCALISATION,
        labels=rules.make_affinity_labels.output.labels,
        pseudo=rules.random_walk.output.labels,
        predictions=rules.train_segmentation.output.predictions,
        classifier=rules.train_classifier.output.weights,
        images=manifest("images"),
        image_labels=manifest("labels"),
        masks=manifest("masks"),
    output:
        summary=artifact("summary.json"),
        table=artifact("summary.md"),
        examples=report(artifact("examples.png"), caption="../report/examples.rst", category="1. Results"),
    log:
        log_of("evaluate"),
    conda:
        ENV
    params:
        code=stage_code("evaluate"),
        dataset=DATASET_ARG,
        hyper=as_arg(config["evaluate"]),
        run_name=RUN,
        train_split=TRAIN,
        val_split=VAL,
        score_split=SCORE,
        cooccurrence=COOCCURRENCE_ARG,
    shell:
        stage_shell(
            "evaluate",
            "--dataset {params.dataset} --params {params.hyper} --run-name {params.run_name}"
            " --cams {input.cams} --affinity-labels {input.labels} --pseudo-labels {input.pseudo}"
            " --predictions {input.predictions} --classifier {input.classifier} --train-split {params.train_split} --val-split {params.val_split}"
            " --score-split {params.score_split} --cooccurrence {params.cooccurrence}"
            " --summary {output.summary} --table {output.table}"
            " --examples {output.examples}",
            gpu=False,
        )


# Figures for the report, from finished artifacts only: training curves, CAM threshold curve, IoU per class.
rule figures:
    input:
        summary=rules.evaluate.output.summary,
        table=rules.evaluate.output.table,
        artifacts=[
            LOCALISATION,
            rules.make_affinity_labels.output.labels,
            rules.random_walk.output.labels,
            rules.train_segmentation.output.predictions,
        ],
        weights=[
            rules.train_classifier.output.weights,
            rules.train_affinity.output.weights,
            rules.train_segmentation.output.weights,
        ],
    output:
        curves=report(artifact("training_curves.png"), caption="../report/training_curves.rst", category="2. Training"),
        threshold=report(
            artifact("cam_threshold_curve.png"), caption="../report/cam_threshold_curve.rst", category="1. Results"
        ),
        iou=report(artifact("iou_per_class.png"), caption="../report/iou_per_class.rst", category="1. Results"),
        table_html=report(artifact("summary.html"), caption="../report/summary.rst", category="1. Results"),
        provenance=report(
            artifact("provenance.html"), caption="../report/provenance.rst", category="3. Configuration and provenance"
        ),
    log:
        log_of("figures"),
    conda:
        ENV
    params:
        dataset=DATASET_ARG,
    shell:
        stage_shell(
            "figures",
            "--dataset {params.dataset} --summary {input.summary} --weights {input.weights}"
            " --curves {output.curves} --threshold-curve {output.threshold} --iou {output.iou}"
            " --table {input.table} --table-html {output.table_html}"
            " --artifacts {input.weights} {input.artifacts} --provenance {output.provenance}",
            gpu=False,
        )


# Not part of `all`: after `python -m wsss_steps.compare` (which runs it), `snakemake --report report.html
# comparison` with the config files the comparison ran with puts its table and bars into the report.
rule comparison:
    input:
        comparison=artifact("comparison.json", run=COMPARE_RUN),
        table=artifact("comparison.md", run=COMPARE_RUN),
    output:
        figure=report(
            artifact("comparison.png", run=COMPARE_RUN),
            caption="../report/comparison.rst",
            category="4. Method comparison",
        ),
        page=report(
            artifact("comparison.html", run=COMPARE_RUN),
            caption="../report/comparison.rst",
            category="4. Method comparison",
        ),
    log:
        log_of("comparison", run=COMPARE_RUN),
    conda:
        ENV
    params:
        dataset=DATASET_ARG,
    shell:
        stage_shell(
            "comparison_figures",
            "--dataset {params.dataset} --comparison {input.comparison} --table {input.table}"
            " --figure {output.figure} --page {output.page}",
            gpu=False,
        )


# Not part of `all`: `snakemake diagnose` (or the file) when CAM+RW does not beat CAM. Scores the
# learned affinities against the masks and runs the walk with them and with an oracle affinity.
rule diagnose:
    input:
        cams=LOCALISATION,
        affinity=rules.train_affinity.output.weights,
        images=manifest("images"),
        masks=manifest("masks"),
    output:
        report=artifact("diagnose.json"),
    log:
        log_of("diagnose"),
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        dataset=DATASET_ARG,
        backbone=BACKBONE_ARG,
        affinity=as_arg(config["affinity"]),
        walk=as_arg(config["random_walk"]),
        images=config["diagnose"]["images"],
    shell:
        stage_shell(
            "diagnose",
            "--dataset {params.dataset} --backbone {params.backbone} --affinity-params {params.affinity}"
            " --random-walk-params {params.walk} --cams {input.cams} --affinity {input.affinity}"
            " --limit {params.images} --threads {threads} --out {output.report}",
        )


# Not part of `all`: `snakemake verify` checks every HDF5 artifact of the run against the checksums
# recorded when it was written (even when its modification time did not change) and names, for a
# broken one, the `snakemake --forcerun <rule>` that rebuilds it and what is made from it.
rule verify:
    input:
        rules.train_classifier.output.weights,
        rules.extract_cams.output.cams,
        rules.make_affinity_labels.output.labels,
        rules.train_affinity.output.weights,
        rules.random_walk.output.labels,
        rules.train_segmentation.output.weights,
        rules.train_segmentation.output.predictions,
    log:
        log_of("verify"),
    conda:
        ENV
    shell:
        "python3 -m wsss_steps.inspect_artifact --verify {input} 2>&1 | tee {log}"
