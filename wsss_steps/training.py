"""Shared pieces of the three training stages: datasets, optimiser, the epoch loop."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .data import VOCLayout, multi_hot, random_scale_crop, to_tensor
from .io import file_sha256, read_state_dict, write_state_dict, write_store
from .log import progress
from .runtime import fault_point

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


def make_optimizer(pretrained_params, new_params, params: dict):
    """SGD with params' lr for pretrained parameters and 10 x lr for new layers, its weight_decay and momentum (0.9)."""
    lr, weight_decay, momentum = params["lr"], params["weight_decay"], params.get("momentum", 0.9)
    groups = [{"params": [p for p in pretrained_params if p.requires_grad], "lr": lr, "base_lr": lr},
              {"params": [p for p in new_params if p.requires_grad], "lr": 10 * lr, "base_lr": 10 * lr}]
    groups = [g for g in groups if g["params"]]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def poly_lr(optimizer, step: int, total: int, power: float = 0.9):
    """lr = base_lr * (1 - step/total)^power."""
    factor = (1 - step / max(1, total)) ** power
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def run_fingerprint(args, inputs=()) -> str:
    """SHA-256 over a stage's settings (its arguments, minus threads, device and log) and its input files' bytes."""
    settings = {k: v for k, v in sorted(vars(args).items()) if k not in ("threads", "device", "log", "checkpoint")}
    record = {"settings": settings, "inputs": [file_sha256(p) for p in inputs]}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def save_checkpoint(path, model, optimizer, generator: torch.Generator, epoch: int, step: int, history, fingerprint: str):
    """Everything needed to continue training after ``epoch`` epochs, as HDF5 (weights, momentum, sampler RNG)."""
    attrs = {"stage": "checkpoint", "epoch": epoch, "step": step, "history": json.dumps(history),
             "fingerprint": fingerprint}
    with write_store(path, attrs) as store:
        write_state_dict(store.create_group("state_dict"), model.state_dict())
        momentum = store.create_group("momentum")
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for index, param in enumerate(params):
            buffer = optimizer.state.get(param, {}).get("momentum_buffer")
            if buffer is not None:
                momentum.create_dataset(str(index), data=buffer.detach().cpu().numpy())
        store.create_dataset("generator", data=generator.get_state().numpy())


def load_checkpoint(path, model, optimizer, generator: torch.Generator, fingerprint: str):
    """Restore a checkpoint made for the same ``fingerprint``; return (epoch, step, history) or None to start afresh."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as store:
            if store.attrs.get("fingerprint") != fingerprint:
                log.info("ignoring checkpoint %s: it was made with other settings or inputs", path)
                return None
            device = next(model.parameters()).device
            model.load_state_dict(read_state_dict(store["state_dict"]))
            params = [p for group in optimizer.param_groups for p in group["params"]]
            for key in store["momentum"]:
                optimizer.state[params[int(key)]]["momentum_buffer"] = torch.from_numpy(store["momentum"][key][()]).to(device)
            generator.set_state(torch.from_numpy(store["generator"][()]))
            epoch, step, history = int(store.attrs["epoch"]), int(store.attrs["step"]), json.loads(store.attrs["history"])
    except (OSError, KeyError) as exc:
        log.warning("ignoring unreadable checkpoint %s (%s); training from the start", path, exc)
        return None
    log.info("resuming from checkpoint %s after epoch %d", path, epoch)
    return epoch, step, history


def fit(model, dataset: CropDataset, loss_fn, optimizer, epochs: int, batch_size: int, device, seed: int, name: str,
        checkpoint=None, fingerprint: str = ""):
    """Train ``model`` for ``epochs`` with ``loss_fn(model, batch) -> loss``; returns per-epoch mean losses.

    With ``checkpoint`` (a path outside the stage's outputs), the state is saved after every epoch and
    a run killed mid-training continues from the last saved epoch, ending with the same weights as an
    uninterrupted run; the checkpoint is deleted once training finishes.
    """
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) > batch_size,
                        num_workers=0, generator=generator)
    total = epochs * len(loader)
    first, step, history = 0, 0, []
    model.to(device).train()
    if checkpoint is not None:
        resumed = load_checkpoint(checkpoint, model, optimizer, generator, fingerprint)
        if resumed is not None:
            first, step, history = resumed
    for epoch in range(first, epochs):
        dataset.epoch = epoch
        losses, start = [], time.time()
        bar = progress(loader, desc=f"{name} epoch {epoch + 1}/{epochs}", leave=False)
        for batch in bar:
            batch = {k: v.to(device) for k, v in batch.items()}
            poly_lr(optimizer, step, total)
            loss = loss_fn(model, batch)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"{name}: loss became {loss.item()} at epoch {epoch + 1}; lower the learning rate.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=float(np.mean(losses)))
            step += 1
        history.append(float(np.mean(losses)))
        log.info("%s epoch %d/%d loss %.4f (%.1f s)", name, epoch + 1, epochs, history[-1], time.time() - start)
        if checkpoint is not None and epoch + 1 < epochs:
            save_checkpoint(checkpoint, model, optimizer, generator, epoch + 1, step, history, fingerprint)
        fault_point(f"{name} epoch {epoch + 1}")
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    model.eval()
    return history


def pad_to_stride(x: torch.Tensor, stride: int):
    """Pad (B, 3, H, W) at the bottom/right with zeros (the mean colour after normalisation) to a multiple of stride."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    return F.pad(x, (0, pw, 0, ph)), (h, w)

