"""Label maps as 8-bit palette PNGs with the PASCAL VOC colours (255, void, in light beige)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..lib.files import atomic_path


# VOC colour map: class index -> RGB, 255 -> light beige as in VOC's void.
def voc_palette() -> list[int]:
    """The PASCAL VOC 256-entry colour palette as a flat RGB list."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(8):
            r |= ((c >> 0) & 1) << (7 - shift)
            g |= ((c >> 1) & 1) << (7 - shift)
            b |= ((c >> 2) & 1) << (7 - shift)
            c >>= 3
        palette += [r, g, b]
    return palette


def save_label_png(path, labels: np.ndarray, atomic: bool = True):
    """Write a label map as an 8-bit palette PNG (VOC colours), atomically unless ``atomic`` is False (for a tree
    built in a temporary folder, where each file's temporary and its clean-up would only cost a folder scan)."""
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    if not atomic:
        image.save(path, format="PNG")
        return
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def load_label_png(path) -> np.ndarray:
    """Read a palette or grey PNG as its raw index values."""
    with Image.open(path) as image:
        return np.asarray(image if image.mode in ("P", "L") else image.convert("L"), dtype=np.uint8)
