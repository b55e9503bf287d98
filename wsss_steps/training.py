"""Shared pieces of the three training stages: datasets, optimiser, the epoch loop."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .data import VOCLayout, multi_hot, random_scale_crop, to_tensor
from .log import progress

log = logging.getLogger("wsss_steps")


class CropDataset(Dataset):
    """Random scale/flip/crop of images with optional label maps; deterministic per (seed, epoch, index)."""

    def __init__(self, layout: VOCLayout, ids, crop: int, scale_range, seed: int,
                 label_maps=None, image_labels=None):
        self.layout, self.ids, self.crop, self.scale_range, self.seed = layout, list(ids), crop, tuple(scale_range), seed
        self.label_maps = label_maps      # id -> (H, W) uint8, or None
        self.image_labels = image_labels  # id -> [classes], or None
        self.epoch = 0

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        image_id = self.ids[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        extra = [self.label_maps[image_id]] if self.label_maps is not None else []
        image, extra = random_scale_crop(rng, self.layout.image(image_id), extra, self.crop, self.scale_range,
                                         self.layout.ignore_index)
        item = {"image": to_tensor(image)}
        if extra:
            item["labels"] = torch.from_numpy(extra[0].astype(np.int64))
        if self.image_labels is not None:
            item["target"] = multi_hot(self.image_labels[image_id], self.layout.num_classes)
        return item


def make_optimizer(pretrained_params, new_params, lr: float, weight_decay: float):
    """SGD (momentum 0.9) with lr for pretrained parameters and 10 x lr for new layers."""
    groups = [{"params": [p for p in pretrained_params if p.requires_grad], "lr": lr, "base_lr": lr},
              {"params": [p for p in new_params if p.requires_grad], "lr": 10 * lr, "base_lr": 10 * lr}]
    groups = [g for g in groups if g["params"]]
    return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)


def poly_lr(optimizer, step: int, total: int, power: float = 0.9):
    """lr = base_lr * (1 - step/total)^power."""
    factor = (1 - step / max(1, total)) ** power
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def fit(model, dataset: CropDataset, loss_fn, optimizer, epochs: int, batch_size: int, device, seed: int, name: str):
    """Train ``model`` for ``epochs`` with ``loss_fn(model, batch) -> loss``; returns per-epoch mean losses."""
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) > batch_size,
                        num_workers=0, generator=generator)
    total = epochs * len(loader)
    step, history = 0, []
    model.to(device).train()
    for epoch in range(epochs):
        dataset.epoch = epoch
        losses, start = [], time.time()
        for batch in progress(loader, desc=f"{name} epoch {epoch + 1}/{epochs}", leave=False):
            batch = {k: v.to(device) for k, v in batch.items()}
            poly_lr(optimizer, step, total)
            loss = loss_fn(model, batch)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"{name}: loss became {loss.item()} at epoch {epoch + 1}; lower the learning rate.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
        history.append(float(np.mean(losses)))
        log.info("%s epoch %d/%d loss %.4f (%.1f s)", name, epoch + 1, epochs, history[-1], time.time() - start)
    model.eval()
    return history


def pad_to_stride(x: torch.Tensor, stride: int):
    """Pad (B, 3, H, W) at the bottom/right with zeros (the mean colour after normalisation) to a multiple of stride."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    return F.pad(x, (0, pw, 0, ph)), (h, w)

