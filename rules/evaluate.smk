# Stage 7: mIoU per class of CAM, CAM+RW and the segmentation network; summary and figure.


rule evaluate:
    """mIoU per class of CAM, CAM + RW and the segmentation network; summary, health and examples.png."""
    input:
        cams=localisation,
        labels=owned("make_affinity_labels", f"affinity_labels_{TRAIN}.h5"),
        pseudo=owned("random_walk", f"pseudo_labels_{TRAIN}.h5"),
        predictions=owned("train_segmentation", "segmentation_predictions.h5"),
        classifier=owned("train_classifier", "classifier.weights.h5"),
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
        hyper=section_arg("evaluate"),
        run_name=lambda wildcards: wildcards.run,
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
    """The report's figures: training curves, CAM threshold curve, IoU per class, summary and provenance."""
    input:
        summary=owned("evaluate", "summary.json"),
        table=owned("evaluate", "summary.md"),
        artifacts=lambda wildcards: [
            localisation(wildcards),
            owned("make_affinity_labels", f"affinity_labels_{TRAIN}.h5")(wildcards),
            owned("random_walk", f"pseudo_labels_{TRAIN}.h5")(wildcards),
            owned("train_segmentation", "segmentation_predictions.h5")(wildcards),
        ],
        weights=lambda wildcards: [
            owned("train_classifier", "classifier.weights.h5")(wildcards),
            owned("train_affinity", "affinity.weights.h5")(wildcards),
            owned("train_segmentation", "segmentation.weights.h5")(wildcards),
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


# Not part of `all`: `snakemake compare --config compare='{methods: [cam, gradcam]}'` runs every method of
# compare.methods as the run <run_name>-<method> in this one workflow (a stage the runs share is computed once) and
# tabulates them in results/<run_name>-compare/; `snakemake --report report.html compare` puts the table and bars
# into Snakemake's report.
rule compare_table:
    """The method comparison's table from every method's run (compare.methods)."""
    input:
        summaries=compare_runs("summary.json"),
        figures=compare_runs("provenance.html"),
    output:
        comparison=artifact("comparison.json", COMPARE_RUN),
        table=artifact("comparison.md", COMPARE_RUN),
    log:
        log_of("compare_table", COMPARE_RUN),
    conda:
        ENV
    params:
        dataset=DATASET_ARG,
        rows=as_arg(COMPARE_ROWS),
    shell:
        stage_shell(
            "compare",
            "--dataset {params.dataset} --rows {params.rows} --json {output.comparison} --table {output.table}",
            gpu=False,
        )


rule compare:
    """The method comparison: every method of compare.methods as a run, its table and mIoU bars."""
    input:
        comparison=rules.compare_table.output.comparison,
        table=rules.compare_table.output.table,
    output:
        figure=report(
            artifact("comparison.png", COMPARE_RUN),
            caption="../report/comparison.rst",
            category="4. Method comparison",
        ),
        page=report(
            artifact("comparison.html", COMPARE_RUN),
            caption="../report/comparison.rst",
            category="4. Method comparison",
        ),
    log:
        log_of("compare", COMPARE_RUN),
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
    """When CAM + RW does not beat CAM: the affinities (AffinityNet's or IRN's boundaries) scored against the masks."""
    input:
        cams=localisation(BASE),
        affinity=artifact("affinity.weights.h5", RUN),
        images=manifest("images"),
        masks=manifest("masks"),
    output:
        report=artifact("diagnose.json", RUN),
    log:
        log_of("diagnose", RUN),
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        dataset=DATASET_ARG,
        backbone=as_arg(config["backbone"]),
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
    """Check every HDF5 artifact of the run against the checksums recorded when it was written."""
    input:
        [
            artifact(name, RUN)
            for name in (
                "classifier.weights.h5",
                f"cams_{TRAIN}.h5",
                f"affinity_labels_{TRAIN}.h5",
                "affinity.weights.h5",
                f"pseudo_labels_{TRAIN}.h5",
                "segmentation.weights.h5",
                "segmentation_predictions.h5",
            )
        ],
    log:
        log_of("verify", RUN),
    conda:
        ENV
    shell:
        "python3 -m wsss_steps.inspect_artifact --verify {input} 2>&1 | tee {log}"
