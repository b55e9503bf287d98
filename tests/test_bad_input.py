"""Bad input stops before training with one sentence naming the file, as the last line of the output.

Each case breaks one thing in a small VOC-layout tree and runs what meets it first: the workflow's
planning (split lists) or train_classifier's check of every listed image, label and mask. The tree is
left byte for byte as it was.
"""

import json
import subprocess
import sys

import pytest

from conftest import planned_jobs, snakemake
from fake_voc import VOC_CLASSES, write_fake_voc
from test_data_safety import plain_config, tree_digest

TINY_BACKBONE = json.dumps({"name": "tiny", "output_stride": 8, "weights": None, "width": 8})
TINY_CLASSIFIER = json.dumps({"epochs": 1, "batch_size": 4, "lr": 0.01, "weight_decay": 0.0, "crop_size": 32,
                              "scale_range": [1.0, 1.0]})


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def train_classifier(root, tmp_path, classes=VOC_CLASSES):
    dataset = json.dumps({"root": str(root), "classes": list(classes), "ignore_index": 255})
    out = tmp_path / "classifier.weights.h5"
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.train_classifier", "--dataset", dataset,
                           "--backbone", TINY_BACKBONE, "--params", TINY_CLASSIFIER, "--split", "train",
                           "--check-masks", "val", "train", "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert not out.exists()
    return proc


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "VOC"
    ids = write_fake_voc(root)
    return root, ids


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BREAKS = {
    "truncated JPEG": lambda root, ids: truncate(root / "JPEGImages" / f"{ids['train'][1]}.jpg"),
    "truncated val JPEG": lambda root, ids: truncate(root / "JPEGImages" / f"{ids['val'][0]}.jpg"),
    "zero-byte image": lambda root, ids: (root / "JPEGImages" / f"{ids['train'][0]}.jpg").write_bytes(b""),
    "not an image": lambda root, ids: (root / "JPEGImages" / f"{ids['train'][2]}.jpg").write_text("hello\n"),
    "unreadable mask": lambda root, ids: (root / "SegmentationClass" / f"{ids['val'][1]}.png").write_bytes(b"\x89PNG"),
}
NAMED = {"truncated JPEG": ("JPEGImages", "train", 1), "truncated val JPEG": ("JPEGImages", "val", 0),
         "zero-byte image": ("JPEGImages", "train", 0), "not an image": ("JPEGImages", "train", 2),
         "unreadable mask": ("SegmentationClass", "val", 1)}


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_broken_file_is_named_before_training(tree, tmp_path, case):
    root, ids = tree
    BREAKS[case](root, ids)
    before = tree_digest(root)
    proc = train_classifier(root, tmp_path)
    folder, split, index = NAMED[case]
    suffix = "png" if folder == "SegmentationClass" else "jpg"
    path = root / folder / f"{ids[split][index]}.{suffix}"
    line = last_line(proc.stderr)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"ERROR {path}: the " in line and "cannot be read" in line, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "epoch" not in proc.stderr
    assert tree_digest(root) == before


LIST_BREAKS = {
    "duplicate ids": ("train", lambda ids: ids + [ids[0]], "is listed twice"),
    "id with a space": ("train", lambda ids: [ids[0] + " extra", *ids[1:]], "is not one image id"),
    "id in another folder": ("val", lambda ids: ["../x", *ids], "names a file outside JPEGImages"),
}


@pytest.mark.parametrize("case", list(LIST_BREAKS))
def test_a_bad_split_list_stops_the_workflow_at_planning(tree, tmp_path, case):
    root, ids = tree
    split, change, words = LIST_BREAKS[case]
    lines = change(list(ids[split]))
    (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(f"{i}\n" for i in lines))
    before = tree_digest(root)
    work = tmp_path / "work"
    work.mkdir()
    proc = snakemake(work, "--cores", "2", configfiles=(plain_config(tmp_path, root),), check=False)
    assert proc.returncode != 0 and planned_jobs(proc.stdout) == {}
    assert f"{root}/ImageSets/Segmentation/{split}.txt, line" in proc.stdout and words in proc.stdout, \
        proc.stdout[-3000:]
    assert tree_digest(root) == before
    stage = train_classifier(root, tmp_path)  # the stage run alone says the same, as its last line
    assert words in last_line(stage.stderr) and "ERROR" in last_line(stage.stderr), stage.stderr[-3000:]


def test_classes_that_disagree_with_the_annotations_are_named(tree, tmp_path):
    root, _ = tree
    proc = train_classifier(root, tmp_path, classes=["background", "aeroplane", "bicycle"])
    line = last_line(proc.stderr)
    assert proc.returncode == 1 and "ERROR" in line and "unknown class name" in line, proc.stderr[-3000:]
    assert f"{root}/Annotations/" in line
