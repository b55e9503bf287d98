"""Device choice, seeding and command-line helpers shared by the stages."""

from __future__ import annotations

import argparse
import logging
import os
import random

import numpy as np
import torch

from .config import settings_arg
from .log import command_parser

log = logging.getLogger("wsss_steps")


class DeviceError(RuntimeError):
    """A CUDA device was asked for on a machine without one."""


def resolve_device(request: str) -> torch.device:
    """'cpu', 'cuda' (fails at once without CUDA) or 'auto' (CUDA when available, else CPU, said in the log)."""
    if request == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if request == "cuda":
        if not available:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")
            raise DeviceError(f"device 'cuda' was requested but PyTorch sees no CUDA device "
                              f"(CUDA_VISIBLE_DEVICES={visible}); set device: auto or cpu.")
        return torch.device("cuda")
    if request != "auto":
        raise DeviceError(f"device must be auto, cpu or cuda, not '{request}'.")
    if available:
        log.info("device auto: using CUDA (%s)", torch.cuda.get_device_name(0))
        return torch.device("cuda")
    log.info("device auto: no CUDA device visible, running on the CPU")
    return torch.device("cpu")


def seed_everything(seed: int):
    """Seed Python, NumPy and PyTorch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_threads(threads: int | None):
    """Use the rule's threads for PyTorch's CPU kernels."""
    if threads:
        torch.set_num_threads(max(1, int(threads)))


def loader_workers(request, threads, device) -> int:
    """DataLoader workers: an explicit count, or for 'auto' the stage's threads on CUDA (decoding and augmenting
    beside the GPU) and 0 on the CPU (where workers would take the cores the network computes on)."""
    if request is None or str(request) == "auto":
        return max(1, int(threads or os.cpu_count() or 1)) if torch.device(device).type == "cuda" else 0
    try:
        count = int(request)
    except ValueError:
        count = -1
    if count < 0:
        raise ValueError(f"workers must be auto or a count of 0 or more, not {request!r}")
    return count


def base_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """An argument parser with the options every stage shares."""
    parser = command_parser(prog, doc)
    parser.add_argument("--dataset", required=True, type=settings_arg(needs=("root", "classes")), help="dataset settings as JSON (root, classes, ignore_index)")
    parser.add_argument("--device", default=os.environ.get("WSSS_DEVICE", "auto"), choices=["auto", "cpu", "cuda"],
                        help="auto (CUDA when available), cpu or cuda (default: $WSSS_DEVICE, else auto)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WSSS_THREADS", "0")) or None,
                        help="CPU threads (default: PyTorch's choice)")
    parser.add_argument("--workers", default=os.environ.get("WSSS_WORKERS", "auto"),
                        help="DataLoader worker processes of the training stages (the others ignore it): a number, or "
                             "auto (the threads on CUDA, none on the CPU) (default: $WSSS_WORKERS, else auto)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of the stage's crops, initialisation and sampling (default: 0)")
    parser.add_argument("--log", help="log file (default: stderr only)")
    parser.add_argument("--manifests", nargs="*", default=[], metavar="FILE",
                        help="the dataset's content manifests the workflow planned this job with (their digest is "
                             "recorded in the provenance of what the stage writes)")
    return parser


def record_manifests(args):
    """Record the digest of the manifests given with --manifests in every artifact's provenance."""
    from .artifacts import RUN_PROVENANCE
    from ..data.manifest import manifest_digest

    if getattr(args, "manifests", None):
        RUN_PROVENANCE["dataset_manifest"] = manifest_digest(args.manifests)


def start(parser: argparse.ArgumentParser, argv=None):
    """Parse a stage's arguments, set up logging, threads and device; return (args, log, device, layout)."""
    from .config import load_params
    from ..data.voc import VOCLayout
    from .log import setup_logging

    args = parser.parse_args(argv)
    logger = setup_logging(args.log)
    record_manifests(args)
    set_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except DeviceError as exc:
        logger.error("%s", exc)
        raise SystemExit(1) from None
    return args, logger, device, VOCLayout.from_config(load_params(args.dataset))


def user_error_types() -> tuple:
    """The errors that name a file or key and what to do: shown as one line, without a traceback."""
    from .artifacts import ArtifactError
    from .config import ConfigError
    from ..data.voc import DatasetError
    from ..data.synthetic import NotOurs
    from .files import DiskFull
    from .health import HealthStop
    from ..nets.backbones import WeightsError

    return ArtifactError, ConfigError, DatasetError, DeviceError, DiskFull, HealthStop, NotOurs, WeightsError


def run_stage(main, argv=None) -> int:
    """Run a stage's ``main`` for ``python -m wsss_steps.<stage>``: its log ends with the stage's time and peak memory,
    and an error the user can act on ends it with one line ``ERROR <file or key>: <what>; <what to do>``."""
    from .log import log_usage

    try:
        code = main(argv)
    except Exception as exc:
        log_usage()
        if isinstance(exc, user_error_types()):
            log.error("%s", exc)
            return 1
        raise
    log_usage()
    return code or 0
