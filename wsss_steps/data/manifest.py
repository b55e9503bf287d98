"""Content manifests of a dataset on disk: the files that decide whether a stage reruns.

Snakemake reruns a job when an input file is newer than its outputs. The dataset's own files cannot be those inputs:
touching one would rerun everything, and editing a mask would rerun the classifier although only scoring reads the
pixels. So at planning, the workflow writes small manifests of what the stages consume, one file each, and rewrites a
manifest only when its content changes:

* ``images.json``: SHA-256 of every image of the splits (pixels: every stage that reads images reruns);
* ``labels.json``: the image-level classes of each image (the classifier and what follows rerun when a set changes);
* ``masks.json``: SHA-256 of every mask (scoring only: a mask edit that keeps its classes reruns evaluate);
* ``weights.json``: SHA-256 of a backbone weights file given as a path;
* ``saliency.json``: SHA-256 of the dataset's saliency maps (EPS reads them).

Digests are cached by each file's (size, mtime, inode), so an untouched dataset is planned from ``stat`` calls
alone, and a touched file is hashed again to the same digest, which rewrites nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..lib.files import atomic_path

MANIFESTS = ("images", "labels", "masks", "weights", "saliency")


def file_digest(path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class StatCache:
    """Values computed from files (digests, label sets), reused while a file's size, mtime and inode are unchanged."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def get(self, path, kind: str, compute):
        """``compute(path)``, or the value cached for this file and ``kind`` when its stat has not changed."""
        stat = os.stat(path)
        key = f"{kind}:{os.path.abspath(path)}"
        stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        cached = self.entries.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        value = compute(path)
        self.entries[key] = [stamp, value]
        self.changed = True
        return value

    def save(self):
        if self.changed:
            write_if_changed(self.path, json.dumps(self.entries, sort_keys=True))


def write_if_changed(path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it holds exactly that already (its mtime then stays); True if written."""
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        return False
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return True


def dataset_manifests(layout, splits, weights_file=None, saliency: bool = False, cache: StatCache | None = None) -> dict:
    """The manifests' contents {name: JSON-able value} for the images of ``splits`` (see the module docstring).

    Images a split lists but the dataset lacks are recorded as missing (the stages name them); a file's digest is
    taken from ``cache`` while its stat is unchanged.
    """
    cache = cache or StatCache(os.devnull)
    out = {}
    if weights_file is not None:
        out["weights"] = {"file": str(weights_file), "sha256": cache.get(weights_file, "sha256", file_digest)}
    if layout is None:  # a dataset the workflow writes: the weights alone
        return out
    ids = list(dict.fromkeys(i for split in dict.fromkeys(splits) for i in layout.ids(split)))
    images, masks, labels = {}, {}, {}
    for image_id in ids:
        path = layout.image_path(image_id)
        images[image_id] = cache.get(path, "sha256", file_digest) if path.is_file() else "missing"
        if layout.has_mask(image_id):
            masks[image_id] = cache.get(layout.mask_path(image_id), "sha256", file_digest)
    source = layout.label_source()
    for image_id in ids:
        if not layout.has_labels(image_id):
            continue
        if source == "labels_file":
            labels[image_id] = layout.image_labels(image_id)
        elif source == "annotations" and layout.annotation_path(image_id).is_file():
            labels[image_id] = cache.get(layout.annotation_path(image_id), "xml_labels",
                                         lambda _p, i=image_id: layout.labels_from_xml(i))
        else:
            labels[image_id] = cache.get(layout.mask_path(image_id), "mask_labels",
                                         lambda _p, i=image_id: layout.labels_from_mask(i))
    out.update(images=images, labels={"source": source, "classes": list(layout.classes), "images": labels},
               masks=masks)
    if saliency:
        folder = layout.root / layout.saliency_dir
        out["saliency"] = {i: cache.get(folder / f"{i}.png", "sha256", file_digest)
                           for i in ids if (folder / f"{i}.png").is_file()}
    return out


def write_manifests(folder, layout, splits, weights_file=None, saliency: bool = False) -> dict:
    """Write each manifest into ``folder`` as ``<name>.json`` where its content changed; return {name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cache = StatCache(folder / "stat_cache.json")
    contents = dataset_manifests(layout, splits, weights_file, saliency, cache)
    cache.save()
    paths = {}
    for name, value in contents.items():
        paths[name] = folder / f"{name}.json"
        write_if_changed(paths[name], json.dumps(value, sort_keys=True, indent=0) + "\n")
    return paths


def manifest_digest(paths) -> str:
    """One SHA-256 over the manifests ``paths`` (their names and bytes), for provenance."""
    digest = hashlib.sha256()
    for path in sorted(map(Path, paths)):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
