"""Reading a PASCAL-VOC-layout dataset: id lists, images, masks, image-level labels, batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .io import load_label_png

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class DatasetError(ValueError):
    """The dataset on disk does not match what the config says."""


@dataclass(frozen=True)
class VOCLayout:
    """Where the pieces of a VOC-layout dataset live."""

    root: Path
    classes: tuple[str, ...]  # index 0 is background
    ignore_index: int = 255
    image_dir: str = "JPEGImages"
    mask_dir: str = "SegmentationClass"
    list_dir: str = "ImageSets/Segmentation"

    @classmethod
    def from_config(cls, dataset: dict) -> "VOCLayout":
        return cls(
            root=Path(dataset["root"]),
            classes=tuple(dataset["classes"]),
            ignore_index=int(dataset.get("ignore_index", 255)),
        )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def list_file(self, split: str) -> Path:
        return self.root / self.list_dir / f"{split}.txt"

    def image_path(self, image_id: str) -> Path:
        return self.root / self.image_dir / f"{image_id}.jpg"

    def mask_path(self, image_id: str) -> Path:
        return self.root / self.mask_dir / f"{image_id}.png"

    def ids(self, split: str) -> list[str]:
        path = self.list_file(split)
        if not path.is_file():
            raise DatasetError(f"{path}: split list not found (dataset root {self.root}).")
        ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
        if not ids:
            raise DatasetError(f"{path}: the split list is empty.")
        return ids

    def image(self, image_id: str) -> np.ndarray:
        """RGB uint8 (H, W, 3)."""
        path = self.image_path(image_id)
        if not path.is_file():
            raise DatasetError(f"{path}: image listed in a split file is missing.")
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)

    def mask(self, image_id: str) -> np.ndarray:
        """Class-index mask (H, W) uint8 with ``ignore_index`` on void pixels."""
        path = self.mask_path(image_id)
        if not path.is_file():
            raise DatasetError(f"{path}: segmentation mask is missing.")
        return load_label_png(path)

    def image_labels(self, image_id: str) -> list[int]:
        """Foreground class indices present in the image (from its mask), sorted."""
        mask = self.mask(image_id)
        values = np.unique(mask)
        bad = [int(v) for v in values if v != self.ignore_index and v >= self.num_classes]
        if bad:
            raise DatasetError(f"{self.mask_path(image_id)}: mask value {bad[0]} is neither a class nor the ignore index.")
        return [int(v) for v in values if 0 < v < self.num_classes]

    def label_table(self, split: str) -> dict[str, list[int]]:
        """image id -> present foreground classes, for every image of a split."""
        return {image_id: self.image_labels(image_id) for image_id in self.ids(split)}


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> normalised float (3, H, W)."""
    array = (image.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def multi_hot(classes, num_classes: int) -> torch.Tensor:
    """Vector over foreground classes 1..C-1 with 1 for each present class."""
    vec = torch.zeros(num_classes - 1)
    for c in classes:
        vec[c - 1] = 1.0
    return vec


def random_scale_crop(rng: np.random.Generator, image: np.ndarray, extra: list[np.ndarray], crop: int,
                      scale_range: tuple[float, float], ignore: int = 255):
    """Random rescale, horizontal flip and crop (padding with mean colour / ``ignore``) of an image and label maps."""
    scale = rng.uniform(*scale_range)
    h, w = image.shape[:2]
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
    extra = [np.asarray(Image.fromarray(e).resize((nw, nh), Image.NEAREST)) for e in extra]
    if rng.random() < 0.5:
        image = image[:, ::-1]
        extra = [e[:, ::-1] for e in extra]
    ph, pw = max(crop, nh), max(crop, nw)
    canvas = np.empty((ph, pw, 3), np.uint8)
    canvas[:] = (MEAN * 255).astype(np.uint8)
    canvas[:nh, :nw] = image
    canvases = []
    for e in extra:
        c = np.full((ph, pw), ignore, np.uint8)
        c[:nh, :nw] = e
        canvases.append(c)
    y = int(rng.integers(0, ph - crop + 1))
    x = int(rng.integers(0, pw - crop + 1))
    return canvas[y:y + crop, x:x + crop], [c[y:y + crop, x:x + crop] for c in canvases]
