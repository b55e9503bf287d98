"""Stage 0: PASCAL VOC 2012 with the SBD masks as one VOC-layout tree with psa's and irn's train_aug split.

It writes at dataset.root: JPEGImages/<id>.jpg and Annotations/<id>.xml as symbolic links to VOC's files (never
copies), SegmentationClassAug/<id>.png for every image of train_aug, train and val (VOC's own mask where VOC has one,
with its 255 borders, else SBD's), and ImageSets/Segmentation/{train_aug,train,val}.txt. With
dataset.voc_sbd.download it first downloads both into dataset.voc_sbd.source with torchvision (VOCSegmentation and
SBDataset: the archives' MD5 sums checked, a whole archive already there not downloaded again). It writes only into
a folder that is new, empty or marked as its own (``.wsss-voc-sbd-dataset``), builds the tree in a hidden sibling
folder and renames it at the end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .data.label_png import save_label_png
from .data.synthetic import tree_in_place_of
from .data.voc import DatasetError
from .data.voc_sbd import MARKER, SBD, VOC, check_source, read_ids, refuse_foreign_root, sbd_mask, train_aug
from .lib.config import load_params
from .lib.log import command_parser, progress, setup_logging
from .lib.runtime import run_stage


def download(source: Path, log) -> None:
    """VOC 2012 trainval and SBD into ``source`` through torchvision's own downloads, each only when missing."""
    from torchvision.datasets import SBDataset, VOCSegmentation

    if not (source / VOC / "SegmentationClass").is_dir():
        log.info("downloading PASCAL VOC 2012 trainval into %s (torchvision)", source)
        VOCSegmentation(str(source), year="2012", image_set="trainval", download=True)
    if not (source / SBD / "cls").is_dir():
        log.info("downloading SBD into %s (torchvision)", source / SBD)
        SBDataset(str(source / SBD), image_set="train", mode="segmentation", download=True)


def link(target: Path, source: Path) -> None:
    if not source.is_file():
        raise DatasetError(f"{source}: needed for {target.name} but not found; download the dataset again "
                           "(dataset.voc_sbd.download: true).")
    target.symlink_to(Path(os.path.abspath(source)))


def write_tree(root, dataset: dict, log) -> dict[str, int]:
    """Write the VOC-layout tree at ``root`` (replacing an earlier make_voc_sbd tree, never a user's); return the
    number of images per split."""
    from scipy.io import loadmat

    root, source = Path(root), Path(dataset["voc_sbd"]["source"])
    refuse_foreign_root(root)
    if dataset["voc_sbd"].get("download"):
        download(source, log)
    check_source(source)
    voc, sbd = source / VOC, source / SBD
    voc_train, voc_val = (read_ids(voc / "ImageSets/Segmentation" / f"{s}.txt") for s in ("train", "val"))
    splits = {dataset.get("train_split", "train_aug"): train_aug(read_ids(sbd / "train.txt"), read_ids(sbd / "val.txt"),
                                                                 voc_train, voc_val),
              dataset.get("score_split", "train"): voc_train, dataset.get("val_split", "val"): voc_val}
    ids = sorted(set().union(*splits.values()))
    mask_dir = dataset.get("mask_dir", "SegmentationClassAug")
    note = ("written by python -m wsss_steps.make_voc_sbd; it may replace this folder (the images and annotations "
            "are links to VOC's files)\n")
    with tree_in_place_of(root, MARKER, refuse_foreign_root, note,
                          ("JPEGImages", "Annotations", mask_dir, "ImageSets/Segmentation")) as tree:
        for image_id in progress(ids, desc="VOC + SBD"):
            link(tree / "JPEGImages" / f"{image_id}.jpg", voc / "JPEGImages" / f"{image_id}.jpg")
            link(tree / "Annotations" / f"{image_id}.xml", voc / "Annotations" / f"{image_id}.xml")
            voc_mask = voc / "SegmentationClass" / f"{image_id}.png"
            if voc_mask.is_file():
                mask = np.asarray(Image.open(voc_mask))  # palette indices: the class, 255 on borders
            elif (sbd / "cls" / f"{image_id}.mat").is_file():
                mask = sbd_mask(loadmat(str(sbd / "cls" / f"{image_id}.mat")))
            else:
                raise DatasetError(f"{image_id}: in a split list but neither {voc_mask} nor "
                                   f"{sbd / 'cls' / (image_id + '.mat')} exists; download the dataset again.")
            save_label_png(tree / mask_dir / f"{image_id}.png", mask, atomic=False)
        for split, members in splits.items():
            (tree / "ImageSets/Segmentation" / f"{split}.txt").write_text("".join(i + "\n" for i in members))
    return {split: len(members) for split, members in splits.items()}


def main(argv=None):
    parser = command_parser("make_voc_sbd", __doc__)
    parser.add_argument("--dataset", required=True,
                        help="dataset settings (JSON or YAML file): root, classes, ignore_index, the splits, mask_dir "
                             "and a voc_sbd block with source and download")
    parser.add_argument("--log", help="log file (default: stderr only)")
    args = parser.parse_args(argv)
    log = setup_logging(args.log)
    dataset = load_params(args.dataset)
    if not dataset.get("voc_sbd"):
        parser.error("the dataset settings have no 'voc_sbd' block")
    counts = write_tree(dataset["root"], dataset, log)
    log.info("wrote %s", ", ".join(f"{n} {split}" for split, n in counts.items()) + f" images to {dataset['root']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
