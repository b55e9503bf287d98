"""The Oxford-IIIT Pet dataset (Parkhi et al., CVPR 2012) as torchvision lays it out, read for make_oxford_pet.

``<source>/oxford-iiit-pet/`` holds ``images/<name>.jpg``, ``annotations/trimaps/<name>.png`` (1 pet, 2 background,
3 the unclassified band along the pet's border) and ``annotations/{trainval,test}.txt`` (lines ``<name> <breed id>
<species> <breed number>``, species 1 cat, 2 dog; ``#`` comments). The classes are the two species.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..lib.config import ConfigError
from .synthetic import NotOurs, owned_or_absent

MARKER = ".wsss-oxford-pet-dataset"
FOLDER = "oxford-iiit-pet"
CLASSES = ("background", "cat", "dog")
SPLIT_FILES = {"train": "trainval", "val": "test"}  # the dataset's own split: trainval for training, test to score


def species_mask(trimap: np.ndarray, species: int, ignore_index: int) -> np.ndarray:
    """Class mask from a trimap: pet (1) -> ``species`` (1 cat, 2 dog), background (2) -> 0, border band (3) ->
    ``ignore_index``."""
    mask = np.full(trimap.shape, ignore_index, dtype=np.uint8)
    mask[trimap == 1] = species
    mask[trimap == 2] = 0
    return mask


def read_list(path) -> list[tuple[str, int]]:
    """(image name, species) of each line of an annotation list (``name breed species breed_number``)."""
    out = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 3 or parts[2] not in ("1", "2"):
            raise ConfigError(f"{path}: line {number} is not '<name> <breed> <species 1 or 2> <breed number>': {line!r}")
        out.append((parts[0], int(parts[2])))
    return out


def check_classes(classes) -> None:
    """The dataset's classes must be background, cat, dog (the species, in the dataset's order)."""
    if tuple(classes) != CLASSES:
        raise ConfigError(f"config key 'dataset.classes': {list(classes)}; the Oxford-IIIT Pet species are "
                          f"{list(CLASSES)}, in that order.")


def check_source(source) -> Path:
    """The dataset's folder under ``source``, raising ConfigError naming what is missing."""
    folder = Path(source) / FOLDER
    for needed in ("images", "annotations/trimaps", "annotations/trainval.txt", "annotations/test.txt"):
        if not (folder / needed).exists():
            raise ConfigError(f"config key 'dataset.oxford_pet.source': {folder / needed} not found; set "
                              f"dataset.oxford_pet.download: true to download the dataset into {source}, or point "
                              f"source at the folder that holds {FOLDER}/.")
    return folder


def refuse_foreign_root(root):
    """Raise NotOurs naming ``root`` when it holds anything make_oxford_pet did not write."""
    if not owned_or_absent(root, MARKER):
        raise NotOurs(f"{root}: this folder was not written by make_oxford_pet (no {MARKER} file in it), so it is "
                      f"left untouched; set dataset.root to a new folder for the converted Oxford-IIIT Pet tree.")
