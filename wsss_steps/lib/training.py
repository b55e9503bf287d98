"""Shared pieces of the three training stages: optimiser, learning-rate schedule, checkpoints, the epoch loop."""

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
from torch.utils.data import DataLoader

from .artifacts import file_sha256, read_curve, read_state_dict, write_curve, write_state_dict, write_store
from .distributed import ShareSampler, average_gradients, end_group, is_main, local_device, start_group, world
from .log import progress
from .faults import fault_point

log = logging.getLogger("wsss_steps")


def make_optimizer(pretrained_params, new_params, params: dict):
    """SGD with params' lr for pretrained parameters and new_layer_factor x lr (absent: 10) for new layers, its
    weight_decay and momentum."""
    lr, weight_decay, momentum = params["lr"], params["weight_decay"], params["momentum"]
    new_lr = params.get("new_layer_factor", 10) * lr
    groups = [{"params": [p for p in pretrained_params if p.requires_grad], "lr": lr, "base_lr": lr},
              {"params": [p for p in new_params if p.requires_grad], "lr": new_lr, "base_lr": new_lr}]
    groups = [g for g in groups if g["params"]]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def poly_lr(optimizer, step: int, total: int, power: float = 0.9, warmup: int = 0):
    """lr = base_lr * min(1, (step + 1) / warmup) * (1 - step/total)^power (warmup 0: no warm-up)."""
    factor = (1 - step / max(1, total)) ** power * (min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def run_fingerprint(args, inputs=()) -> str:
    """SHA-256 over a stage's settings (its arguments, minus threads, workers, device and log) and its input files' bytes."""
    settings = {k: v for k, v in sorted(vars(args).items()) if k not in ("threads", "workers", "device", "log", "checkpoint")}
    record = {"settings": settings, "inputs": [file_sha256(p) for p in inputs]}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def save_checkpoint(path, model, optimizer, generator: torch.Generator, epoch: int, step: int, history, fingerprint: str,
                    curve=None):
    """Everything needed to continue training after ``epoch`` epochs, as HDF5 (weights, momentum, sampler RNG, the
    per-step training curve so far)."""
    attrs = {"stage": "checkpoint", "epoch": epoch, "step": step, "history": json.dumps(history),
             "fingerprint": fingerprint}
    with write_store(path, attrs) as store:
        if curve:
            write_curve(store.create_group("training_curve"), curve)
        write_state_dict(store.create_group("state_dict"), model.state_dict())
        momentum = store.create_group("momentum")
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for index, param in enumerate(params):
            buffer = optimizer.state.get(param, {}).get("momentum_buffer")
            if buffer is not None:
                momentum.create_dataset(str(index), data=buffer.detach().cpu().numpy())
        store.create_dataset("generator", data=generator.get_state().numpy())


def load_checkpoint(path, model, optimizer, generator: torch.Generator, fingerprint: str, curve=None):
    """Restore a checkpoint made for the same ``fingerprint`` (its training curve into the list ``curve``); return
    (epoch, step, history) or None to start afresh."""
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
            if curve is not None:
                curve[:] = read_curve(store["training_curve"]) if "training_curve" in store else []
    except (OSError, KeyError) as exc:
        log.warning("ignoring unreadable checkpoint %s (%s); training from the start", path, exc)
        return None
    log.info("resuming from checkpoint %s after epoch %d", path, epoch)
    return epoch, step, history


def schedule(length: dict, batches: int) -> tuple[int, int]:
    """(epochs, total steps) of a training section giving ``epochs`` (total = epochs x batches) or ``steps``
    (epochs = ceil(steps / batches), total = steps)."""
    if length.get("steps") is not None:
        return math.ceil(length["steps"] / max(1, batches)), int(length["steps"])
    return int(length["epochs"]), int(length["epochs"]) * batches


def fit(model, dataset, loss_fn, optimizer, length: dict, batch_size: int, device, seed: int, name: str,
        checkpoint=None, fingerprint: str = "", workers: int = 0, curve: list | None = None, another_cycle=None):
    """Train ``model`` for ``length`` (a section's ``epochs`` or ``steps``) with ``loss_fn(model, batch, progress) -> loss``
    (progress: the share of the training steps done, 0 to 1, for losses that change over training); returns
    per-epoch mean losses. ``loss_fn`` may return (loss, {term: value}); each step's loss and terms are appended to
    ``curve`` (a list, when given) as {"step", "loss", ...terms}, kept in the checkpoint across a resume.

    With ``checkpoint`` (a path outside the stage's outputs), the state is saved after every epoch, the
    last one included: a run killed mid-training continues from the last saved epoch, ending with the same
    weights as an uninterrupted run, and a stage that fails after training (predicting, writing) finds the
    trained weights there on its rerun. The stage deletes it with ``discard_checkpoint`` once every output
    is written.

    ``length`` may also hold ``warmup_steps`` (the learning rate rises linearly over them, see ``poly_lr``),
    ``max_grad_norm`` (gradients are rescaled to at most this L2 norm over all parameters; each step's norm before
    clipping goes into ``curve`` as ``grad_norm``) and ``max_cycles``: with ``another_cycle(model, step) -> bool``
    given, it is asked at the end of the schedule whether to train another schedule of the same length from the
    weights reached (the learning rate restarts, ``progress`` stays 1), up to ``max_cycles`` schedules in all.
    The schedule a run has reached is recovered from the checkpoint's step, so a resumed run, or one whose
    ``max_cycles`` was raised, goes on where it was.

    ``workers`` DataLoader processes decode and augment the batches (pinned memory and asynchronous copies on
    CUDA); every crop is drawn from a generator seeded by (seed, epoch, image), so the count changes no result.
    """
    generator = torch.Generator().manual_seed(seed)
    device = local_device(device)
    pin = torch.device(device).type == "cuda"
    rank, processes = world()
    if processes == 1:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) > batch_size,
                            num_workers=workers, generator=generator, pin_memory=pin)
    else:  # torchrun: the same global batches everywhere, each process its share (wsss_steps/lib/distributed.py)
        start_group(device)
        shares = ShareSampler(len(dataset), batch_size, len(dataset) > batch_size, generator, rank, processes)
        loader = DataLoader(dataset, batch_sampler=shares, num_workers=workers, generator=generator, pin_memory=pin)
        log.info("%s: process %d of %d, %d of each batch of %d", name, rank, processes, batch_size // processes, batch_size)
        if torch.device(device).type == "cuda":  # BatchNorm statistics of the global batch (SyncBatchNorm is CUDA-only)
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    epochs, cycle = schedule(length, len(loader))
    max_cycles = int(length.get("max_cycles") or 1)
    warmup, max_norm = int(length.get("warmup_steps") or 0), length.get("max_grad_norm")
    clipped = [p for group in optimizer.param_groups for p in group["params"]] if max_norm is not None else []
    if length.get("steps") is not None:
        log.info("%s: %d steps = %d epochs of %d batches (%d images)", name, cycle, epochs, len(loader), len(dataset))
    first, step, history = 0, 0, []
    model.to(device).train()
    # fp16 gradients underflow without loss scaling (backbone.amp fp16 on CUDA); disabled, the scaler is a no-op
    fp16 = any(getattr(m, "amp", None) == "fp16" for m in model.modules())
    scaler = torch.amp.GradScaler("cuda", enabled=fp16 and torch.device(device).type == "cuda")
    if checkpoint is not None:
        resumed = load_checkpoint(checkpoint, model, optimizer, generator, fingerprint, curve)
        if resumed is not None:
            first, step, history = resumed
            if step >= cycle and another_cycle is None:
                log.info("%s: training had finished (%d epochs); going on from the trained weights", name, first)
    total = max(1, math.ceil(step / max(1, cycle))) * cycle  # the end of the schedule the run is in
    while True:
        last = first + math.ceil(max(0, total - step) / max(1, len(loader)))
        for epoch in range(first, last):
            dataset.epoch = epoch
            losses, start = [], time.time()
            bar = progress(loader, desc=f"{name} epoch {epoch + 1}/{last}", leave=False)
            for batch in bar:
                if step >= total:  # training by steps ends inside its last epoch
                    break
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                poly_lr(optimizer, step % cycle, cycle, warmup=warmup)
                loss = loss_fn(model, batch, min(1.0, step / cycle))
                loss, terms = loss if isinstance(loss, tuple) else (loss, {})
                if not math.isfinite(loss.item()):
                    raise FloatingPointError(f"{name}: loss became {loss.item()} at epoch {epoch + 1}; lower the learning rate.")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                average_gradients(model.parameters())
                if max_norm is not None:
                    scaler.unscale_(optimizer)
                    terms = {**terms, "grad_norm": torch.nn.utils.clip_grad_norm_(clipped, max_norm)}
                scaler.step(optimizer)
                scaler.update()
                losses.append(loss.item())
                bar.set_postfix(loss=float(np.mean(losses)))
                step += 1
                if curve is not None:
                    curve.append({"step": step, "loss": losses[-1], **{k: float(v) for k, v in terms.items()}})
            history.append(float(np.mean(losses)) if losses else float("nan"))
            log.info("%s epoch %d/%d loss %.4f (%.1f s)", name, epoch + 1, last, history[-1], time.time() - start)
            if checkpoint is not None and is_main():
                save_checkpoint(checkpoint, model, optimizer, generator, epoch + 1, step, history, fingerprint, curve)
            fault_point(f"{name} epoch {epoch + 1}")
        first = max(first, last)
        if another_cycle is None:
            break
        go_on = another_cycle(model, step)
        if not go_on:
            break
        if total // cycle >= max_cycles:
            log.info("%s: stopping after %d steps: max_cycles (%d schedules of %d steps) reached", name, step,
                     max_cycles, cycle)
            break
        total += cycle
        log.info("%s: training schedule %d of at most %d (%d more steps, the learning rate restarts)", name,
                 total // cycle, max_cycles, cycle)
        model.train()
    model.eval()
    if processes > 1:  # the trained weights are the same in every process: rank 0 goes on to write the outputs
        end_group()
        if not is_main():
            raise SystemExit(0)
    return history


def discard_checkpoint(checkpoint):
    """Delete a training stage's checkpoint: call it last, once every output of the stage is written."""
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
