"""A tiny fake PASCAL VOC 2012 tree for tests: JPEGImages, Annotations XML, masks for some images only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wsss_steps.data.label_png import save_label_png

VOC_CLASSES = ("background aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse "
               "motorbike person pottedplant sheep sofa train tvmonitor").split()


def annotation_xml(image_id: str, size, names) -> str:
    """A VOC-style annotation naming one object per entry of ``names``."""
    h, w = size
    objects = "".join(
        f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
        f"<xmax>{w}</xmax><ymax>{h}</ymax></bndbox></object>" for name in names)
    return (f"<annotation><folder>VOC2012</folder><filename>{image_id}.jpg</filename>"
            f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objects}</annotation>")


def write_fake_voc(root, n_aug: int = 6, n_train: int = 3, n_val: int = 2, mask_dir: str = "SegmentationClass",
                   seed: int = 0) -> dict:
    """Write the tree; train_aug holds train plus extra images that have XML but no mask. Returns ids per list."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for sub in ("JPEGImages", "Annotations", mask_dir, "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    train = [f"2007_{i:06d}" for i in range(n_train)]
    val = [f"2008_{i:06d}" for i in range(n_val)]
    extra = [f"2009_{i:06d}" for i in range(n_aug)]
    for image_id in train + val + extra:
        h, w = int(rng.integers(33, 61)), int(rng.integers(33, 61))  # odd and even sizes, any aspect
        classes = sorted(rng.choice(np.arange(1, 21), size=int(rng.integers(1, 3)), replace=False).tolist())
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "JPEGImages" / f"{image_id}.jpg")
        (root / "Annotations" / f"{image_id}.xml").write_text(
            annotation_xml(image_id, (h, w), [VOC_CLASSES[c] for c in classes]))
        if image_id not in extra:
            mask = np.zeros((h, w), np.uint8)
            for k, c in enumerate(classes):
                mask[k * h // 3:(k + 1) * h // 3 + 2, 2:w // 2] = c
            mask[0, :] = 255
            save_label_png(root / mask_dir / f"{image_id}.png", mask)
    lists = {"train": train, "val": val, "train_aug": train + extra, "trainval": train + val}
    for name, ids in lists.items():
        (root / "ImageSets/Segmentation" / f"{name}.txt").write_text("".join(i + "\n" for i in ids))
    return lists
