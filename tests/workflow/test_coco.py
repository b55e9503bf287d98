"""MS COCO as a dataset type: category ids to class indices, semantic masks, labels, the make_coco stage and its rule.

Every answer is worked out by hand on a COCO-format file the test writes: three categories with ids 1, 5 and 90
(listed out of order), polygon, uncompressed-RLE and compressed-RLE annotations, an overlapping pair, crowd regions
and images without a non-crowd object. A polygon corner (x, y) to (x1, y1) covers columns x..x1-1 and rows y..y1-1.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools import mask as mask_utils

from conftest import REPO, TINY, planned_jobs, snakemake
from wsss_steps import make_coco
from wsss_steps.lib.config import ConfigError, validate_config
from wsss_steps.data import VOCLayout
from wsss_steps.data.coco import (MARKER, category_indices, check_classes, class_names, image_labels,
                                  semantic_mask)
from wsss_steps.lib.runtime import run_stage

CATEGORIES = [{"id": 90, "name": "kite", "supercategory": "outdoor"},
              {"id": 1, "name": "cat", "supercategory": "animal"},
              {"id": 5, "name": "dog", "supercategory": "animal"}]
CLASSES = ["background", "cat", "dog", "kite"]
INDEX_OF = {1: 1, 5: 2, 90: 3}
TRAIN_ID, VAL_ID = "COCO_train2014_000000000011", "COCO_val2014_000000000021"


def rect(x0, y0, x1, y1):
    """A rectangle as one COCO polygon."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def uncompressed_rle(mask: np.ndarray) -> dict:
    """A boolean mask as COCO's uncompressed RLE: run lengths in column-major order, starting with a run of zeros."""
    flat = mask.T.reshape(-1).astype(int)
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def block(shape, rows, cols) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


