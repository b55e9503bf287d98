"""Adversarial erasing's view of a dataset: each image with its map in a mine_regions store handed to ``apply``
(the stage passes the method's erasing, wsss_steps/methods/adversarial_erasing.erase_mined), read per image."""

from __future__ import annotations

import dataclasses
from typing import Callable

import h5py
import numpy as np

from .voc import VOCLayout


@dataclasses.dataclass(frozen=True)
class ErasedLayout(VOCLayout):
    """A layout whose images with a map in ``regions`` are returned as apply(image, map (K, H, W) float32)."""

    regions: str = ""
    apply: Callable | None = None

    def image(self, image_id: str) -> np.ndarray:
        image = super().image(image_id)
        with h5py.File(self.regions, "r") as store:
            if image_id not in store:
                return image
            union = store[image_id][()].astype(np.float32)
        if union.shape[1:] != image.shape[:2]:
            raise ValueError(f"{self.regions}: the map of {image_id} is {union.shape[1:]}, the image {image.shape[:2]}.")
        return self.apply(image, union)


def with_regions(layout: VOCLayout, regions, apply) -> ErasedLayout:
    """``layout`` reading its images through ``apply`` with the maps of the store ``regions``."""
    fields = {f.name: getattr(layout, f.name) for f in dataclasses.fields(layout) if f.init}
    return ErasedLayout(**fields, regions=str(regions), apply=apply)


def stopped_round(regions) -> int:
    """The round at which erasing stopped according to a mine_regions store (0: it has not stopped)."""
    with h5py.File(regions, "r") as store:
        return int(store.attrs.get("stopped_at", 0))
