# Stage 0: the built-in synthetic dataset (only when config dataset.generate is set).

if "generate" in DATASET:

    rule make_dataset:
        output:
            train=split_list(TRAIN),
            val=split_list(VAL),
        params:
            dataset=as_arg(DATASET),
        log:
            f"logs/make_dataset_{DATASET['name']}.log",
        shell:
            "{PYTHON} -m wsss_steps.make_dataset --dataset {params.dataset} > {log} 2>&1"
