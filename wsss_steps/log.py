"""Logging and progress bars shared by every stage."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from tqdm import tqdm


def setup_logging(path=None) -> logging.Logger:
    """Log to stderr and, when ``path`` is given, to that file too."""
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
