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


def run_train_classifier(root, tmp_path, classes=VOC_CLASSES, *extra):
    """train_classifier on the tree with the tiny settings: (the completed process, its output path)."""
    dataset = json.dumps({"root": str(root), "classes": list(classes), "ignore_index": 255})
    out = tmp_path / "classifier.weights.h5"
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.train_classifier", "--dataset", dataset,
                           "--backbone", TINY_BACKBONE, "--params", TINY_CLASSIFIER, "--split", "train",
                           "--check-masks", "val", "train", *extra, "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    return proc, out


def train_classifier(root, tmp_path, classes=VOC_CLASSES):
    """train_classifier where it must stop before writing anything."""
    proc, out = run_train_classifier(root, tmp_path, classes)
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


# Round 3: the classes a user writes, the lists and names real datasets have, a full disk.

def test_a_class_list_that_is_not_background_first_stops_at_planning(tree, tmp_path):
    root, _ = tree
    before = tree_digest(root)
    swapped = ["aeroplane", "background", *VOC_CLASSES[2:]]
    work = tmp_path / "work"
    work.mkdir()
    proc = snakemake(work, "-n", configfiles=(plain_config(tmp_path, root, classes=swapped),), check=False)
    assert proc.returncode != 0 and planned_jobs(proc.stdout) == {}, proc.stdout[-3000:]
    assert "config key 'dataset.classes': 'background' is class 1, but class 0 (mask value 0) is the background" \
        in proc.stdout, proc.stdout[-3000:]
    stage = train_classifier(root, tmp_path, classes=swapped)  # the stage run alone stops before training too
    line = last_line(stage.stderr)
    assert stage.returncode == 1 and "ERROR config key 'dataset.classes'" in line, stage.stderr[-3000:]
    assert "epoch" not in stage.stderr
    assert tree_digest(root) == before


def health_of(path) -> dict:
    import h5py

    with h5py.File(path, "r") as store:
        return json.loads(store.attrs["health"])


def drop_val_labels(root, ids):
    """The test's own tree loses every val mask and annotation: a val split without masks or labels."""
    for image_id in ids["val"]:
        (root / "SegmentationClass" / f"{image_id}.png").unlink()
        (root / "Annotations" / f"{image_id}.xml").unlink()


def train_with_health(root, tmp_path):
    return run_train_classifier(root, tmp_path, VOC_CLASSES, "--health-splits", "train", "val")


def test_a_val_split_without_masks_or_annotations_is_left_out_of_the_health_check_before_training(tree, tmp_path):
    root, ids = tree
    drop_val_labels(root, ids)
    before = tree_digest(root)
    proc, out = train_with_health(root, tmp_path)
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-3000:]
    said = "health: 2 of the 2 images of split val have no image-level labels"
    assert said in proc.stderr and proc.stderr.index(said) < proc.stderr.index("epoch"), proc.stderr[-3000:]
    assert set(health_of(out)["figures"]) == {"train"}
    assert "Annotations" not in proc.stderr.split(said)[1] and "ERROR" not in proc.stderr
    assert tree_digest(root) == before


def test_a_val_split_without_masks_runs_to_the_end_and_says_val_is_not_scored(tree, tmp_path):
    root, ids = tree
    drop_val_labels(root, ids)
    before = tree_digest(root)
    work = tmp_path / "work"
    work.mkdir()
    proc = snakemake(work, "--cores", "2", configfiles=(plain_config(tmp_path, root),), check=False)
    assert proc.returncode == 0, proc.stdout[-5000:]
    note = "Note: no image of dataset.val_split 'val' has a mask in"
    assert note in proc.stdout and proc.stdout.index(note) < proc.stdout.index("train_classifier"), proc.stdout[:3000]
    run = work / "results" / f"data-safety-{tmp_path.name}"
    summary = json.loads((run / "summary.json").read_text())
    assert "seg" not in summary and summary["not_scored"] == {"seg": "no image of split val has a mask"}
    assert "| DeepLabV3 on CAM + RW | not scored: no image of split val has a mask |" in (run / "summary.md").read_text()
    log = (run / "logs" / "evaluate.log").read_text()
    assert "segmentation not scored mIoU" in log and "ERROR" not in log
    assert "no image-level labels" in (run / "logs" / "train_classifier.log").read_text()
    assert tree_digest(root) == before


