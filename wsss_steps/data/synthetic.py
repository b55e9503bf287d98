"""The built-in dataset: a PASCAL-VOC-layout tree made from a seed (written by the make_dataset stage).

What makes WSSS hard is built in on purpose:
- every object class has a small discriminative *mark* (class-specific colour and shape)
  on a large textured *body* whose colour, texture and shape are shared by all classes,
  so a classifier's CAM fires around the mark and misses most of a large body (objects
  range from small, mostly mark, to large, mostly body);
- bodies are saturated, nearly flat colours against a textured, low-saturation background, so appearance
  affinity can spread activation from the mark to the whole body and stop at its boundary;
- 1-3 objects of different classes per image, some touching, some images empty;
- the last class (the "boat") usually floats on a water band, which rarely appears
  without it: a co-occurring background pattern;
- a noisy saliency map per image in ``SaliencyMaps/`` for saliency-guided methods;
- the water band's background pixels as a context mask in ``ContextMasks/water/``, so the
  boat/water confusion ratio (EPS) is measured;
- a VOC annotation per image in ``Annotations/`` naming its classes, so image-level labels are read as from
  VOC's XML, not from the masks (cheap at VOC scale).

Output: ``JPEGImages/*.jpg``, ``SegmentationClass/*.png`` (VOC palette, 255 on object
borders), ``SaliencyMaps/*.png``, ``ContextMasks/water/*.png`` (255 = water), ``Annotations/*.xml``,
``ImageSets/Segmentation/{train,val,trainval}.txt``.
Same seed and settings -> byte-identical files.
"""

from __future__ import annotations

import colorsys
import contextlib
import json
import multiprocessing
import shutil
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageFilter

from ..lib.log import progress
from .label_png import save_label_png

MARK_COLOURS = [(225, 25, 25), (245, 225, 20), (250, 250, 250), (230, 40, 225), (20, 230, 235), (255, 140, 0)]
MARK_SHAPES = ["plus", "disc", "triangle", "ring"]
WATER_RGB = (40, 90, 170)


def _grid(size):
    return np.mgrid[0:size, 0:size].astype(np.float32)


def _body_mask(yy, xx, cy, cx, ry, rx, angle, power):
    """Superellipse |u|^p + |v|^p <= 1 in a frame rotated by ``angle``."""
    cos, sin = np.cos(angle), np.sin(angle)
    u = ((yy - cy) * cos + (xx - cx) * sin) / ry
    v = (-(yy - cy) * sin + (xx - cx) * cos) / rx
    return np.abs(u) ** power + np.abs(v) ** power <= 1.0


def _mark_mask(yy, xx, cy, cx, half, shape):
    """A filled class-shaped mark of half-size ``half`` centred at (cy, cx)."""
    u, v = (yy - cy) / half, (xx - cx) / half
    inside = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if shape == "plus":
        return inside & ((np.abs(u) < 0.36) | (np.abs(v) < 0.36))
    if shape == "disc":
        return u * u + v * v <= 1
    if shape == "triangle":
        return inside & (np.abs(v) <= (u + 1) / 2)
    return inside & (np.maximum(np.abs(u), np.abs(v)) >= 0.45)  # square ring


def _body_texture(rng, size, yy, xx):
    """Object texture that no class owns: faint oriented stripes and grain (a body reads as one region)."""
    fy, fx = rng.uniform(0.2, 0.6, size=2) * rng.choice([-1, 1], size=2)
    return 5 * np.sin(yy * fy + xx * fx + rng.uniform(0, 6.3)) + rng.normal(0, 4, (size, size))


def _background(rng, size, yy, xx):
    """Low-saturation textured background: a tinted grey, stripes, blotches and noise."""
    hue, sat, val = rng.random(), rng.uniform(0.0, 0.15), rng.uniform(0.45, 0.8)
    base = np.array(colorsys.hsv_to_rgb(hue, sat, val), np.float32) * 255
    fy, fx = rng.uniform(0.08, 0.5, size=2) * rng.choice([-1, 1], size=2)
    stripes = np.sin(yy * fy + xx * fx + rng.uniform(0, 6.3))
    blotch = np.zeros((size, size), np.float32)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0.05, 0.2) * size
        blotch += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)) * rng.uniform(-1, 1)
    shade = 12 * stripes + 15 * blotch + rng.normal(0, 8, (size, size))
    return base[None, None, :] + shade[..., None]


def _body_colour(rng):
    """Mid-saturation body colour from a palette shared by every class (no water blue)."""
    while True:
        hue = rng.random()
        if not 0.55 < hue < 0.68:
            break
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 0.75), rng.uniform(0.35, 0.7)), np.float32) * 255


