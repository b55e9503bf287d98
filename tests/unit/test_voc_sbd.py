"""PASCAL VOC 2012 with the SBD masks as one tree (make_voc_sbd): known answers, and the stage on a tiny copy of both
written in the layout torchvision downloads them in (there is no network here; the download calls are torchvision's)."""

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from wsss_steps import make_voc_sbd
from wsss_steps.data import VOCLayout
from wsss_steps.data.label_png import save_label_png
from wsss_steps.data.synthetic import NotOurs
from wsss_steps.data.voc_sbd import MARKER, sbd_mask, train_aug
from wsss_steps.lib.config import ConfigError

CLASSES = ["background", "aeroplane", "bicycle"]


def test_train_aug_is_sbd_and_voc_train_less_voc_val():
    # psa's and irn's train_aug.txt: 10,582 = |SBD train + SBD val + VOC train - VOC val|
    assert train_aug(["a", "b", "x"], ["c", "v"], ["a", "d"], ["v", "w"]) == ["a", "b", "c", "d", "x"]


def write_sbd_mat(path, mask):
    """An SBD cls/<id>.mat: a struct GTcls with Segmentation (and Boundaries, CategoriesPresent) as SBD ships it."""
    savemat(str(path), {"GTcls": {"Segmentation": mask.astype(np.uint8), "Boundaries": np.zeros((1, 1)),
                                  "CategoriesPresent": np.unique(mask[mask > 0]).astype(np.uint8)}})


def test_an_sbd_mat_gives_its_segmentation(tmp_path):
    from scipy.io import loadmat

    mask = np.array([[0, 1], [2, 2]])
    write_sbd_mat(tmp_path / "x.mat", mask)
    assert sbd_mask(loadmat(str(tmp_path / "x.mat"))).tolist() == mask.tolist()


def fake_source(folder):
    """VOC ids a (train), b (val), with VOC masks; SBD ids b (its val, VOC's val too), c (its train), with .mat masks."""
    voc, sbd = folder / "VOCdevkit" / "VOC2012", folder / "sbd"
    for sub in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    (sbd / "cls").mkdir(parents=True, exist_ok=True)
    for image_id in "abc":
        Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(voc / "JPEGImages" / f"{image_id}.jpg")
        (voc / "Annotations" / f"{image_id}.xml").write_text("<annotation/>")
    voc_mask = np.zeros((6, 8), np.uint8)
    voc_mask[1:4, 1:4], voc_mask[0, 1:4] = 1, 255  # a class with VOC's 255 border
    for image_id in "ab":
        save_label_png(voc / "SegmentationClass" / f"{image_id}.png", voc_mask)
    sbd_mask_c = np.zeros((6, 8), np.uint8)
    sbd_mask_c[2:5, 2:6] = 2
    write_sbd_mat(sbd / "cls" / "c.mat", sbd_mask_c)
    write_sbd_mat(sbd / "cls" / "b.mat", np.full((6, 8), 2))  # VOC's own mask of b wins
    (voc / "ImageSets/Segmentation/train.txt").write_text("a\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("b\n")
    (sbd / "train.txt").write_text("c\n")
    (sbd / "val.txt").write_text("b\n")
    return folder


def dataset_of(tmp_path, **block):
    return {"name": "voc", "root": str(tmp_path / "voc-aug"), "classes": CLASSES, "ignore_index": 255,
            "train_split": "train_aug", "score_split": "train", "val_split": "val", "mask_dir": "SegmentationClassAug",
            "voc_sbd": {"source": str(tmp_path / "download"), **block}}


class Log:
    def info(self, *args):
        pass


def test_the_stage_writes_one_tree_with_train_aug_voc_masks_first_and_replaces_only_its_own(tmp_path):
    fake_source(tmp_path / "download")
    dataset = dataset_of(tmp_path)
    assert make_voc_sbd.write_tree(dataset["root"], dataset, Log()) == {"train_aug": 2, "train": 1, "val": 1}
    layout = VOCLayout.from_config(dataset)
    assert layout.ids("train_aug") == ["a", "c"] and layout.ids("train") == ["a"] and layout.ids("val") == ["b"]
    assert layout.mask("a")[0, 2] == 255 and layout.mask("a")[2, 2] == 1  # VOC's mask, border kept
    assert layout.mask("b")[2, 2] == 1  # VOC's mask, not SBD's
    assert layout.mask("c")[3, 3] == 2 and layout.mask("c")[0, 0] == 0  # SBD's
    assert (layout.root / "JPEGImages" / "c.jpg").is_symlink() and (layout.root / "Annotations" / "a.xml").is_symlink()
    assert (layout.root / MARKER).is_file()
    assert make_voc_sbd.write_tree(dataset["root"], dataset, Log())["train_aug"] == 2  # its own tree: replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(NotOurs, match="not written by make_voc_sbd"):
        make_voc_sbd.write_tree(mine, {**dataset, "root": str(mine)}, Log())
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_missing_source_names_the_key_and_download_asks_torchvision_for_what_is_missing(tmp_path, monkeypatch):
    dataset = dataset_of(tmp_path)
    with pytest.raises(ConfigError, match=r"dataset.voc_sbd.source.*VOCdevkit/VOC2012/JPEGImages not found"):
        make_voc_sbd.write_tree(dataset["root"], dataset, Log())
    calls = []

    def fake(name):
        def build(root, **kwargs):
            calls.append((name, root, kwargs))
            fake_source(tmp_path / "download") if not (tmp_path / "download" / "sbd").exists() else None
        return build

    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "VOCSegmentation", fake("voc"))
    monkeypatch.setattr(torchvision.datasets, "SBDataset", fake("sbd"))
    dataset = dataset_of(tmp_path, download=True)
    assert make_voc_sbd.write_tree(dataset["root"], dataset, Log())["train_aug"] == 2
    # VOC's call wrote both fakes, so SBD, present by then, is not downloaded
    assert calls == [("voc", str(tmp_path / "download"), {"year": "2012", "image_set": "trainval", "download": True})]
    calls.clear()
    make_voc_sbd.write_tree(dataset["root"], dataset, Log())
    assert calls == []  # both there: nothing downloaded again
    import shutil

    shutil.rmtree(tmp_path / "download" / "sbd")  # SBD missing: only SBD is downloaded, into <source>/sbd
    make_voc_sbd.write_tree(dataset["root"], dataset, Log())
    assert calls == [("sbd", str(tmp_path / "download" / "sbd"),
                      {"image_set": "train", "mode": "segmentation", "download": True})]