def test_a_class_no_training_image_contains_is_named_not_blamed_on_the_learning_rate(tree, tmp_path):
    root, ids = tree
    before = tree_digest(root)
    proc, out = train_with_health(root, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = health_of(out)
    train_classes = {name for name, row in record["figures"]["train"].items() if row["images"]}
    unseen = sorted(set(VOC_CLASSES[1:]) - train_classes)
    assert unseen, "the fake tree holds every class"
    said = f"no image of the training split train contains the classes {', '.join(repr(n) for n in unseen)}: "
    assert said in proc.stderr and proc.stderr.index(said) < proc.stderr.index("epoch"), proc.stderr[-3000:]
    for name in unseen:
        (mine,) = [w for w in record["warnings"] if w["class"] == name]
        assert mine["check"] == "no_training_image" and "lr" not in mine["setting"], mine
        assert mine["message"].startswith(f"train_classifier: no training image contains class '{name}'")
    assert tree_digest(root) == before


NEAR = {  # what the user's tree has instead of the listed <id>.jpg, and what the sentence names
    "upper-case extension": lambda root, i: (root / "JPEGImages" / f"{i}.jpg").rename(root / "JPEGImages" / f"{i}.JPG"),
    "jpeg extension": lambda root, i: (root / "JPEGImages" / f"{i}.jpg").rename(root / "JPEGImages" / f"{i}.jpeg"),
    "invisible character in the file name": lambda root, i: (root / "JPEGImages" / f"{i}.jpg").rename(
        root / "JPEGImages" / f"{i}\u200b.jpg"),
}


@pytest.mark.parametrize("case", list(NEAR))
def test_a_missing_image_names_the_file_found_under_another_spelling(tree, tmp_path, case):
    root, ids = tree
    image_id = ids["train"][1]
    NEAR[case](root, image_id)
    found = [p.name for p in (root / "JPEGImages").iterdir() if p.name.lower().startswith(image_id.lower())
             and p.name != f"{image_id}.jpg"]
    before = tree_digest(root)
    proc = train_classifier(root, tmp_path)
    line = last_line(proc.stderr)
    assert proc.returncode == 1 and "ERROR" in line and f"{root}/JPEGImages/{image_id}.jpg: image" in line, \
        proc.stderr[-3000:]
    assert f"holds {found[0]!r}" in line and f"rename the file to {image_id}.jpg" in line, line
    assert tree_digest(root) == before


def test_a_list_saved_by_a_windows_editor_reads_as_the_ids_it_shows(tree):
    from wsss_steps.data import VOCLayout

    root, ids = tree
    path = root / "ImageSets" / "Segmentation" / "train.txt"
    text = "\ufeff" + "".join(f"{i}\u200b \r\n" if k == 1 else f"{i}\r\n" for k, i in enumerate(ids["train"]))
    path.write_bytes(text.encode("utf-8"))
    layout = VOCLayout(root, VOC_CLASSES)
    assert layout.ids("train") == ids["train"]
    assert set(layout.label_table("train")) == set(ids["train"])


def test_a_mask_under_another_spelling_is_named_not_silently_unscored(tree):
    from wsss_steps.data import DatasetError, VOCLayout

    root, ids = tree
    image_id = ids["val"][0]
    (root / "SegmentationClass" / f"{image_id}.png").rename(root / "SegmentationClass" / f"{image_id}.PNG")
    with pytest.raises(DatasetError, match=rf"{image_id}\.png: mask not found, but SegmentationClass holds "
                                           rf"'{image_id}\.PNG'.*rename the file to {image_id}\.png"):
        VOCLayout(root, VOC_CLASSES).scored_ids(ids["val"])
    (root / "SegmentationClass" / f"{image_id}.PNG").unlink()  # no mask at all: the image is just not scored
    assert VOCLayout(root, VOC_CLASSES).scored_ids(ids["val"]) == ids["val"][1:]


@pytest.fixture(params=["full disk", "file size limit"])
def small_disk(request, tmp_path):
    """(folder to write into, preexec_fn for the writer): a 256 KiB tmpfs filled to 4 KiB short of full (needs root;
    skipped elsewhere), or a writer whose files may not exceed 4 KiB (ulimit -f), which every machine allows."""
    import resource
    import signal

    folder = tmp_path / "disk"
    folder.mkdir()
    if request.param == "file size limit":
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

        yield folder, limit
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here ({mounted.stderr.decode().strip()}); the file size limit "
                    f"case covers the same code path")
    try:
        import shutil

        (folder / "filler").write_bytes(b"\0" * (shutil.disk_usage(folder).free - 4096))
        yield folder, None
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_stops_the_stage_at_the_first_failed_write(small_disk):
    folder, limit = small_disk
    out = folder / "store.h5"
    script = ("import sys, numpy as np\n"
              "from wsss_steps.lib.artifacts import put_array, write_store\n"
              "from wsss_steps.lib.log import setup_logging\n"
              "from wsss_steps.lib.runtime import run_stage\n"
              "def main(argv):\n"
              "    setup_logging(None)\n"
              "    with write_store(sys.argv[1], {'stage': 'extract_cams'}) as store:\n"
              "        for i in range(40):\n"
              "            print('computing', i, file=sys.stderr, flush=True)\n"
              "            put_array(store, str(i), np.random.default_rng(i).random((2, 40, 40)).astype('float32'))\n"
              "sys.exit(run_stage(main))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=300,
                          preexec_fn=limit)
    line = last_line(proc.stderr)
    assert proc.returncode == 1 and f"ERROR {out}: could not be written, " in line, proc.stderr[-3000:]
    assert "free space and rerun" in line or "raise the limit and rerun" in line
    computed = proc.stderr.count("computing")
    assert 1 <= computed < 10 and "Exception ignored" not in proc.stderr, proc.stderr[-3000:]
    assert sorted(p.name for p in folder.iterdir()) in ([], ["filler"])  # the unfinished file is gone


def test_a_full_disk_under_a_training_stage_is_one_sentence_naming_its_output(tree, tmp_path, small_disk):
    root, _ = tree
    folder, limit = small_disk
    before = tree_digest(root)
    out = folder / "classifier.weights.h5"
    dataset = json.dumps({"root": str(root), "classes": list(VOC_CLASSES), "ignore_index": 255})
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.train_classifier", "--dataset", dataset,
                           "--backbone", TINY_BACKBONE, "--params", TINY_CLASSIFIER, "--split", "train",
                           "--device", "cpu", "--out", str(out)], capture_output=True, text=True, timeout=600,
                          preexec_fn=limit)
    line = last_line(proc.stderr)
    assert proc.returncode == 1 and f"ERROR {out}: could not be written, " in line, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-3000:]
    assert sorted(p.name for p in folder.iterdir()) in ([], ["filler"])
    assert tree_digest(root) == before
