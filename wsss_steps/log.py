"""Logging and progress bars shared by every stage."""

from __future__ import annotations

import atexit
import logging
import resource
import sys
import time
from pathlib import Path

from tqdm import tqdm


_STARTED: list[float] = []


def usage_line(started: float) -> str:
    """Wall time since ``started`` and peak resident memory of this process (worker processes not included)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    line = f"stage took {time.time() - started:.1f} s, peak memory {peak:.0f} MiB"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        line += f", peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
    return line


def _log_usage():
    logging.getLogger("wsss_steps").info("%s", usage_line(_STARTED[0]))


def setup_logging(path=None) -> logging.Logger:
    """Log to stderr and, when ``path`` is given, to that file too; the last line of a run gives time and peak memory."""
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if not _STARTED and main_spec is not None and main_spec.name.startswith("wsss_steps."):
        # a stage run as `python -m wsss_steps.<stage>`: its last log line, written when the process exits
        _STARTED.append(time.time())
        atexit.register(_log_usage)
    logger = logging.getLogger("wsss_steps")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    logger.addHandler(stream)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="w")
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger


def progress(iterable, **kwargs):
    """A tqdm bar on stderr, quiet enough for log files (updates at most every 2 s)."""
    return tqdm(iterable, mininterval=2.0, file=sys.stderr, dynamic_ncols=False, ncols=80, **kwargs)
