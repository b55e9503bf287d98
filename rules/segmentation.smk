# Stage 6: DeepLabV3 on the pseudo-labels, predictions on the val (and train) split.


rule train_segmentation:
    cache: True
    input:
        pseudo=rules.random_walk.output.labels,
        classifier=rules.train_classifier.output.weights,
        val=split_list(VAL),
    output:
        weights=f"{RESULTS}/segmentation.weights.h5",
        predictions=f"{RESULTS}/segmentation_predictions.h5",
    params:
        version=VERSION,
        dataset=DATASET_ARG,
        backbone=BACKBONE_ARG,
        hyper=as_arg(config["segmentation"]),
        seed=config["seed"],
        splits=f"{VAL} {TRAIN}",
    threads: 2
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=480,
    log:
        f"{LOGS}/train_segmentation.log",
    shell:
        "{PYTHON} -m wsss_steps.gpu_slot --"
        " {PYTHON} -m wsss_steps.train_segmentation --dataset {params.dataset} --backbone {params.backbone}"
        " --params {params.hyper} --pseudo-labels {input.pseudo} --classifier {input.classifier}"
        " --predict-splits {params.splits} --seed {params.seed} --threads {threads}"
        " --out {output.weights} --predictions {output.predictions}"
        f" --checkpoint {CHECKPOINTS}/train_segmentation.h5 > {{log}} 2>&1"
