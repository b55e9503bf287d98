"""Stage 0: the Oxford-IIIT Pet dataset as a PASCAL-VOC-layout tree with the species as classes.

It writes at dataset.root: JPEGImages/<name>.jpg as symbolic links to the dataset's images (never copies),
SegmentationClass/<name>.png from the trimaps (cat 1, dog 2, background 0, the border band 255) and the split lists
(train_split: the dataset's trainval list, val_split: its test list). With dataset.oxford_pet.download it first
downloads the dataset into dataset.oxford_pet.source with torchvision (which checks the archives' MD5 sums and
skips what is already there). It writes only into a folder that is new, empty or marked as its own
(``.wsss-oxford-pet-dataset``), builds the tree in a hidden sibling folder and renames it at the end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .data.label_png import save_label_png
from .data.oxford_pet import (MARKER, SPLIT_FILES, check_classes, check_source, read_list, refuse_foreign_root,
                              species_mask)
from .data.synthetic import tree_in_place_of
from .data.voc import DatasetError
from .lib.config import load_params
from .lib.log import command_parser, progress, setup_logging
from .lib.runtime import run_stage


def download(source, log) -> None:
    """The dataset into ``source`` through torchvision's own download (archives checked against its MD5 sums)."""
    from torchvision.datasets import OxfordIIITPet

    log.info("downloading the Oxford-IIIT Pet dataset into %s (torchvision; what is there already is kept)", source)
    for split in SPLIT_FILES.values():
        OxfordIIITPet(str(source), split=split, target_types="segmentation", download=True)


def convert_split(tree: Path, folder: Path, listing: str, ignore_index: int) -> list[str]:
    """Link the images of one list into ``tree`` and write their masks; the names written."""
    names = []
    for name, species in progress(read_list(folder / "annotations" / f"{listing}.txt"), desc=listing):
        image, trimap = folder / "images" / f"{name}.jpg", folder / "annotations" / "trimaps" / f"{name}.png"
        if not image.is_file() or not trimap.is_file():
            raise DatasetError(f"{image if not image.is_file() else trimap}: listed in {listing}.txt but not found; "
                               f"download the dataset again (dataset.oxford_pet.download: true).")
        (tree / "JPEGImages" / f"{name}.jpg").symlink_to(Path(os.path.abspath(image)))
        save_label_png(tree / "SegmentationClass" / f"{name}.png",
                       species_mask(np.asarray(Image.open(trimap)), species, ignore_index), atomic=False)
        names.append(name)
    return names


def write_tree(root, dataset: dict, log) -> dict[str, int]:
    """Write the VOC-layout tree at ``root`` (replacing an earlier make_oxford_pet tree, never a user's); return the
    number of images per split."""
    root = Path(root)
    pet = dataset["oxford_pet"]
    check_classes(dataset["classes"])
    refuse_foreign_root(root)
    if pet.get("download"):
        download(pet["source"], log)
    folder = check_source(pet["source"])
    note = ("written by python -m wsss_steps.make_oxford_pet; it may replace this folder (the images in JPEGImages are "
            "links to the dataset's files)\n")
    with tree_in_place_of(root, MARKER, refuse_foreign_root, note,
                          ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation")) as tree:
        counts = {}
        for part, listing in SPLIT_FILES.items():
            split = dataset.get(f"{part}_split", part)
            names = convert_split(tree, folder, listing, int(dataset.get("ignore_index", 255)))
            (tree / "ImageSets/Segmentation" / f"{split}.txt").write_text("".join(n + "\n" for n in names))
            counts[split] = len(names)
    return counts


def main(argv=None):
    parser = command_parser("make_oxford_pet", __doc__)
    parser.add_argument("--dataset", required=True,
                        help="dataset settings (JSON or YAML file): root, classes (background, cat, dog), "
                             "ignore_index, train_split, val_split and an oxford_pet block with source and download")
    parser.add_argument("--log", help="log file (default: stderr only)")
    args = parser.parse_args(argv)
    log = setup_logging(args.log)
    dataset = load_params(args.dataset)
    if not dataset.get("oxford_pet"):
        parser.error("the dataset settings have no 'oxford_pet' block")
    counts = write_tree(dataset["root"], dataset, log)
    log.info("wrote %s", ", ".join(f"{n} {split}" for split, n in counts.items()) + f" images to {dataset['root']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
