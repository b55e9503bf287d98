# Stage 0: the dataset tree the workflow writes itself: the built-in synthetic dataset (config dataset.generate),
# MS COCO (dataset.coco), the Oxford-IIIT Pet dataset (dataset.oxford_pet) or PASCAL VOC 2012 with the SBD masks
# (dataset.voc_sbd) converted into the VOC layout.

if "generate" in DATASET:

    rule make_dataset:
        """Write the built-in synthetic dataset (dataset.generate) in the VOC layout."""
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


if "coco" in DATASET:

    rule make_coco:
        """Convert MS COCO (dataset.coco) into the VOC layout: masks, labels and split lists."""
        input:
            train_annotations=DATASET["coco"]["train_annotations"],
            val_annotations=DATASET["coco"]["val_annotations"],
        output:
            train=split_list(TRAIN),
            val=split_list(VAL),
        log:
            f"logs/make_coco_{DATASET['name']}.log",
        conda:
            ENV
        params:
            dataset=as_arg(DATASET),
        shell:
            stage_shell("make_coco", "--dataset {params.dataset}", gpu=False)


if "oxford_pet" in DATASET:

    rule make_oxford_pet:
        """Convert the Oxford-IIIT Pet dataset (dataset.oxford_pet; downloaded first with download: true) into the VOC layout."""
        output:
            train=split_list(TRAIN),
            val=split_list(VAL),
        log:
            f"logs/make_oxford_pet_{DATASET['name']}.log",
        conda:
            ENV
        params:
            dataset=as_arg(DATASET),
        shell:
            stage_shell("make_oxford_pet", "--dataset {params.dataset}", gpu=False)


if "voc_sbd" in DATASET:

    rule make_voc_sbd:
        """PASCAL VOC 2012 with the SBD masks as one tree with the train_aug split (dataset.voc_sbd; downloaded first with download: true)."""
        output:
            lists=[split_list(split) for split in dict.fromkeys([TRAIN, SCORE, VAL])],
        log:
            f"logs/make_voc_sbd_{DATASET['name']}.log",
        conda:
            ENV
        params:
            dataset=as_arg(DATASET),
        shell:
            stage_shell("make_voc_sbd", "--dataset {params.dataset}", gpu=False)
