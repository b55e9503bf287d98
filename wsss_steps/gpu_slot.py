"""Give each GPU job a GPU of its own: ``python -m wsss_steps.gpu_slot [options] -- CMD ...``.

Snakemake's ``--resources gpu=N`` only caps how many GPU jobs run at once; it never tells a job
which GPU to use, so two jobs on a two-GPU machine both land on GPU 0 (snakemake issue 281).
This wrapper takes a non-blocking ``flock`` on one lock file per GPU id, trying the ids in order
and retrying after a short sleep while all are taken, sets ``CUDA_VISIBLE_DEVICES`` to the id it
got and then replaces itself with CMD (``exec``). CMD inherits the locked file descriptor, so
the lock lasts exactly as long as the job: the kernel drops it when the job ends, crashes or is
killed, and CMD's signals and exit status are its own.

Where the GPU ids come from, first match wins:

1. ``SLURM_JOB_ID`` is set: SLURM already gave this job its GPUs and its own
   ``CUDA_VISIBLE_DEVICES``; CMD runs unchanged.
2. ``WSSS_GPU_IDS`` (comma-separated; set but empty means "no GPUs", for tests and overrides).
3. ``CUDA_VISIBLE_DEVICES`` as Snakemake saw it (empty or ``-1``: no GPUs).
4. The GPUs that ``nvidia-smi`` lists (a workstation that sets no ``CUDA_VISIBLE_DEVICES``).

With no ids (a CPU machine) CMD runs unchanged at once: a job never waits for a slot that does
not exist. Lock files live in ``--lock-dir``, else ``$WSSS_GPU_LOCK_DIR``, else
``results/.gpu-slots`` under the working directory; point several workflows on one machine at
the same directory to make them share the GPUs.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import __version__

PROG = "python -m wsss_steps.gpu_slot"
DEFAULT_LOCK_DIR = Path("results") / ".gpu-slots"


def parse_ids(text: str) -> list[str]:
    """GPU ids from a comma-separated list, in order, without blanks or repeats."""
    ids = []
    for part in text.split(","):
        part = part.strip()
        if part and part not in ids:
            ids.append(part)
    return ids


def visible_ids(text: str) -> list[str]:
    """The ids in a CUDA_VISIBLE_DEVICES value; like CUDA, a negative id ends the list."""
    ids = []
    for gpu_id in parse_ids(text):
        if re.fullmatch(r"-\d+", gpu_id):
            break
        ids.append(gpu_id)
    return ids


def nvidia_smi_ids(timeout: float = 10.0) -> list[str]:
    """Indices of the GPUs nvidia-smi lists; empty without nvidia-smi or when it fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=timeout, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip().isdigit()]


def slot_ids(environ, probe=nvidia_smi_ids) -> tuple[list[str], str]:
    """The GPU ids to hand out one per job, and where they came from (or why there are none)."""
    if environ.get("SLURM_JOB_ID"):
        return [], f"SLURM job {environ['SLURM_JOB_ID']} got its GPUs from SLURM"
    if "WSSS_GPU_IDS" in environ:
        ids = parse_ids(environ["WSSS_GPU_IDS"])
        return ids, "WSSS_GPU_IDS" if ids else "WSSS_GPU_IDS is empty"
    if "CUDA_VISIBLE_DEVICES" in environ:
        ids = visible_ids(environ["CUDA_VISIBLE_DEVICES"])
        return ids, "CUDA_VISIBLE_DEVICES" if ids else "CUDA_VISIBLE_DEVICES lists no GPU"
    ids = probe()
    return ids, "nvidia-smi" if ids else "no GPU found"


def lock_dir(option, environ, cwd) -> Path:
    """Where the lock files live: the option, else $WSSS_GPU_LOCK_DIR, else results/.gpu-slots in cwd."""
    chosen = option or environ.get("WSSS_GPU_LOCK_DIR") or DEFAULT_LOCK_DIR
    return Path(cwd) / chosen


def lock_path(directory, gpu_id: str) -> Path:
    """The lock file of one GPU id (characters unsafe in file names become '_')."""
    return Path(directory) / f"gpu-{re.sub(r'[^A-Za-z0-9._-]', '_', gpu_id)}.lock"


def try_lock(path) -> int | None:
    """An open descriptor holding an exclusive flock on ``path``, or None when someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def acquire(ids, directory, poll=0.5, timeout=None, sleep=time.sleep, clock=time.monotonic, on_wait=None):
    """Lock the first free id in order, retrying every ``poll`` s; (id, fd), or (None, None) after ``timeout`` s."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    start = clock()
    while True:
        for gpu_id in ids:
            fd = try_lock(lock_path(directory, gpu_id))
            if fd is not None:
                return gpu_id, fd
        if timeout is not None and clock() - start >= timeout:
            return None, None
        if on_wait is not None:
            on_wait()
            on_wait = None
        sleep(poll)


