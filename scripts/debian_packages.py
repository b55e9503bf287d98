"""Install Debian packages with apt-get for a test that needs programs outside PyPI (SLURM, Chromium).

    from debian_packages import install, Unavailable
    install(["chromium"], programs=["chromium"], timeout=240)

Needs root and apt-get; tries `apt-get install`, and after an `apt-get update` once more. Raises Unavailable
with the reason when the programs cannot be had, so a test can skip with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

SBIN = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]


class Unavailable(RuntimeError):
    """This machine cannot provide the programs (not root, no apt-get, packages cannot be installed)."""


def which(program: str, skip=None) -> str | None:
    """Path of a program on PATH or in the sbin folders (root's daemons live there), not looking in ``skip``."""
    folders = [f for f in [*os.environ.get("PATH", "").split(os.pathsep), *SBIN] if f and f != str(skip)]
    return shutil.which(program, path=os.pathsep.join(folders))


def missing(programs) -> list[str]:
    """The programs that are not installed."""
    return [p for p in programs if which(p) is None]


def install(packages, programs, timeout: float = 240.0, log=print):
    """Install ``packages`` with apt-get unless every one of ``programs`` is present; raises Unavailable when that
    cannot be done."""
    if not missing(programs):
        return
    names = " ".join(packages)
    if os.geteuid() != 0:
        raise Unavailable(f"{names} is not installed ({', '.join(missing(programs))} missing) and installing it "
                          "needs root")
    apt = shutil.which("apt-get")
    if apt is None:
        raise Unavailable(f"{names} is not installed and there is no apt-get to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    deadline = time.monotonic() + timeout
    command = [apt, "install", "-y", "-q", "--no-install-recommends", *packages]
    for attempt in ("install", "update", "install"):
        step = [apt, "update", "-q"] if attempt == "update" else command
        log(f"debian_packages: {' '.join(step)}")
        try:
            proc = subprocess.run(step, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Unavailable(f"'{' '.join(step)}' did not finish within {timeout:.0f} s") from None
        if attempt == "install" and proc.returncode == 0:
            break
        if attempt == "update" and proc.returncode != 0:
            raise Unavailable(f"apt-get update failed:\n{proc.stdout[-1500:]}")
    else:
        raise Unavailable(f"apt-get could not install {names}:\n{proc.stdout[-1500:]}")
    if missing(programs):
        raise Unavailable(f"after installing {names}, still missing: {', '.join(missing(programs))}")
