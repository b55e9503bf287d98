"""Datasets for PyTorch's DataLoader: seeded random crops of a layout's images, and the arrays of one HDF5 store."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

from ..lib.artifacts import open_store, read_array
from .transforms import multi_hot, random_scale_crop, to_tensor
from .voc import VOCLayout


class CropDataset(Dataset):
    """Random scale/flip/crop of images with optional label maps; deterministic per (seed, epoch, index)."""

    def __init__(self, layout: VOCLayout, ids, crop: int, scale_range, seed: int,
                 label_maps=None, image_labels=None, hide=None, saliency: bool = False):
        self.layout, self.ids, self.crop, self.scale_range, self.seed = layout, list(ids), crop, tuple(scale_range), seed
        self.label_maps = label_maps      # id -> (H, W) uint8, or None
        self.image_labels = image_labels  # id -> [classes], or None
        self.hide = hide                  # (rng, crop (H, W, 3) uint8) -> crop, e.g. Hide-and-Seek; or None
        self.saliency = saliency          # also crop the layout's saliency map, as item "saliency" in [0, 1]
        self.epoch = 0

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        image_id = self.ids[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        extra = [self.label_maps[image_id]] if self.label_maps is not None else []
        fills = [self.layout.ignore_index] * len(extra)
        if self.saliency:  # padding is not salient
            extra, fills = [*extra, self.layout.saliency(image_id)], [*fills, 0]
        image, extra = random_scale_crop(rng, self.layout.image(image_id), extra, self.crop, self.scale_range,
                                         self.layout.ignore_index, fills)
        saliency = extra.pop() if self.saliency else None
        if self.hide is not None:
            image = self.hide(rng, image)
        item = {"image": to_tensor(image)}
        if extra:
            item["labels"] = torch.from_numpy(extra[0].astype(np.int64))
        if saliency is not None:
            item["saliency"] = torch.from_numpy(saliency.astype(np.float32) / 255.0)
        if self.image_labels is not None:
            item["target"] = multi_hot(self.image_labels[image_id], self.layout.num_classes)
        return item


class StoreDataset(torch.utils.data.Dataset):
    """The arrays of one HDF5 store as a map-style Dataset: item i = (name, array, attributes) of dataset ``names[i]``.

    Safe with DataLoader workers: an h5py file handle must never cross a fork (HDF5 and h5py are
    not fork-safe: a handle opened before the fork shares library state, locks and the file
    descriptor with the parent, which can give wrong reads or hangs), so the store is opened
    lazily, on the first item read in each process. The handle remembers the pid that opened it
    and is reopened in a forked worker, and it is dropped when the dataset is pickled (spawn
    workers). ``names`` defaults to the store's ``ids`` attribute, else its top-level names.
    """

    def __init__(self, path, names=None, stage: str | None = None):
        self.path, self.stage = str(path), stage
        with open_store(path, stage) as store:
            if names is None:
                names = json.loads(store.attrs["ids"]) if "ids" in store.attrs else list(store.keys())
        self.names = list(names)
        self._store, self._pid = None, None

    def __len__(self) -> int:
        return len(self.names)

    def _handle(self):
        if self._store is None or self._pid != os.getpid():
            self._store, self._pid = open_store(self.path, self.stage), os.getpid()
        return self._store

    def __getitem__(self, index: int):
        name = self.names[index]
        store = self._handle()
        try:
            dataset = store[name]
        except KeyError:
            read_array(store, name)  # raises the ArtifactError naming the file and dataset
            raise
        return name, dataset[()], dict(dataset.attrs)

    def __getstate__(self):
        return {**self.__dict__, "_store": None, "_pid": None}

    def close(self):
        """Close this process's handle (it is reopened on the next read)."""
        if self._store is not None and self._pid == os.getpid():
            self._store.close()
        self._store, self._pid = None, None


class StoreMaps(Mapping):
    """image id -> label map of a label store (``ids`` attribute order), read from the file per item, never all into
    memory (10,582 VOC maps would be 2 GB); fork-safe like StoreDataset. Checked as ``open_store(path, stage, layout)``."""

    def __init__(self, path, stage: str, layout=None):
        with open_store(path, stage, layout):
            pass
        self._items = StoreDataset(path, stage=stage)
        self._index = {name: i for i, name in enumerate(self._items.names)}

    def __getitem__(self, image_id):
        if image_id not in self._index:
            raise KeyError(image_id)
        return self._items[self._index[image_id]][1]

    def __contains__(self, image_id) -> bool:
        return image_id in self._index

    def __iter__(self):
        return iter(self._items.names)

    def __len__(self) -> int:
        return len(self._items.names)
