"""Artifacts as data: HDF5 stores with provenance, model weights in HDF5, palette PNGs.

Every writer writes to a temporary name beside the target and renames it on success,
so a killed job never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image

from . import __version__


class ArtifactError(RuntimeError):
    """An input artifact is missing, unreadable or made for something else."""


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(stage: str, params: dict, seed: int | None, inputs: list) -> dict:
    """Attributes recording what made an artifact."""
    return {
        "stage": stage,
        "params": json.dumps(params, sort_keys=True, default=str),
        "seed": -1 if seed is None else int(seed),
        "package_version": __version__,
        "inputs": json.dumps({str(p): file_sha256(p) for p in inputs if Path(p).is_file()}, sort_keys=True),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def write_store(path, attrs: dict):
    """Open a new HDF5 store for writing under a temporary name, with provenance ``attrs``."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as store:
            for key, value in attrs.items():
                store.attrs[key] = value
            yield store


def put_array(store, name: str, array: np.ndarray, **attrs):
    """Write one chunked, gzip-compressed dataset with attributes."""
    kwargs = {}
    if array.ndim >= 2 and array.size > 0:
        kwargs = dict(chunks=True, compression="gzip", compression_opts=4, shuffle=True)
    dset = store.create_dataset(name, data=array, **kwargs)
    for key, value in attrs.items():
        dset.attrs[key] = value
    return dset


def open_store(path, stage: str | None = None):
    """Open an HDF5 artifact for reading, failing with one sentence naming the file if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found; run the stage that makes it first.")
    try:
        store = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(f"{path}: not a readable HDF5 file ({exc}); delete it and rerun the stage that makes it.") from None
    if stage is not None and store.attrs.get("stage") != stage:
        found = store.attrs.get("stage", "nothing")
        store.close()
        raise ArtifactError(f"{path}: expected an artifact of stage '{stage}' but it was made by '{found}'.")
    return store


def read_array(store, name: str) -> np.ndarray:
    """Read one dataset, naming the file and dataset if it is absent."""
    if name not in store:
        raise ArtifactError(f"{store.filename}: has no dataset '{name}'; it was made for other images, rerun its stage.")
    return store[name][()]


def save_weights(path, model: torch.nn.Module, attrs: dict):
    """Save a model's state dict as one HDF5 dataset per tensor (no pickles)."""
    with write_store(path, attrs) as store:
        group = store.create_group("state_dict")
        for key, tensor in model.state_dict().items():
            group.create_dataset(key, data=tensor.detach().cpu().numpy())


def load_weights(path, model: torch.nn.Module, stage: str | None = None) -> dict:
    """Load a state dict saved by ``save_weights`` into ``model``; return the file's attributes."""
    with open_store(path, stage) as store:
        if "state_dict" not in store:
            raise ArtifactError(f"{path}: has no 'state_dict' group; it is not a weights file of this project.")
        state = {key: torch.from_numpy(np.asarray(store["state_dict"][key][()])) for key in store["state_dict"]}
        attrs = dict(store.attrs)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ArtifactError(f"{path}: weights do not fit this model ({first}).") from None
    return attrs


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


def save_label_png(path, labels: np.ndarray):
    """Write a label map as an 8-bit palette PNG (VOC colours), atomically."""
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def load_label_png(path) -> np.ndarray:
    """Read a palette or grey PNG as its raw index values."""
    with Image.open(path) as image:
        return np.asarray(image if image.mode in ("P", "L") else image.convert("L"), dtype=np.uint8)
