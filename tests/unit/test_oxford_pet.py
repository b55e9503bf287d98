"""The Oxford-IIIT Pet dataset converted into the VOC layout (make_oxford_pet): known answers on tiny arrays, and the
stage on a tiny copy of the dataset written in torchvision's layout (there is no network here; the download call is
torchvision's own)."""

import numpy as np
import pytest
from PIL import Image

import yaml

from conftest import TINY
from wsss_steps import make_oxford_pet
from wsss_steps.data import VOCLayout
from wsss_steps.data.oxford_pet import MARKER, read_list, species_mask
from wsss_steps.data.synthetic import NotOurs
from wsss_steps.lib.config import ConfigError, validate_config

# torchvision's OxfordIIITPet reads annotations/<split>.txt lines "<image> <class id> <species> <breed id>" and
# trimaps with 1 = pet, 2 = background, 3 = border (torchvision/datasets/oxford_iiit_pet.py, _load_info)
LISTS = {"trainval": ["# Image CLASS-ID SPECIES BREED ID", "Abyssinian_1 1 1 1", "american_bulldog_10 2 2 1"],
         "test": ["Bengal_3 6 1 6"]}


def test_a_trimap_gives_the_species_on_the_pet_background_elsewhere_and_ignore_on_the_border():
    trimap = np.array([[2, 2, 3], [3, 1, 1], [2, 3, 1]], dtype=np.uint8)
    assert species_mask(trimap, 2, 255).tolist() == [[0, 0, 255], [255, 2, 2], [0, 255, 2]]
    assert species_mask(trimap, 1, 254)[1].tolist() == [254, 1, 1]


def test_a_list_gives_each_image_s_species_and_a_bad_line_is_named(tmp_path):
    (tmp_path / "trainval.txt").write_text("\n".join(LISTS["trainval"]) + "\n")
    assert read_list(tmp_path / "trainval.txt") == [("Abyssinian_1", 1), ("american_bulldog_10", 2)]
    (tmp_path / "bad.txt").write_text("Abyssinian_1 1 7 1\n")
    with pytest.raises(ConfigError, match=r"bad.txt: line 1 is not"):
        read_list(tmp_path / "bad.txt")


def fake_source(folder):
    """A tiny Oxford-IIIT Pet as torchvision unpacks it: images, trimaps and the two lists."""
    pet = folder / "oxford-iiit-pet"
    (pet / "images").mkdir(parents=True)
    (pet / "annotations" / "trimaps").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, lines in LISTS.items():
        (pet / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
        for line in lines[1:] if split == "trainval" else lines:
            name = line.split()[0]
            Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(pet / "images" / f"{name}.jpg")
            trimap = np.full((12, 16), 2, np.uint8)
            trimap[3:9, 4:12], trimap[3, 4:12] = 1, 3
            Image.fromarray(trimap).save(pet / "annotations" / "trimaps" / f"{name}.png")
    return folder


def dataset_of(tmp_path, **pet):
    return {"name": "pets", "root": str(tmp_path / "pets-voc"), "classes": ["background", "cat", "dog"],
            "ignore_index": 255, "train_split": "train", "val_split": "val",
            "oxford_pet": {"source": str(tmp_path / "download"), **pet}}


class Log:
    def info(self, *args):
        pass


def test_the_stage_writes_a_voc_tree_that_voclayout_reads_and_replaces_only_its_own(tmp_path):
    fake_source(tmp_path / "download")
    dataset = dataset_of(tmp_path)
    assert make_oxford_pet.write_tree(dataset["root"], dataset, Log()) == {"train": 2, "val": 1}
    layout = VOCLayout.from_config(dataset)
    assert layout.ids("train") == ["Abyssinian_1", "american_bulldog_10"] and layout.ids("val") == ["Bengal_3"]
    assert layout.image_labels("american_bulldog_10") == [2] and layout.image_labels("Bengal_3") == [1]
    mask = layout.mask("Abyssinian_1")
    assert mask[5, 6] == 1 and mask[0, 0] == 0 and mask[3, 6] == 255
    link = layout.root / "JPEGImages" / "Abyssinian_1.jpg"
    assert link.is_symlink() and link.resolve() == (tmp_path / "download" / "oxford-iiit-pet" / "images" / "Abyssinian_1.jpg")
    assert (layout.root / MARKER).is_file()
    assert make_oxford_pet.write_tree(dataset["root"], dataset, Log()) == {"train": 2, "val": 1}  # its own: replaced
    # a root with a user's files is left untouched
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(NotOurs, match="not written by make_oxford_pet"):
        make_oxford_pet.write_tree(other, {**dataset, "root": str(other)}, Log())
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_a_missing_dataset_names_the_key_and_download_asks_torchvision_for_both_splits(tmp_path, monkeypatch):
    dataset = dataset_of(tmp_path)
    with pytest.raises(ConfigError, match=r"dataset.oxford_pet.source.*oxford-iiit-pet/images not found.*download: true"):
        make_oxford_pet.write_tree(dataset["root"], dataset, Log())
    assert not (tmp_path / "pets-voc").exists()
    calls = []

    class FakePet:  # torchvision.datasets.OxfordIIITPet: records the call, and the files arrive
        def __init__(self, root, split, target_types, download):
            calls.append((root, split, target_types, download))
            if not (tmp_path / "download" / "oxford-iiit-pet").exists():
                fake_source(tmp_path / "download")

    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "OxfordIIITPet", FakePet)
    dataset = dataset_of(tmp_path, download=True)
    assert make_oxford_pet.write_tree(dataset["root"], dataset, Log()) == {"train": 2, "val": 1}
    assert calls == [(str(tmp_path / "download"), s, "segmentation", True) for s in ("trainval", "test")]
    with pytest.raises(ConfigError, match=r"dataset.classes.*\['background', 'cat', 'dog'\]"):
        make_oxford_pet.write_tree(dataset["root"], {**dataset, "classes": ["background", "dog", "cat"]}, Log())


def test_one_block_writes_the_dataset():
    config = yaml.safe_load(TINY.read_text())  # a generate block
    config["dataset"]["oxford_pet"] = {"source": "s"}
    with pytest.raises(ConfigError, match=r"dataset.oxford_pet.*dataset.generate and dataset.oxford_pet"):
        validate_config(config)
