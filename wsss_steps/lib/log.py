"""Logging and progress bars shared by every stage."""

from __future__ import annotations

import argparse
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


def log_usage():
    """Log the stage's time and peak memory, once (runtime.run_stage calls it as the stage ends)."""
    if _STARTED and not _STARTED[1:]:
        _STARTED.append(True)
        logging.getLogger("wsss_steps").info("%s", usage_line(_STARTED[0]))


def setup_logging(path=None) -> logging.Logger:
    """Log to stderr and, when ``path`` is given, to that file too; a stage's log ends with its time and peak memory."""
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if not _STARTED and main_spec is not None and main_spec.name.startswith("wsss_steps."):
        # a stage run as `python -m wsss_steps.<stage>`: run_stage writes the time and memory line at its end
        _STARTED.append(time.time())
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


class PlainProgress:
    """Progress as plain log lines (no carriage returns): at every ``step`` share of the work (but not within
    ``min_interval`` seconds of the last line), at least every ``every`` seconds, and at the end; each line gives the
    count, the rate and what ``set_postfix`` was last given (a loss)."""

    def __init__(self, iterable, desc: str = "", total: int | None = None, step: float = 0.1, every: float = 60.0,
                 min_interval: float = 5.0, clock=time.monotonic, emit=None, **_ignored):
        self.iterable, self.desc, self.step, self.every, self.clock = iterable, desc, step, every, clock
        self.min_interval = min_interval
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.emit = emit or logging.getLogger("wsss_steps").info
        self.postfix = ""

    def set_postfix(self, **values):
        self.postfix = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())

    def _line(self, done: int, started: float) -> str:
        elapsed = self.clock() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        count = f"{done}/{self.total} ({100 * done / self.total:.0f} %)" if self.total else f"{done}"
        line = f"{self.desc}: {count}, {rate:.2f} it/s, {elapsed:.0f} s"
        return f"{line}, {self.postfix}" if self.postfix else line

    def __iter__(self):
        started = last = self.clock()
        next_share, done = self.step, 0
        for item in self.iterable:
            yield item
            done += 1
            now = self.clock()
            share = done / self.total if self.total else 0.0
            at_step = self.total and share + 1e-9 >= next_share and done < self.total and now - last >= self.min_interval
            if at_step or now - last >= self.every:
                self.emit(self._line(done, started))
                last = now
                while self.total and next_share <= share + 1e-9:
                    next_share += self.step
        self.emit(self._line(done, started))


def progress(iterable, **kwargs):
    """A tqdm bar when stderr is a terminal; plain periodic log lines (PlainProgress) when it is a file or pipe."""
    if sys.stderr.isatty():
        return tqdm(iterable, mininterval=2.0, file=sys.stderr, dynamic_ncols=False, ncols=80, **kwargs)
    return PlainProgress(iterable, **kwargs)


def first_paragraph(doc: str) -> str:
    """A module docstring's first paragraph as one line: the description --help prints, never cut mid-sentence."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def command_parser(prog: str, doc: str, **kwargs) -> argparse.ArgumentParser:
    """The argument parser of a command: ``python -m wsss_steps.<prog>``, the docstring's first paragraph as its
    description, and ``--version``."""
    from .. import __version__

    parser = argparse.ArgumentParser(prog=f"python -m wsss_steps.{prog}", description=first_paragraph(doc), **kwargs)
    parser.add_argument("--version", action="version", version=f"wsss-steps {__version__}")
    return parser
