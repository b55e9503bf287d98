# Sweeps of the random walk (the paper's Fig. 8) and of the CAM scales, not part of `all`: `snakemake sweep_walk`,
# `snakemake sweep_cams` (or their CSVs). Each walk point reruns only the walk, on the run's CAMs and AffinityNet;
# each CAM point only extract_cams, with the run's classifier; every point is cached as a file of its own.


wildcard_constraints:
    point=r"beta[0-9.]+_t[0-9]+|alpha[0-9.]+",
    cpoint=r"scales[0-9.]+(_[0-9.]+)*",


rule sweep_walk_point:
    """One point of the walk's sweep: the pseudo-labels at that beta and t, or alpha."""
    input:
        cams=localisation(BASE),
        affinity=artifact("affinity.weights.h5", RUN),
        affinity_labels=artifact(f"affinity_labels_{TRAIN}.h5", RUN),
        images=manifest("images"),
    output:
        labels=temp(artifact("sweep/walk/{point}.h5", RUN)),
    log:
        log_of("sweep_walk_point/{point}", RUN),
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
        hyper=lambda wildcards: as_arg(point_settings(wildcards.point, config["random_walk"])),
        affinity=as_arg(config["affinity"]),
    shell:
        stage_shell(
            "random_walk",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --affinity-params {params.affinity} --cams {input.cams} --affinity {input.affinity}"
            " --affinity-labels {input.affinity_labels} --threads {threads} --out {output.labels}",
        )


rule score_sweep_point:
    """Score one point of the walk's sweep."""
    input:
        labels=artifact("sweep/walk/{point}.h5", RUN),
        masks=manifest("masks"),
    output:
        point=artifact("sweep/walk/{point}.json", RUN),
    log:
        log_of("score_sweep_point/{point}", RUN),
    conda:
        ENV
    params:
        dataset=DATASET_ARG,
        score_split=SCORE,
    shell:
        stage_shell(
            "sweep",
            "--dataset {params.dataset} --point {wildcards.point} --labels {input.labels}"
            " --split {params.score_split} --out {output.point}",
            gpu=False,
        )


rule sweep_walk:
    """The walk's sweep over beta x t and alpha (the paper's Fig. 8): CSV and plot."""
    input:
        points=expand(artifact("sweep/walk/{point}.json", RUN), point=point_names(config["sweep"])),
    output:
        csv=artifact("sweep_walk.csv", RUN),
        plot=report(artifact("sweep_walk.png", RUN), caption="../report/sweep_walk.rst", category="Sweeps"),
    log:
        log_of("sweep_walk", RUN),
    conda:
        ENV
    params:
        dataset=DATASET_ARG,
    shell:
        stage_shell(
            "sweep",
            "--dataset {params.dataset} --gather {input.points} --csv {output.csv} --plot {output.plot}",
            gpu=False,
        )


rule sweep_cams_point:
    """One point of the CAM scales' sweep: the CAMs at that set of scales."""
    input:
        split=split_list(TRAIN),
        classifier=artifact("classifier.weights.h5", RUN),
        images=manifest("images"),
        labels=manifest("labels"),
    output:
        cams=temp(artifact("sweep/cams/{cpoint}.h5", RUN)),
    log:
        log_of("sweep_cams_point/{cpoint}", RUN),
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
        hyper=lambda wildcards: as_arg(cam_point_settings(wildcards.cpoint, method_section(config, "cams"))),
        split=TRAIN,
    shell:
        stage_shell(
            "extract_cams",
            "--dataset {params.dataset} --backbone {params.backbone} --params {params.hyper}"
            " --classifier {input.classifier} --split {params.split} --threads {threads} --out {output.cams}",
        )


rule score_cams_point:
    """Score one point of the CAM scales' sweep at every background threshold."""
    input:
        cams=artifact("sweep/cams/{cpoint}.h5", RUN),
        masks=manifest("masks"),
    output:
        point=artifact("sweep/cams/{cpoint}.json", RUN),
    log:
        log_of("score_cams_point/{cpoint}", RUN),
    conda:
        ENV
    params:
        dataset=DATASET_ARG,
        score_split=SCORE,
        threshold=config["evaluate"]["cam_threshold"],
        curve=" ".join(str(v) for v in config["evaluate"]["threshold_curve"]),
    shell:
        stage_shell(
            "sweep",
            "--dataset {params.dataset} --point {wildcards.cpoint} --cams {input.cams} --split {params.score_split}"
            " --threshold {params.threshold} --curve {params.curve} --out {output.point}",
            gpu=False,
        )


rule sweep_cams:
    """The CAM scales' sweep: CSV and plot."""
    input:
        points=expand(artifact("sweep/cams/{cpoint}.json", RUN), cpoint=cam_point_names(config["sweep"])),
    output:
        csv=artifact("sweep_cams.csv", RUN),
        plot=report(artifact("sweep_cams.png", RUN), caption="../report/sweep_cams.rst", category="Sweeps"),
    log:
        log_of("sweep_cams", RUN),
    conda:
        ENV
    params:
        dataset=DATASET_ARG,
    shell:
        stage_shell(
            "sweep",
            "--dataset {params.dataset} --gather-cams {input.points} --csv {output.csv} --plot {output.plot}",
            gpu=False,
        )