def _border(labels: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of a label change (where VOC draws its 255 void band)."""
    edge = np.zeros(labels.shape, bool)
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:-1, :] |= labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    grown = edge.copy()
    for _ in range(max(0, width - 1)):
        g = grown.copy()
        g[1:] |= grown[:-1]
        g[:-1] |= grown[1:]
        g[:, 1:] |= grown[:, :-1]
        g[:, :-1] |= grown[:, 1:]
        grown = g
    return grown


def make_image(rng: np.random.Generator, size: int, num_classes: int, empty_rate: float = 0.1,
               touch_rate: float = 0.4, border: int = 1):
    """One sample: (rgb uint8 (S,S,3), mask uint8 (S,S), saliency uint8 (S,S), water uint8 (S,S)); classes are
    1..num_classes-1; water is 1 on the water band's background pixels (the boat's context), else 0."""
    yy, xx = _grid(size)
    boat = num_classes - 1
    fg_classes = list(range(1, num_classes))
    count = 0 if rng.random() < empty_rate else int(rng.integers(1, min(3, len(fg_classes)) + 1))
    classes = [int(c) for c in rng.choice(fg_classes, size=count, replace=False)] if count else []
    water_top = None
    if (boat in classes and rng.random() < 0.6) or (boat not in classes and rng.random() < 0.2):
        water_top = int(size * rng.uniform(0.68, 0.8))

    image = _background(rng, size, yy, xx)
    if water_top is not None:
        waves = 14 * np.sin(xx * 0.5 + yy * 0.9) + rng.normal(0, 8, (size, size))
        water = np.array(WATER_RGB, np.float32)[None, None] + waves[..., None]
        image = np.where((yy >= water_top)[..., None], water, image)
    labels = np.zeros((size, size), np.uint8)

    placed = []  # (cy, cx, radius, mark mask) of each object drawn so far
    for index, cls in enumerate(classes):
        for _attempt in range(50):
            # radius 0.09-0.27 S, skewed small: small objects are mostly mark, large ones mostly body
            scale = 0.09 + 0.18 * rng.random() ** 2
            ry, rx = scale * rng.uniform(0.8, 1.2, size=2) * size
            r = max(ry, rx)
            if placed and rng.random() < touch_rate:
                py, px, pr = placed[-1][:3]
                theta = rng.uniform(0, 2 * np.pi)
                cy, cx = py + np.sin(theta) * (pr + min(ry, rx)) * 0.9, px + np.cos(theta) * (pr + min(ry, rx)) * 0.9
            else:
                cy, cx = rng.uniform(0.2, 0.8, size=2) * size
            if cls == boat and water_top is not None:
                cy = water_top - ry * rng.uniform(0.2, 0.6)
            if not (0.12 * size < cy < 0.88 * size and 0.12 * size < cx < 0.88 * size):
                continue
            if any(np.hypot(cy - p[0], cx - p[1]) < 0.8 * (r + p[2]) and not (index and _attempt < 25) for p in placed):
                continue
            body = _body_mask(yy, xx, cy, cx, ry, rx, rng.uniform(0, np.pi), rng.choice([1.5, 2.0, 4.0]))
            half = min(size * rng.uniform(0.07, 0.085), 0.8 * min(ry, rx))
            my = cy + rng.uniform(-0.35, 0.35) * max(0.0, ry - half)
            mx = cx + rng.uniform(-0.35, 0.35) * max(0.0, rx - half)
            mark = _mark_mask(yy, xx, my, mx, half, MARK_SHAPES[(cls - 1) % len(MARK_SHAPES)]) & body
            # the new body must not hide an earlier object's mark
            if any((body & p[3]).any() for p in placed):
                continue
            colour = _body_colour(rng)
            shade = colour[None, None] + _body_texture(rng, size, yy, xx)[..., None] + 0.15 * (yy - cy)[..., None]
            image = np.where(body[..., None], shade, image)
            image = np.where(mark[..., None], np.array(MARK_COLOURS[(cls - 1) % len(MARK_COLOURS)], np.float32), image)
            labels[body] = cls
            placed.append((cy, cx, r, mark))
            break
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)

    mask = labels.copy()
    mask[_border(labels, border)] = 255
    fg = (labels > 0).astype(np.uint8) * 255
    sal = Image.fromarray(fg).filter(ImageFilter.GaussianBlur(size * 0.03))
    sal = np.asarray(sal, np.float32) + rng.normal(0, 25, (size, size))
    cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0.04, 0.12) * size
    sal += 120 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)) * (rng.random() < 0.3)
    water = np.zeros((size, size), np.uint8)
    if water_top is not None:
        water[(yy >= water_top) & (mask == 0)] = 1
    return image, mask, np.clip(sal, 0, 255).astype(np.uint8), water


# Written first into every tree this generator makes: it replaces only a folder that carries it.
MARKER = ".wsss-generated-dataset"


class NotOurs(RuntimeError):
    """The dataset root holds files this generator did not write."""


def owned_or_absent(root, marker: str = MARKER) -> bool:
    """True when ``root`` does not exist, carries the ``marker`` file of the stage that writes it, or holds folders but
    no file.

    Empty folders are allowed because Snakemake makes the folders of a job's outputs before it runs.
    """
    root = Path(root)
    if not root.exists() and not root.is_symlink():
        return True
    if not root.is_dir() or root.is_symlink():
        return False
    if (root / marker).is_file():
        return True
    return all(path.is_dir() and not path.is_symlink() for path in root.rglob("*"))


def refuse_foreign_root(root):
    """Raise NotOurs naming ``root`` when it holds anything the generator did not write."""
    if not owned_or_absent(root):
        raise NotOurs(f"{root}: this folder was not written by the built-in dataset generator (no {MARKER} file "
                      f"in it), so it is left untouched; remove dataset.generate from the config to use it as "
                      f"your dataset, or set dataset.root to a new folder for the built-in one.")


@contextlib.contextmanager
def tree_in_place_of(root, marker: str, refuse_foreign_root, note: str, folders=()):
    """Build a dataset tree in a hidden sibling of ``root`` (marked with ``marker``, holding ``folders``) and, when the
    block ends, put it in place of ``root``, replacing only a tree with the same marker (``refuse_foreign_root``
    raises for anything else, checked before and again at the end); on an error the sibling is removed."""
    root = Path(root)
    tree = root.with_name(f".{root.name}.tmp")
    refuse_foreign_root(tree)
    remove_generated(tree, marker)
    tree.mkdir(parents=True)
    try:
        (tree / marker).write_text(note)
        for sub in folders:
            (tree / sub).mkdir(parents=True)
        yield tree
        refuse_foreign_root(root)  # checked again: the folder may have changed while the tree was written
        remove_generated(root, marker)
        tree.rename(root)
    except BaseException:
        remove_generated(tree, marker)  # only what was written: the sources behind its links are never touched
        raise


def remove_generated(root, marker: str = MARKER):
    """Delete ``root`` if the generator made it (``marker`` file); otherwise remove only its empty folders (what
    Snakemake makes for a job's outputs) with rmdir, which cannot delete a file."""
    root = Path(root)
    if not root.exists():
        return
    if (root / marker).is_file():
        shutil.rmtree(root)
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        folder.rmdir()
    root.rmdir()


def annotation_xml(image_id: str, names) -> str:
    """A minimal VOC annotation: the image's file name and one ``<object><name>`` per class in it."""
    objects = "".join(f"<object><name>{escape(name)}</name></object>" for name in names)
    return f"<annotation><filename>{image_id}.jpg</filename>{objects}</annotation>\n"


def _write_sample(item):
    """Make image number ``number`` of the set and write its five files (image, mask, saliency, context,
    annotation)."""
    tmp_root, image_id, seed, number, image_size, classes = item
    rng = np.random.default_rng([seed, number])
    rgb, mask, sal, water = make_image(rng, image_size, len(classes))
    present = [classes[int(c)] for c in np.unique(mask) if 0 < c < len(classes)]
    (tmp_root / "Annotations" / f"{image_id}.xml").write_text(annotation_xml(image_id, present))
    Image.fromarray(rgb).save(tmp_root / "JPEGImages" / f"{image_id}.jpg", quality=95)
    save_label_png(tmp_root / "SegmentationClass" / f"{image_id}.png", mask)
    Image.fromarray(sal, mode="L").save(tmp_root / "SaliencyMaps" / f"{image_id}.png")
    Image.fromarray(water * 255, mode="L").save(tmp_root / "ContextMasks" / "water" / f"{image_id}.png")


def generate(root, classes, image_size: int, train_images: int, val_images: int, seed: int,
             train_split: str = "train", val_split: str = "val", jobs: int = 1):
    """Write the whole dataset under ``root`` (replacing an earlier generated one, never a user's) and return its ids
    per split; ``jobs`` processes make the images (the same files for any number)."""
    root = Path(root)
    refuse_foreign_root(root)
    tmp_root = root.with_name(f".{root.name}.tmp")
    refuse_foreign_root(tmp_root)
    remove_generated(tmp_root)
    tmp_root.mkdir(parents=True)
    (tmp_root / MARKER).write_text("written by python -m wsss_steps.make_dataset; the generator may replace this "
                                   "folder\n")
    for sub in ("JPEGImages", "SegmentationClass", "SaliencyMaps", "ContextMasks/water", "Annotations",
                "ImageSets/Segmentation"):
        (tmp_root / sub).mkdir(parents=True)
    splits = {train_split: [f"train_{i:05d}" for i in range(train_images)],
              val_split: [f"val_{i:05d}" for i in range(val_images)]}
    all_ids = splits[train_split] + splits[val_split]
    work = [(tmp_root, image_id, seed, number, image_size, tuple(classes)) for number, image_id in enumerate(all_ids)]
    if jobs > 1:  # each image depends only on (seed, number): the same files whatever the number of processes
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            for _ in progress(pool.imap_unordered(_write_sample, work, chunksize=16), total=len(work), desc="images"):
                pass
    else:
        for item in progress(work, desc="images"):
            _write_sample(item)
    for split, ids in dict(splits, trainval=all_ids).items():
        (tmp_root / "ImageSets/Segmentation" / f"{split}.txt").write_text("".join(i + "\n" for i in ids))
    (tmp_root / "dataset.json").write_text(json.dumps(
        {"generator": "wsss_steps.make_dataset", "classes": list(classes), "image_size": image_size,
         "seed": seed, "train_images": train_images, "val_images": val_images}, indent=1) + "\n")
    refuse_foreign_root(root)  # checked again: the folder may have changed while the images were written
    remove_generated(root)
    tmp_root.rename(root)
    return splits
