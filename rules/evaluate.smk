# Stage 7: mIoU per class of CAM, CAM+RW and the segmentation network; summary and figure.


rule evaluate:
    input:
        cams=rules.extract_cams.output.cams,
        labels=rules.make_affinity_labels.output.labels,
        pseudo=rules.random_walk.output.labels,
        predictions=rules.train_segmentation.output.predictions,
    output:
        summary=f"{RESULTS}/summary.json",
        table=f"{RESULTS}/summary.md",
        examples=f"{RESULTS}/examples.png",
    params:
        dataset=DATASET_ARG,
        hyper=as_arg(config["evaluate"]),
        run_name=RUN,
        train_split=TRAIN,
        val_split=VAL,
        score_split=SCORE,
    log:
        f"{LOGS}/evaluate.log",
    shell:
        "python -m wsss_steps.evaluate --dataset {params.dataset} --params {params.hyper} --run-name {params.run_name}"
        " --cams {input.cams} --affinity-labels {input.labels} --pseudo-labels {input.pseudo}"
        " --predictions {input.predictions} --train-split {params.train_split} --val-split {params.val_split}"
        " --score-split {params.score_split}"
        " --summary {output.summary} --table {output.table} --examples {output.examples} > {log} 2>&1"
