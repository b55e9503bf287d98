"""Writing files atomically: a temporary name beside the target, renamed on success (standard library only)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path

try:
    import resource
except ImportError:  # Windows: no file size limit to check
    resource = None

# Failed writes that more space would cure: a full disk, a used-up quota, the shell's file size limit (ulimit -f).
SPACE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                errno.EFBIG: "the file size limit (ulimit -f) is reached"}


class DiskFull(RuntimeError):
    """A file could not be written for lack of space; the unfinished file is removed."""


def space_errno(exc: BaseException) -> int | None:
    """The errno of a write that failed for lack of space, else None (HDF5 puts it in its message, 'errno = 28')."""
    if isinstance(exc, OSError) and exc.errno in SPACE_ERRNOS:
        return exc.errno
    found = re.search(r"errno = (\d+)", str(exc))
    code = int(found.group(1)) if found else None
    return code if code in SPACE_ERRNOS else None


def disk_full(path, code: int, written: int, needed: int | None = None) -> DiskFull:
    """The one sentence for a write that failed for lack of space: the file, the free space, the space it needs."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    more = "needs more" if needed is None else f"its next array needs {needed / 2**20:.1f} MiB"
    remedy = "raise the limit" if code == errno.EFBIG else "free space"
    return DiskFull(f"{path}: could not be written, {SPACE_ERRNOS[code]} ({free / 2**20:.1f} MiB free in {folder}; the "
                    f"file had reached {written / 2**20:.1f} MiB and {more}): {remedy} and rerun the same command "
                    f"(finished stages are kept).")


def no_space(needed: int, code: int = errno.ENOSPC) -> OSError:
    """The error for a write refused before it started because ``needed`` more bytes do not fit."""
    exc = OSError(code, os.strerror(code))
    exc.needed = needed
    return exc


def require_space(path, needed: int):
    """Raise ``no_space`` unless ``needed`` more bytes fit in the file ``path``: free on its disk, and within the
    file size limit (ulimit -f), which a write crossing it would fail with EFBIG."""
    path = Path(path)
    if shutil.disk_usage(path.parent).free < needed:
        raise no_space(needed)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource else -1
    if limit not in (-1, getattr(resource, "RLIM_INFINITY", -1)):
        if (path.stat().st_size if path.exists() else 0) + needed > limit:
            raise no_space(needed, errno.EFBIG)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path):
    """Delete temporaries of ``path`` left by writers that were killed (their process is gone)."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.tmp*"):
        pid = stale.name.rsplit(".tmp", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds.

    Temporaries that killed writers left beside ``path`` are removed first, so a kill leaves no orphan for long.
    A write that fails for lack of space becomes one DiskFull sentence naming ``path`` and the space it needs.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except Exception as exc:
        code = space_errno(exc)
        if code is None or isinstance(exc, DiskFull):
            raise
        raise disk_full(path, code, tmp.stat().st_size if tmp.exists() else 0, getattr(exc, "needed", None)) from None
    finally:
        if tmp.exists():
            tmp.unlink()
