# Stages 1-2: the CAM classifier and multi-scale CAM extraction.


rule train_classifier:
    cache: True
    input:
        split=split_list(TRAIN),
    output:
        weights=f"{RESULTS}/classifier.weights.h5",
    params:
        version=VERSION,
        dataset=DATASET_ARG,
        backbone=BACKBONE_ARG,
        hyper=as_arg(config["classifier"]),
        seed=config["seed"],
        split=TRAIN,
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=240,
    log:
        f"{LOGS}/train_classifier.log",
    shell:
        "{PYTHON} -m wsss_steps.gpu_slot --"
        " {PYTHON} -m wsss_steps.train_classifier --dataset {params.dataset} --backbone {params.backbone}"
        " --params {params.hyper} --split {params.split} --seed {params.seed}"
        f" --check-masks {shlex.quote(VAL)} {shlex.quote(SCORE)}"
        " --threads {threads} --out {output.weights}"
        f" --checkpoint {CHECKPOINTS}/train_classifier.h5 > {{log}} 2>&1"


rule extract_cams:
    cache: True
    input:
        split=split_list(TRAIN),
        classifier=rules.train_classifier.output.weights,
    output:
        cams=f"{RESULTS}/cams_{TRAIN}.h5",
    params:
        version=VERSION,
        dataset=DATASET_ARG,
        backbone=BACKBONE_ARG,
        hyper=as_arg(config["cams"]),
        split=TRAIN,
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    log:
        f"{LOGS}/extract_cams.log",
    shell:
        "{PYTHON} -m wsss_steps.gpu_slot --"
        " {PYTHON} -m wsss_steps.extract_cams --dataset {params.dataset} --backbone {params.backbone}"
        " --params {params.hyper} --classifier {input.classifier} --split {params.split}"
        " --threads {threads} --out {output.cams} > {log} 2>&1"
