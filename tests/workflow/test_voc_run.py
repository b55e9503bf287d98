"""VOC-layout datasets: label sources, masks only where they exist, and clear errors on bad input.

The tests here run the workflow; those that do not are in tests/unit/test_voc.py.
"""


import pytest

from wsss_steps.data import VOCLayout

from conftest import REPO, planned_jobs, snakemake
from fake_voc import write_fake_voc

SAMPLES = REPO.parent / "shared" / "data" / "voc-samples"


VOC12_GPU = (REPO / "configs" / "presets" / "voc12_gpu.yaml", REPO / "configs" / "datasets" / "voc12.yaml")


NO_GPU = ("--config", "device=auto")  # the GPU preset says device: cuda, which stops planning on a machine without one


PRESETS = sorted((REPO / "configs" / "presets").glob("*.yaml"))


DATASET_FILES = sorted((REPO / "configs" / "datasets").glob("*.yaml"))


def test_voc12_config_dry_run_shows_the_whole_dag(tmp_path):
    write_fake_voc(tmp_path / "data" / "VOCdevkit" / "VOC2012", mask_dir="SegmentationClassAug")
    proc = snakemake(tmp_path, "-n", *NO_GPU, configfiles=VOC12_GPU)
    jobs = planned_jobs(proc.stdout)
    assert jobs == {"all": 1, "train_classifier": 1, "extract_cams": 1, "make_affinity_labels": 1,
                    "train_affinity": 1, "random_walk": 1, "train_segmentation": 1, "evaluate": 1, "figures": 1}


def test_missing_dataset_root_stops_the_workflow_before_any_job(tmp_path):
    proc = snakemake(tmp_path, "-n", *NO_GPU, configfiles=VOC12_GPU, check=False)
    assert proc.returncode != 0
    assert "VOCdevkit/VOC2012: dataset root not found" in proc.stdout


SHARED = REPO.parent / "shared" / "data"


@pytest.mark.parametrize("name, classes, train_images", [("horse_street", ("background", "horse"), 524),
                                                         ("pets_horses", ("background", "horse", "cat", "dog"), 640)])
def test_the_photo_preset_plans_the_whole_pipeline_on_the_shared_photos(name, classes, train_images):
    root = SHARED / name.replace("_", "-")
    if not root.is_dir():
        pytest.skip(f"{root} not present (shared real photos)")
    configfiles = (REPO / "configs" / "presets" / "cpu_photos.yaml", REPO / "configs" / "datasets" / f"{name}.yaml")
    proc = snakemake(REPO, "-n", "--rerun-triggers", "mtime", configfiles=configfiles)
    assert set(planned_jobs(proc.stdout)) <= {"all", "train_classifier", "extract_cams", "make_affinity_labels",
                                              "train_affinity", "random_walk", "train_segmentation", "evaluate", "figures"}
    layout = VOCLayout(root, classes)
    report = layout.check(["train"], ["val"])
    assert report["train"]["images"] == train_images and 0 < report["train"]["with_foreground"] < train_images
