"""MS COCO instance annotations as VOC-layout pieces: class indices, semantic masks, image-level labels.

The make_coco stage uses these to write a PASCAL-VOC-layout tree (JPEGImages linked to the COCO images,
SegmentationClass palette PNGs, ImageSets/Segmentation lists) that the rest of the workflow reads through VOCLayout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from ..lib.config import ConfigError
from .synthetic import NotOurs, owned_or_absent

# Written first into every tree make_coco writes: it replaces only a folder that carries it.
MARKER = ".wsss-coco-dataset"


def category_indices(categories) -> dict[int, int]:
    """COCO category id -> class index 1..K, in ascending category-id order (0 is background)."""
    return {cat["id"]: index for index, cat in enumerate(sorted(categories, key=lambda c: c["id"]), start=1)}


def class_names(categories) -> list[str]:
    """Class names by class index: background, then the category names in ascending category-id order."""
    return ["background"] + [cat["name"] for cat in sorted(categories, key=lambda c: c["id"])]


def annotation_rle(ann: dict, height: int, width: int):
    """One annotation's segmentation (polygons, uncompressed or compressed RLE) as a compressed RLE, or None if empty."""
    segm = ann["segmentation"]
    if isinstance(segm, list):
        # fewer than 3 points enclose nothing, and pycocotools reads a 4-number first polygon as a box
        polygons = [poly for poly in segm if len(poly) >= 6]
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width)) if polygons else None
    if isinstance(segm["counts"], list):
        return mask_utils.frPyObjects(segm, height, width)
    return segm


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """One annotation's pixels as a boolean (H, W) array."""
    rle = annotation_rle(ann, height, width)
    return np.zeros((height, width), bool) if rle is None else mask_utils.decode(rle).astype(bool)


def semantic_mask(anns, height: int, width: int, index_of: dict[int, int], ignore_index: int = 255) -> np.ndarray:
    """uint8 (H, W) class-index mask: objects painted largest first (smaller ones stay on top), crowd regions
    ``ignore_index`` where no object is, background 0."""
    mask = np.zeros((height, width), np.uint8)
    objects = []
    for ann in anns:
        rle = annotation_rle(ann, height, width)
        if rle is None:
            continue
        if ann.get("iscrowd", 0):
            mask[mask_utils.decode(rle).astype(bool)] = ignore_index
        else:
            objects.append((int(mask_utils.area(rle)), index_of[ann["category_id"]], rle))
    for _area, index, rle in sorted(objects, key=lambda item: -item[0]):  # stable: equal areas keep the file's order
        mask[mask_utils.decode(rle).astype(bool)] = index
    return mask


def image_labels(anns, index_of: dict[int, int]) -> list[int]:
    """Sorted class indices of the image's non-crowd annotations (its image-level labels)."""
    return sorted({index_of[ann["category_id"]] for ann in anns if not ann.get("iscrowd", 0)})


def annotations_by_image(annotations) -> dict[int, list[dict]]:
    """COCO image id -> its annotations, in the file's order."""
    grouped: dict[int, list[dict]] = {}
    for ann in annotations:
        grouped.setdefault(ann["image_id"], []).append(ann)
    return grouped


def check_classes(classes, categories, source) -> None:
    """Raise ConfigError naming dataset.classes and the first entry that differs from ``source``'s categories."""
    expected = class_names(categories)
    for position in range(max(len(classes), len(expected))):
        given = classes[position] if position < len(classes) else None
        wanted = expected[position] if position < len(expected) else None
        if given == wanted:
            continue
        rule = f"list background, then the {len(expected) - 1} category names of {source} in category-id order"
        if given is None:
            raise ConfigError(f"config key 'dataset.classes': entry {position} is missing where {source} has "
                              f"'{wanted}'; {rule}.")
        if wanted is None:
            raise ConfigError(f"config key 'dataset.classes': entry {position} '{given}' has no category in {source}; "
                              f"{rule}.")
        where = "the first entry must be" if position == 0 else f"{source} has"
        raise ConfigError(f"config key 'dataset.classes': entry {position} is '{given}' where {where} '{wanted}'; "
                          f"{rule}.")


def refuse_foreign_root(root):
    """Raise NotOurs naming ``root`` when it holds anything make_coco did not write."""
    if not owned_or_absent(root, MARKER):
        raise NotOurs(f"{root}: this folder was not written by make_coco (no {MARKER} file in it), so it is left "
                      f"untouched; set dataset.root to a new folder for the converted COCO tree.")


def check_sources(coco: dict):
    """Raise ConfigError naming the first annotation file or image folder of dataset.coco that is missing."""
    for key in ("train_annotations", "train_images", "val_annotations", "val_images"):
        path = Path(coco[key])
        found = path.is_file() if key.endswith("annotations") else path.is_dir()
        if not found:
            what = "annotation file" if key.endswith("annotations") else "image folder"
            raise ConfigError(f"config key 'dataset.coco.{key}': {path}: COCO {what} not found; download it or "
                              f"point the key at it.")
