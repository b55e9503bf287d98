"""PASCAL VOC 2012 with the SBD masks (Hariharan et al., ICCV 2011), as torchvision downloads them, read for make_voc_sbd.

``<source>/VOCdevkit/VOC2012/`` holds JPEGImages, Annotations, SegmentationClass (palette PNGs, 255 on object borders)
and ImageSets/Segmentation/{train,val}.txt (torchvision's VOCSegmentation); ``<source>/sbd/`` holds cls/<id>.mat
(a struct GTcls whose field Segmentation is the class-index mask) and {train,val}.txt (torchvision's SBDataset).
train_aug, psa's and irn's training set, is the SBD train and val images and VOC's train images, less VOC's val
images: 10,582 ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..lib.config import ConfigError
from .synthetic import NotOurs, owned_or_absent

MARKER = ".wsss-voc-sbd-dataset"
VOC = Path("VOCdevkit") / "VOC2012"
SBD = Path("sbd")


def read_ids(path) -> list[str]:
    """The ids of a list file, one per line."""
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def train_aug(sbd_train, sbd_val, voc_train, voc_val) -> list[str]:
    """psa's and irn's train_aug: (SBD train | SBD val | VOC train) - VOC val, sorted."""
    return sorted((set(sbd_train) | set(sbd_val) | set(voc_train)) - set(voc_val))


def sbd_mask(mat: dict) -> np.ndarray:
    """The class-index mask of an SBD cls/<id>.mat as scipy.io.loadmat reads it: GTcls.Segmentation
    (torchvision/datasets/sbd.py, SBDataset._get_segmentation_target)."""
    return np.asarray(mat["GTcls"][0]["Segmentation"][0], dtype=np.uint8)


def check_source(source) -> None:
    """Raise ConfigError naming the first file or folder of VOC or SBD that is missing under ``source``."""
    for needed in (VOC / "JPEGImages", VOC / "Annotations", VOC / "SegmentationClass",
                   VOC / "ImageSets/Segmentation/train.txt", VOC / "ImageSets/Segmentation/val.txt",
                   SBD / "cls", SBD / "train.txt", SBD / "val.txt"):
        if not (Path(source) / needed).exists():
            raise ConfigError(f"config key 'dataset.voc_sbd.source': {Path(source) / needed} not found; set "
                              f"dataset.voc_sbd.download: true to download VOC 2012 and SBD into {source}, or point "
                              "source at the folder that holds VOCdevkit/ and sbd/.")


def refuse_foreign_root(root):
    """Raise NotOurs naming ``root`` when it holds anything make_voc_sbd did not write."""
    if not owned_or_absent(root, MARKER):
        raise NotOurs(f"{root}: this folder was not written by make_voc_sbd (no {MARKER} file in it), so it is left "
                      f"untouched; set dataset.root to a new folder for the converted VOC 2012 + SBD tree.")
