"""Data-parallel training over several processes (one per GPU, or gloo processes on a CPU), started by ``torchrun``.

Every process draws the same global batches (the sampler's generator is seeded alike everywhere) and trains on
its share, ``batch[rank::world]``; the gradients are averaged over the processes after each backward pass, so
N processes with the same global batch follow the schedule of one process and end with the same weights (within
float rounding: the mean of the shares' mean losses is the mean loss of the global batch when the shares are
equal). The averaging is an explicit all-reduce of the gradients rather than a DistributedDataParallel wrapper,
so that every loss function may call any method of the model. Rank 0 alone writes checkpoints and outputs.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, RandomSampler


def world() -> tuple[int, int]:
    """(rank, world size) of this process: from torchrun's RANK and WORLD_SIZE, (0, 1) when started alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def start_group(device) -> None:
    """Join torchrun's process group (nccl on CUDA, gloo on the CPU) when there is more than one process."""
    rank, size = world()
    if size > 1 and not dist.is_initialized():
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=size)
        if rank > 0:  # one log: the other processes report only warnings and errors
            logging.getLogger("wsss_steps").setLevel(logging.WARNING)


def end_group() -> None:
    """Leave the process group, once every process got there."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def local_device(device):
    """The device of this process: on CUDA, its LOCAL_RANK's GPU; otherwise ``device``."""
    if torch.device(device).type == "cuda" and world()[1] > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(device)


class ShareSampler(BatchSampler):
    """The global batches of a seeded shuffle (the same on every process), each cut to this process's share
    ``batch[rank::world]``: len() and the order of batches are those of one process with the global batch."""

    def __init__(self, size: int, batch_size: int, drop_last: bool, generator: torch.Generator, rank: int, world_size: int):
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not a multiple of the {world_size} processes; "
                             "each needs an equal share of every batch.")
        super().__init__(RandomSampler(range(size), generator=generator), batch_size, drop_last)
        self.rank, self.world_size = rank, world_size

    def __iter__(self):
        for batch in super().__iter__():
            yield batch[self.rank::self.world_size]


def average_gradients(parameters) -> None:
    """g <- (1/N) sum over the N processes of g, for every parameter with a gradient (no-op for one process)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def is_main() -> bool:
    """Whether this process writes the stage's checkpoints and outputs (rank 0)."""
    return world()[0] == 0