# Train image 11 (8 x 10): a large cat, a smaller dog over it (listed first, so the file's order would bury it), a
# crowd of kites at the bottom right partly under the dog.
TRAIN_ANNS = [
    {"id": 101, "image_id": 11, "category_id": 5, "iscrowd": 0, "segmentation": [rect(3, 2, 8, 5)]},
    {"id": 102, "image_id": 11, "category_id": 1, "iscrowd": 0, "segmentation": [rect(0, 0, 6, 6)]},
    {"id": 103, "image_id": 11, "category_id": 90, "iscrowd": 1,
     "segmentation": uncompressed_rle(block((8, 10), slice(4, 8), slice(6, 10)))},
    # image 13 has only a crowd: no non-crowd object, so it is left out like image 12, which has nothing
    {"id": 104, "image_id": 13, "category_id": 1, "iscrowd": 1,
     "segmentation": uncompressed_rle(block((6, 6), slice(0, 3), slice(0, 3)))},
]
# The train mask by hand: cat rows 0-5 x cols 0-5, dog rows 2-4 x cols 3-7 on top, crowd (255) on rows 4-7 x cols
# 6-9 except row 4, cols 6-7, which the dog covers.
TRAIN_MASK = np.array([
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
    [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
    [1, 1, 1, 2, 2, 2, 2, 2, 0, 0],
    [1, 1, 1, 2, 2, 2, 2, 2, 0, 0],
    [1, 1, 1, 2, 2, 2, 2, 2, 255, 255],
    [1, 1, 1, 1, 1, 1, 255, 255, 255, 255],
    [0, 0, 0, 0, 0, 0, 255, 255, 255, 255],
    [0, 0, 0, 0, 0, 0, 255, 255, 255, 255],
], np.uint8)


def val_anns():
    """Val image 21 (6 x 8): a kite as compressed RLE, a cat as polygons, the first with only two points."""
    kite = mask_utils.encode(np.asfortranarray(block((6, 8), slice(1, 4), slice(2, 5)).astype(np.uint8)))
    return [{"id": 201, "image_id": 21, "category_id": 90, "iscrowd": 0,
             "segmentation": {"size": [6, 8], "counts": kite["counts"].decode()}},
            {"id": 202, "image_id": 21, "category_id": 1, "iscrowd": 0,
             "segmentation": [[5, 0, 7, 0], rect(5, 4, 8, 6)]}]


VAL_MASK = np.zeros((6, 8), np.uint8)
VAL_MASK[1:4, 2:5] = 3
VAL_MASK[4:6, 5:8] = 1


def write_coco(folder: Path) -> dict:
    """Write the annotation files and JPEGs under ``folder``; return a dataset section for them (root not made)."""
    images = {"train": [(11, 8, 10), (12, 6, 6), (13, 6, 6)], "val": [(21, 6, 8)]}
    anns = {"train": TRAIN_ANNS, "val": val_anns()}
    (folder / "annotations").mkdir(parents=True)
    for part, entries in images.items():
        (folder / f"{part}2014").mkdir()
        listed = []
        for image_id, height, width in entries:
            name = f"COCO_{part}2014_{image_id:012d}.jpg"
            Image.new("RGB", (width, height), (40 * image_id % 255, 90, 160)).save(folder / f"{part}2014" / name)
            listed.append({"id": image_id, "file_name": name, "height": height, "width": width})
        (folder / "annotations" / f"instances_{part}2014.json").write_text(json.dumps(
            {"images": listed, "annotations": anns[part], "categories": CATEGORIES}))
    return {"name": "coco-test", "root": str(folder.parent / "coco-voc"), "classes": CLASSES, "ignore_index": 255,
            "train_split": "train", "val_split": "val", "labels_file": "labels.json",
            "coco": {"train_annotations": str(folder / "annotations" / "instances_train2014.json"),
                     "train_images": str(folder / "train2014"),
                     "val_annotations": str(folder / "annotations" / "instances_val2014.json"),
                     "val_images": str(folder / "val2014")}}


@pytest.fixture
def dataset(tmp_path):
    return write_coco(tmp_path / "coco")


def tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def test_category_ids_map_to_indices_1_to_k_in_id_order():
    assert category_indices(CATEGORIES) == INDEX_OF
    assert class_names(CATEGORIES) == CLASSES


def test_smaller_objects_stay_on_top_and_crowds_are_ignored_only_where_no_object_is():
    train = [a for a in TRAIN_ANNS if a["image_id"] == 11]
    np.testing.assert_array_equal(semantic_mask(train, 8, 10, INDEX_OF), TRAIN_MASK)
    np.testing.assert_array_equal(semantic_mask(val_anns(), 6, 8, INDEX_OF), VAL_MASK)
    assert semantic_mask([], 3, 4, INDEX_OF).tolist() == [[0] * 4] * 3


def test_image_labels_are_the_non_crowd_classes():
    assert image_labels([a for a in TRAIN_ANNS if a["image_id"] == 11], INDEX_OF) == [1, 2]  # the kite crowd is not
    assert image_labels([a for a in TRAIN_ANNS if a["image_id"] == 13], INDEX_OF) == []
    assert image_labels(val_anns(), INDEX_OF) == [1, 3]


@pytest.mark.parametrize("classes, message", [
    (["background", "cat", "dog", "kyte"], "entry 3 is 'kyte' where x.json has 'kite'"),
    (["background", "dog", "cat", "kite"], "entry 1 is 'dog' where x.json has 'cat'"),
    (["background", "cat", "dog"], "entry 3 is missing where x.json has 'kite'"),
    (["background", "cat", "dog", "kite", "boat"], "entry 4 'boat' has no category in x.json"),
    (["bg", "cat", "dog", "kite"], "entry 0 is 'bg' where the first entry must be 'background'"),
])
def test_a_class_list_that_differs_from_the_categories_names_the_key_and_the_first_difference(classes, message):
    with pytest.raises(ConfigError) as caught:
        check_classes(classes, CATEGORIES, "x.json")
    text = str(caught.value)
    assert text.startswith(f"config key 'dataset.classes': {message}; list background, then the 3 category names "
                           f"of x.json in category-id order.")
    check_classes(CLASSES, CATEGORIES, "x.json")


def test_the_stage_writes_a_voc_tree_that_voclayout_reads(dataset, tmp_path):
    (Path(dataset["root"]) / "ImageSets" / "Segmentation").mkdir(parents=True)  # as Snakemake makes it before the job
    log = tmp_path / "make_coco.log"
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.make_coco", "--dataset", json.dumps(dataset),
                           "--log", str(log)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"wrote 1 train, 1 val images to {dataset['root']}" in log.read_text()
    root = Path(dataset["root"])
    assert (root / MARKER).is_file() and not (tmp_path / ".coco-voc.tmp").exists()
    lists = root / "ImageSets" / "Segmentation"
    assert sorted(p.name for p in lists.iterdir()) == ["train.txt", "val.txt"]
    assert (lists / "train.txt").read_text() == f"{TRAIN_ID}\n"  # images 12 (nothing) and 13 (a crowd) left out
    assert (lists / "val.txt").read_text() == f"{VAL_ID}\n"
    assert sorted(p.name for p in (root / "JPEGImages").iterdir()) == [f"{TRAIN_ID}.jpg", f"{VAL_ID}.jpg"]
    for image_id, part in ((TRAIN_ID, "train"), (VAL_ID, "val")):
        link = root / "JPEGImages" / f"{image_id}.jpg"
        original = tmp_path / "coco" / f"{part}2014" / f"{image_id}.jpg"
        assert link.is_symlink() and os.readlink(link) == str(original)  # a link to the COCO file, not a copy
    assert json.loads((root / "labels.json").read_text()) == {TRAIN_ID: ["cat", "dog"], VAL_ID: ["cat", "kite"]}

    layout = VOCLayout.from_config(dataset)
    np.testing.assert_array_equal(layout.mask(TRAIN_ID), TRAIN_MASK)
    np.testing.assert_array_equal(layout.mask(VAL_ID), VAL_MASK)
    assert layout.label_source() == "labels_file"
    assert layout.label_table("train") == {TRAIN_ID: [1, 2]} and layout.label_table("val") == {VAL_ID: [1, 3]}
    from_masks = VOCLayout.from_config({k: v for k, v in dataset.items() if k != "labels_file"})
    assert from_masks.label_table("train") == {TRAIN_ID: [1, 2]} and from_masks.label_table("val") == {VAL_ID: [1, 3]}
    assert layout.check(["train"], ["train", "val"]) == {"train": {"images": 1, "with_foreground": 1, "with_mask": 1,
                                                                   "classes_without_images": ["kite"]},
                                                         "val": {"images": 1, "with_mask": 1}}

    # a second run replaces the tree it wrote, and leaves the COCO images where they were
    assert make_coco.main(["--dataset", json.dumps(dataset)]) is None
    assert (lists / "train.txt").read_text() == f"{TRAIN_ID}\n"
    assert (tmp_path / "coco" / "train2014" / f"{TRAIN_ID}.jpg").is_file()


def test_a_root_holding_other_files_is_refused_and_left_untouched(dataset, tmp_path):
    root = Path(dataset["root"])
    (root / "JPEGImages").mkdir(parents=True)
    (root / "JPEGImages" / "mine.jpg").write_bytes(b"not the workflow's")
    before = tree_digest(root)
    log = tmp_path / "refused.log"
    assert run_stage(make_coco.main, ["--dataset", json.dumps(dataset), "--log", str(log)]) == 1
    assert (f"ERROR {root}: this folder was not written by make_coco (no {MARKER} file in it), so it is left "
            f"untouched; set dataset.root to a new folder for the converted COCO tree.") in log.read_text()
    assert tree_digest(root) == before and not (tmp_path / ".coco-voc.tmp").exists()


def test_a_missing_annotation_file_or_a_class_mismatch_stops_before_writing(dataset, tmp_path):
    missing = json.loads(json.dumps(dataset))
    missing["coco"]["val_annotations"] = str(tmp_path / "nowhere.json")
    with pytest.raises(ConfigError, match=rf"config key 'dataset\.coco\.val_annotations': {tmp_path}/nowhere\.json: "
                                          r"COCO annotation file not found"):
        make_coco.main(["--dataset", json.dumps(missing)])
    wrong = dict(dataset, classes=["background", "cat", "dog", "kyte"])
    with pytest.raises(ConfigError, match=r"entry 3 is 'kyte' where .*instances_train2014\.json has 'kite'"):
        make_coco.main(["--dataset", json.dumps(wrong)])
    assert not Path(dataset["root"]).exists() and not (tmp_path / ".coco-voc.tmp").exists()


def test_generate_and_coco_together_are_refused(dataset):
    config = yaml.safe_load(TINY.read_text())
    config["dataset"]["coco"] = dataset["coco"]
    with pytest.raises(ConfigError, match=r"config key 'dataset\.coco': dataset\.generate and dataset\.coco both"):
        validate_config(config)


def test_a_dry_run_plans_make_coco_before_the_stages_and_refuses_a_foreign_root(dataset, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = yaml.safe_load(TINY.read_text())
    config["dataset"] = dict(dataset, root="data/coco-voc")
    config["run_name"] = "coco-dry-run"
    path = tmp_path / "coco.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", configfiles=(path,))
    assert planned_jobs(proc.stdout) == {"all": 1, "make_coco": 1, "train_classifier": 1, "extract_cams": 1,
                                         "make_affinity_labels": 1, "train_affinity": 1, "random_walk": 1,
                                         "train_segmentation": 1, "evaluate": 1, "figures": 1}
    assert proc.stdout.index("rule make_coco:") < proc.stdout.index("rule train_classifier:")
    assert not (workdir / "data").exists()

    (workdir / "data" / "coco-voc").mkdir(parents=True)
    (workdir / "data" / "coco-voc" / "notes.txt").write_text("mine")
    refused = snakemake(workdir, "-n", configfiles=(path,), check=False)
    assert refused.returncode != 0
    assert "config key 'dataset.coco': data/coco-voc: this folder was not written by make_coco" in refused.stdout
    assert (workdir / "data" / "coco-voc" / "notes.txt").read_text() == "mine"


COCO14 = (REPO / "configs" / "presets" / "voc12_gpu.yaml", REPO / "configs" / "datasets" / "coco14.yaml")
STAGES = {"all", "train_classifier", "extract_cams", "make_affinity_labels", "train_affinity", "random_walk",
          "train_segmentation", "evaluate", "figures"}


def test_the_coco14_dataset_file_plans_the_pipeline_on_the_real_coco_files():
    coco = yaml.safe_load(COCO14[1].read_text())["dataset"]["coco"]
    missing = [path for path in coco.values() if not (REPO / path).exists()]
    if missing:
        pytest.skip(f"{missing[0]} not present (the real MS COCO 2014 files, which configs/datasets/coco14.yaml "
                    f"reads relative to the repository root)")
    proc = snakemake(REPO, "-n", "--config", "device=auto", configfiles=COCO14)  # device: cuda needs a GPU
    expected = STAGES | ({"make_coco"} if not (REPO / "data" / "coco14-voc").exists() else set())
    assert set(planned_jobs(proc.stdout)) <= expected
