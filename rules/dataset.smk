# Stage 0: the built-in synthetic dataset (only when config dataset.generate is set).

if "generate" in DATASET:

    rule make_dataset:
        output:
            train=split_list(TRAIN),
            val=split_list(VAL),
        log:
            f"logs/make_dataset_{DATASET['name']}.log",
        conda:
            ENV
        params:
            dataset=as_arg(DATASET),
        shell:
            stage_shell("make_dataset", "--dataset {params.dataset}", gpu=False)
