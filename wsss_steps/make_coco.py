"""Stage 0: convert MS COCO instance annotations into a PASCAL-VOC-layout tree (see wsss_steps.data.coco).

It writes at dataset.root: JPEGImages/<stem>.jpg as symbolic links to the COCO images (never copies),
SegmentationClass/<stem>.png (class index 1-80 from the category ids in ascending order, 0 background, 255 on crowd
regions no object covers), labels.json (each image's non-crowd classes) and one list per split of the images with at
least one non-crowd object. It writes only into a folder that is new, empty or marked as its own
(``.wsss-coco-dataset``), builds the tree in a hidden sibling folder and renames it at the end.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .lib.config import load_params
from .data.coco import (MARKER, annotations_by_image, category_indices, check_classes, check_sources, class_names,
                        image_labels, refuse_foreign_root, semantic_mask)
from .data.label_png import save_label_png
from .data.synthetic import tree_in_place_of
from .data.voc import DatasetError
from .lib.log import command_parser, progress, setup_logging
from .lib.runtime import run_stage


def convert_split(tree: Path, annotation_file, image_folder, classes, ignore_index: int, log) -> dict[str, list[str]]:
    """Link the images of one annotation file that have a non-crowd object into ``tree``, write their masks, and
    return {stem: class names}."""
    log.info("reading %s", annotation_file)
    data = json.loads(Path(annotation_file).read_text())
    check_classes(classes, data["categories"], annotation_file)
    index_of = category_indices(data["categories"])
    names = class_names(data["categories"])
    anns_of = annotations_by_image(data["annotations"])
    kept = []
    for image in data["images"]:
        labels = image_labels(anns_of.get(image["id"], []), index_of)
        if labels:
            kept.append((Path(image["file_name"]).stem, image, labels))
    log.info("%s: %d of %d images have a non-crowd object", annotation_file, len(kept), len(data["images"]))
    labels_of = {}
    for stem, image, labels in progress(sorted(kept, key=lambda item: item[0]), desc=f"{Path(annotation_file).name}"):
        source = Path(os.path.abspath(Path(image_folder) / image["file_name"]))
        if not source.is_file():
            raise DatasetError(f"{source}: image {image['id']} of {annotation_file} not found; point the image folder "
                               f"of dataset.coco at the folder holding {image['file_name']}.")
        link = tree / "JPEGImages" / f"{stem}.jpg"
        if link.is_symlink():
            raise DatasetError(f"{annotation_file}: two images are named {stem} (the second is image {image['id']}); "
                               f"image names must be unique across the COCO annotation files.")
        link.symlink_to(source)
        mask = semantic_mask(anns_of[image["id"]], image["height"], image["width"], index_of, ignore_index)
        save_label_png(tree / "SegmentationClass" / f"{stem}.png", mask, atomic=False)
        labels_of[stem] = [names[index] for index in labels]
    return labels_of


def write_tree(root, dataset: dict, log) -> dict[str, int]:
    """Write the whole VOC-layout tree at ``root`` (replacing an earlier make_coco tree, never a user's); return the
    number of images per split."""
    root = Path(root)
    coco = dataset["coco"]
    refuse_foreign_root(root)
    check_sources(coco)
    note = ("written by python -m wsss_steps.make_coco; make_coco may replace this folder (the images in JPEGImages "
            "are links to the COCO files)\n")
    with tree_in_place_of(root, MARKER, refuse_foreign_root, note,
                          ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation")) as tree:
        splits, labels = {}, {}
        for part, split in (("train", dataset.get("train_split", "train")), ("val", dataset.get("val_split", "val"))):
            labels_of = convert_split(tree, coco[f"{part}_annotations"], coco[f"{part}_images"], dataset["classes"],
                                      int(dataset.get("ignore_index", 255)), log)
            splits[split] = sorted(labels_of)
            labels.update(labels_of)
        for split, ids in splits.items():
            (tree / "ImageSets/Segmentation" / f"{split}.txt").write_text("".join(i + "\n" for i in ids))
        (tree / "labels.json").write_text(json.dumps(labels, indent=0, sort_keys=True) + "\n")
    return {split: len(ids) for split, ids in splits.items()}


def main(argv=None):
    parser = command_parser("make_coco", __doc__)
    parser.add_argument("--dataset", required=True,
                        help="dataset settings (JSON or YAML file): root, classes, ignore_index, train_split, "
                             "val_split and a coco block with train_annotations, train_images, val_annotations, "
                             "val_images")
    parser.add_argument("--log", help="log file (default: stderr only)")
    args = parser.parse_args(argv)
    log = setup_logging(args.log)
    dataset = load_params(args.dataset)
    if not dataset.get("coco"):
        parser.error("the dataset settings have no 'coco' block")
    counts = write_tree(dataset["root"], dataset, log)
    log.info("wrote %s", ", ".join(f"{n} {split}" for split, n in counts.items()) + f" images to {dataset['root']}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