def acquire_many(ids, count: int, directory, poll=0.5, timeout=None, sleep=time.sleep, clock=time.monotonic,
                 on_wait=None):
    """Lock ``count`` free ids at once, all or none (a job holding some while waiting for more could block another
    doing the same), retrying every ``poll`` s; ([ids], [fds]), or ([], []) after ``timeout`` s."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    start = clock()
    while True:
        got = []
        for gpu_id in ids:
            fd = try_lock(lock_path(directory, gpu_id))
            if fd is not None:
                got.append((gpu_id, fd))
                if len(got) == count:
                    return [g for g, _ in got], [f for _, f in got]
        for _, fd in got:
            os.close(fd)  # not enough: give them back
        if timeout is not None and clock() - start >= timeout:
            return [], []
        if on_wait is not None:
            on_wait()
            on_wait = None
        sleep(poll)


def note_holder(fd: int):
    """Write who holds the lock into the lock file, for people wondering which job has a GPU."""
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())


def say(message: str):
    """One line on stderr, which a rule's ``> {log} 2>&1`` sends to its log."""
    print(f"gpu slot: {message}", file=sys.stderr, flush=True)


def run(command, env):
    """Replace this process with ``command``; exit 127 when it is not found, 126 when it cannot run."""
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        say(f"cannot run {command[0]!r}: {exc.strerror}")
        sys.exit(126 if isinstance(exc, PermissionError) else 127)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog=PROG, usage=f"{PROG} [--lock-dir DIR] [--poll S] [--gpus N] [--timeout S] -- CMD [ARG ...]",
        description="Run CMD on a GPU of its own: lock one of the known GPU ids, set CUDA_VISIBLE_DEVICES to it "
                    "and exec CMD. Ids come from WSSS_GPU_IDS, else CUDA_VISIBLE_DEVICES, else nvidia-smi; "
                    "inside a SLURM job (SLURM_JOB_ID) or with no ids CMD runs unchanged.")
    p.add_argument("--version", action="version", version=f"wsss-steps {__version__}")
    p.add_argument("--lock-dir", metavar="DIR",
                   help="lock files (default: $WSSS_GPU_LOCK_DIR, else results/.gpu-slots in the working directory)")
    p.add_argument("--poll", type=float, default=0.5, metavar="S",
                   help="seconds between tries while every GPU is taken (default: 0.5)")
    p.add_argument("--gpus", type=int, default=1, metavar="N",
                   help="GPUs the command needs, all locked at once (default: 1); for torchrun's N processes")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="give up (exit 75) after waiting this many seconds (default: wait as long as it takes)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD", help="the command to run, after --")
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given; write it after --")
    ids, source = slot_ids(os.environ)
    if not ids:
        shown = os.environ.get("CUDA_VISIBLE_DEVICES")
        say(f"{source}; CUDA_VISIBLE_DEVICES={'(unset)' if shown is None else shown}, running the command as it is")
        run(command, os.environ)
    directory = lock_dir(args.lock_dir, os.environ, Path.cwd())
    started = time.monotonic()
    if args.gpus > 1:
        if args.gpus > len(ids):
            say(f"the command needs {args.gpus} GPUs but {source} gives {len(ids)} ({','.join(ids)}); lower training_gpus")
            sys.exit(75)
        got, fds = acquire_many(ids, args.gpus, directory, poll=args.poll, timeout=args.timeout,
                                on_wait=lambda: say(f"fewer than {args.gpus} of {','.join(ids)} are free, waiting"))
        if not got:
            say(f"{args.gpus} GPUs of {','.join(ids)} did not come free within {args.timeout:g} s, giving up")
            sys.exit(75)
        for fd in fds:
            note_holder(fd)
            os.set_inheritable(fd, True)
        say(f"CUDA_VISIBLE_DEVICES={','.join(got)} ({args.gpus} of {','.join(ids)} from {source}, "
            f"waited {time.monotonic() - started:.1f} s)")
        run(command, dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(got)))
    gpu_id, fd = acquire(ids, directory, poll=args.poll, timeout=args.timeout,
                         on_wait=lambda: say(f"all of {','.join(ids)} are taken, waiting for one"))
    if gpu_id is None:
        say(f"no GPU of {','.join(ids)} came free within {args.timeout:g} s, giving up")
        sys.exit(75)
    note_holder(fd)
    os.set_inheritable(fd, True)
    say(f"CUDA_VISIBLE_DEVICES={gpu_id} (one of {','.join(ids)} from {source}, "
        f"waited {time.monotonic() - started:.1f} s, lock {lock_path(directory, gpu_id)})")
    run(command, dict(os.environ, CUDA_VISIBLE_DEVICES=gpu_id))


if __name__ == "__main__":
    main()
