"""Every file a stage reads decides whether it reruns, keyed on what the stage consumes (wsss_steps/data/manifest.py).

One finished tiny run on a user-owned VOC-layout tree (no generate block); each case starts from a state where
`snakemake -n` plans nothing (`--touch` marks the outputs up to date), changes one thing in the tree and checks
what the dry run plans.
"""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import planned_jobs, snakemake
from fake_voc import write_fake_voc
from test_data_safety import plain_config
from wsss_steps.data.label_png import load_label_png, save_label_png

TRAINING = {"train_classifier", "extract_cams", "make_affinity_labels", "train_affinity", "random_walk",
            "train_segmentation"}
SCORING = {"evaluate", "figures", "all"}


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("cache_keys")
    root = base / "VOC"
    ids = write_fake_voc(root)
    work = base / "work"
    work.mkdir()
    config = plain_config(base, root)
    snakemake(work, "--cores", "2", configfiles=(config,))
    from wsss_steps.data.manifest import manifest_digest

    folder = next((work / "results" / "manifests").glob("*/"))
    run_with = manifest_digest([folder / f"{name}.json" for name in ("images", "labels", "masks")])
    return work, config, root, ids, run_with


def plan(work, config, *extra):
    return planned_jobs(snakemake(work, "-n", *extra, configfiles=(config,)).stdout)


def settle(work, config, *extra):
    """Mark every output up to date and check that nothing is planned."""
    snakemake(work, "--cores", "1", "--touch", *extra, configfiles=(config,))
    assert plan(work, config, *extra) == {}


def test_touching_every_file_of_the_dataset_without_changing_it_reruns_nothing(user_run):
    work, config, root, _, _ = user_run
    settle(work, config)
    for path in root.rglob("*"):
        if path.is_file():
            path.touch()
    assert plan(work, config) == {}


def test_val_mask_pixels_that_keep_its_classes_rerun_scoring_only(user_run):
    work, config, root, ids, _ = user_run
    settle(work, config)
    path = root / "SegmentationClass" / f"{ids['val'][0]}.png"
    mask = load_label_png(path).copy()
    classes = set(np.unique(mask).tolist())
    mask[1:5, 1:6] = 0  # 20 pixels to background, which the mask holds already
    assert set(np.unique(mask).tolist()) == classes
    save_label_png(path, mask)
    assert set(plan(work, config)) == SCORING


def test_a_train_image_s_pixels_rerun_the_classifier_and_everything_after(user_run):
    work, config, root, ids, _ = user_run
    settle(work, config)
    path = root / "JPEGImages" / f"{ids['train'][0]}.jpg"
    image = np.asarray(Image.open(path)).copy()
    image[:4, :4] = 255 - image[:4, :4]
    Image.fromarray(image).save(path)
    assert set(plan(work, config)) == TRAINING | SCORING


def test_a_changed_set_of_classes_reruns_the_classifier(user_run):
    work, config, root, ids, _ = user_run
    settle(work, config)
    path = root / "Annotations" / f"{ids['train'][1]}.xml"  # the fake tree's labels come from the annotations
    text = path.read_text()
    name = text.split("<name>")[1].split("</name>")[0]
    path.write_text(text.replace(f"<name>{name}</name>", "<name>sofa</name>" if name != "sofa" else "<name>cow</name>"))
    assert set(plan(work, config)) == TRAINING | SCORING


def test_replaced_backbone_weights_rerun_every_stage_that_loads_them(user_run, tmp_path):
    work, config, _, _, _ = user_run
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"first")
    with_weights = tmp_path / "with_weights.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["backbone"]["weights"] = str(weights)  # planning only: the params trigger is left out
    with_weights.write_text(yaml.safe_dump(settings))
    mtime = ("--rerun-triggers", "mtime")
    settle(work, with_weights, *mtime)
    weights.touch()
    assert plan(work, with_weights, *mtime) == {}
    weights.write_bytes(b"second")
    assert set(plan(work, with_weights, *mtime)) == TRAINING | SCORING
    manifest = json.loads(next((work / "results" / "manifests").glob("*/weights.json")).read_text())
    assert manifest["file"] == str(weights) and len(manifest["sha256"]) == 64


def test_a_weights_file_that_is_not_there_stops_planning_naming_the_key(user_run, tmp_path):
    work, config, _, _, _ = user_run
    settings = yaml.safe_load(config.read_text())
    settings["backbone"]["weights"] = str(tmp_path / "nowhere.pth")
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump(settings))
    proc = snakemake(work, "-n", configfiles=(missing,), check=False)
    assert proc.returncode != 0 and planned_jobs(proc.stdout) == {}
    assert f"config key 'backbone.weights': {tmp_path / 'nowhere.pth'}: file not found" in proc.stdout, \
        proc.stdout[-2000:]


def test_the_manifests_are_rewritten_only_when_their_content_changes(tmp_path):
    from wsss_steps.data import VOCLayout
    from wsss_steps.data.manifest import write_manifests
    from fake_voc import VOC_CLASSES

    root = tmp_path / "VOC"
    ids = write_fake_voc(root)
    layout = VOCLayout(root, VOC_CLASSES)
    paths = write_manifests(tmp_path / "m", layout, ["train", "val"])
    assert set(paths) == {"images", "labels", "masks"}
    stamps = {name: path.stat().st_mtime_ns for name, path in paths.items()}
    labels = json.loads(paths["labels"].read_text())
    assert labels["source"] == "annotations" and set(labels["images"]) == set(ids["train"] + ids["val"])
    for path in root.rglob("*"):
        if path.is_file():
            path.touch()
    write_manifests(tmp_path / "m", layout, ["train", "val"])
    assert {name: path.stat().st_mtime_ns for name, path in paths.items()} == stamps


def test_every_artifact_records_the_digest_of_the_manifests_it_was_planned_with(user_run):
    import h5py

    work, _, _, _, digest = user_run  # the digest of the manifests when the run was made, before the cases changed them
    run = next((work / "results").glob("data-safety-*"))
    for name in ("classifier.weights.h5", "cams_train.h5", "affinity_labels_train.h5", "pseudo_labels_train.h5",
                 "segmentation.weights.h5"):
        with h5py.File(run / name, "r") as store:
            assert store.attrs["dataset_manifest"] == digest, name
    assert json.loads((run / "summary.json").read_text())["dataset_manifest"] == digest
