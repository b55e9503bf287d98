# Stages 3-5: affinity labels, AffinityNet, random walk.


rule make_affinity_labels:
    cache: True
    input:
        cams=rules.extract_cams.output.cams,
    output:
        labels=f"{RESULTS}/affinity_labels_{TRAIN}.h5",
    params:
        version=VERSION,
        dataset=DATASET_ARG,
        hyper=as_arg(config["affinity_labels"]),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        f"{LOGS}/make_affinity_labels.log",
    shell:
        "{PYTHON} -m wsss_steps.make_affinity_labels --dataset {params.dataset} --params {params.hyper}"
        " --cams {input.cams} --threads {threads} --out {output.labels} > {log} 2>&1"


rule train_affinity:
    cache: True
    input:
        labels=rules.make_affinity_labels.output.labels,
        classifier=rules.train_classifier.output.weights,
    output:
        weights=f"{RESULTS}/affinity.weights.h5",
    params:
        version=VERSION,
        dataset=DATASET_ARG,
        backbone=BACKBONE_ARG,
        hyper=as_arg(config["affinity"]),
        seed=config["seed"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=240,
    log:
        f"{LOGS}/train_affinity.log",
    shell:
        "{PYTHON} -m wsss_steps.gpu_slot --"
        " {PYTHON} -m wsss_steps.train_affinity --dataset {params.dataset} --backbone {params.backbone}"
        " --params {params.hyper} --labels {input.labels} --classifier {input.classifier} --seed {params.seed}"
        " --threads {threads} --out {output.weights}"
        f" --checkpoint {CHECKPOINTS}/train_affinity.h5 > {{log}} 2>&1"


rule random_walk:
    cache: True
    input:
        cams=rules.extract_cams.output.cams,
        affinity=rules.train_affinity.output.weights,
    output:
        labels=f"{RESULTS}/pseudo_labels_{TRAIN}.h5",
        png=directory(f"{RESULTS}/pseudo_labels_{TRAIN}"),
    params:
        version=VERSION,
        dataset=DATASET_ARG,
        backbone=BACKBONE_ARG,
        hyper=as_arg(config["random_walk"]),
        affinity=as_arg(config["affinity"]),
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    log:
        f"{LOGS}/random_walk.log",
    shell:
        "{PYTHON} -m wsss_steps.gpu_slot --"
        " {PYTHON} -m wsss_steps.random_walk --dataset {params.dataset} --backbone {params.backbone}"
        " --params {params.hyper} --affinity-params {params.affinity} --cams {input.cams}"
        " --affinity {input.affinity} --threads {threads}"
        " --out {output.labels} --png-dir {output.png} > {log} 2>&1"
