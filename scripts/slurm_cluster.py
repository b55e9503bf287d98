#!/usr/bin/env python3
"""A throwaway one-node SLURM cluster on localhost with two fake GPUs, for testing the SLURM profile.

    python scripts/slurm_cluster.py start DIR   # install if needed, start; prints what to export
    python scripts/slurm_cluster.py stop DIR    # stop the daemons started in DIR (by their PIDs)

Needs root (the daemons run as root) and Debian's packages slurm-wlm and munge, which it installs
with apt-get when they are missing. Everything else lives under DIR: slurm.conf, gres.conf, the
munge key and socket, state, spool, logs, and two character devices standing in for GPUs (SLURM
only hands out GRES that exist as device files). Nothing under /etc is touched and nothing is
started as a system service: clients find the cluster through SLURM_CONF=DIR/etc/slurm.conf.

tests/workflow/test_slurm.py uses the same functions (`install`, `Cluster`).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "munge"]
PROGRAMS = ["munged", "munge", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "sinfo", "scancel"]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from debian_packages import Unavailable, missing, which  # noqa: E402  (scripts/ is not a package)
import debian_packages  # noqa: E402


def missing_programs() -> list[str]:
    """The SLURM and munge programs that are not installed."""
    return missing(PROGRAMS)


def install(timeout: float = 240.0, log=print):
    """Install slurm-wlm and munge with apt-get unless present; raises Unavailable when that cannot be done."""
    debian_packages.install(PACKAGES, PROGRAMS, timeout=timeout, log=log)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_pid(pid: int, grace: float = 10.0):
    """SIGTERM one process we started, SIGKILL it after ``grace`` seconds; reap it if it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(50):
        if not alive(pid):
            return
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """Whether a process still runs (a zombie child of ours is reaped and counts as gone)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    try:
        return state.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def runs(pid: int, program: str) -> bool:
    """Whether process ``pid`` is still ``program`` (a PID from an old pid file may belong to someone else now)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return False
    return Path(argv0).name == program


class Cluster:
    """One slurmctld, one slurmd (node with 4 CPUs and gpu:2) and a private munged, all under ``root``."""

    def __init__(self, root, cpus: int = 4, memory_mb: int = 16000, gpus: int = 2):
        self.root = Path(root).resolve()
        self.cpus, self.memory_mb, self.gpus = cpus, memory_mb, gpus
        self.node = socket.gethostname().split(".")[0]
        self.etc = self.root / "etc"
        self.logs = self.root / "log"
        self.conf = self.etc / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.pid_file = self.root / "pids.json"
        self.pids: dict[str, int] = {}

    # Set-up.

    def env(self) -> dict:
        """Environment for SLURM clients (sbatch, squeue, snakemake) talking to this cluster."""
        path = os.pathsep.join([str(self.root / "bin"), os.environ.get("PATH", "")])
        return dict(os.environ, SLURM_CONF=str(self.conf), PATH=path)

    def write_files(self):
        """slurm.conf, gres.conf, munge key and the fake GPU devices."""
        for sub in ("bin", "etc", "log", "state", "spool", "run", "munge", "dev"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o700)
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        devices = []
        for index in range(self.gpus):
            device = self.root / "dev" / f"gpu{index}"
            if not device.exists():
                try:
                    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # same numbers as /dev/null
                except OSError as exc:
                    raise Unavailable(f"cannot create a character device for a fake GPU ({exc.strerror})") from None
            devices.append(device)
        ctld_port, slurmd_port = free_port(), free_port()
        host = socket.gethostname()
        self.conf.write_text("\n".join([
            "# One-node test cluster written by scripts/slurm_cluster.py.",
            "ClusterName=wsss-test",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.logs / 'slurmctld.log'}",
            f"SlurmdLogFile={self.logs / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "GresTypes=gpu",
            # Finished jobs stay visible to squeue (the profile's status command) for 10 minutes.
            "MinJobAge=600",
            "ReturnToService=2",
            # The node may claim more CPUs and memory than the machine has: jobs here are tiny.
            "SlurmdParameters=config_overrides",
            f"NodeName={self.node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={self.cpus} "
            f"RealMemory={self.memory_mb} Gres=gpu:{self.gpus} State=UNKNOWN",
            f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        (self.etc / "gres.conf").write_text("".join(f"NodeName={self.node} Name=gpu File={d}\n" for d in devices))
        # Inside a job, snakemake-executor-plugin-slurm-jobstep starts the rule with `srun` after
        # dropping every SLURM_* variable, SLURM_CONF included, so a bare srun would look for
        # /etc/slurm/slurm.conf. This srun, first on PATH, points it back at this cluster.
        srun = self.root / "bin" / "srun"
        real = which("srun", skip=srun.parent)
        srun.write_text(f"#!/bin/sh\nSLURM_CONF={shlex.quote(str(self.conf))} exec {shlex.quote(real)} \"$@\"\n")
        srun.chmod(0o755)

    # Daemons.

    def _spawn(self, name: str, command: list[str]):
        log = open(self.logs / f"{name}.out", "ab")
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=self.env(), cwd=self.root, start_new_session=True)
        finally:
            log.close()
        self.pids[name] = proc.pid
        self.pid_file.write_text(json.dumps(self.pids))

    def _wait(self, what: str, check, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [name for name, pid in self.pids.items() if not alive(pid)]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}:\n{self.log_tails()}")
            if check():
                return
            time.sleep(0.3)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.log_tails()}")

    def client(self, *args, timeout: float = 20.0) -> subprocess.CompletedProcess:
        """Run a SLURM client command (scontrol, squeue, ...) against this cluster."""
        return subprocess.run([which(args[0]) or args[0], *args[1:]], env=self.env(), capture_output=True,
                              text=True, timeout=timeout)

    def _munge_works(self) -> bool:
        try:
            encoded = subprocess.run([which("munge"), "-n", f"--socket={self.munge_socket}"], capture_output=True,
                                     timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return encoded.returncode == 0 and encoded.stdout.startswith(b"MUNGE:")

    def _node_idle(self) -> bool:
        try:
            state = self.client("sinfo", "-h", "-N", "-o", "%T", timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return state.returncode == 0 and state.stdout.strip() == "idle"

    def start(self, timeout: float = 60.0):
        """Write the files and start munged, slurmctld and slurmd; return once the node is idle."""
        self.write_files()
        deadline = time.monotonic() + timeout
        munge_dir = self.root / "munge"
        self._spawn("munged", [which("munged"), "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={munge_dir / 'munge.key'}", f"--pid-file={munge_dir / 'munged.pid'}",
                               f"--seed-file={munge_dir / 'munged.seed'}", f"--log-file={self.logs / 'munged.log'}"])
        self._wait("munged", self._munge_works, deadline - time.monotonic())
        self._spawn("slurmctld", [which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self.client("scontrol", "ping", timeout=5).stdout.count("UP") > 0,
                   deadline - time.monotonic())
        self._spawn("slurmd", [which("slurmd"), "-D", "-N", self.node, "-f", str(self.conf)])
        self._wait("an idle node", self._node_idle, deadline - time.monotonic())

    def stop(self, grace: float = 10.0):
        """Cancel every job, then stop the daemons this object (or the pid file) knows, newest first."""
        pids = self.pids or (json.loads(self.pid_file.read_text()) if self.pid_file.exists() else {})
        if pids.get("slurmctld") and alive(pids["slurmctld"]):
            try:
                self.client("scancel", "--full", "--user", str(os.getuid()), timeout=10)
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline:
                    left = self.client("squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING,SUSPENDED", timeout=5)
                    if left.returncode != 0 or not left.stdout.strip():
                        break
                    time.sleep(0.5)
            except subprocess.TimeoutExpired:
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            if pids.get(name) and runs(pids[name], name):
                stop_pid(pids[name], grace)
        self.pids = {}
        if self.pid_file.exists():
            self.pid_file.unlink()

    def log_tails(self, lines: int = 15) -> str:
        """The last lines of every daemon log, for failure messages."""
        parts = []
        for path in sorted(self.logs.glob("*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python scripts/slurm_cluster.py",
                                     description="A one-node SLURM test cluster with two fake GPUs under DIR.")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("dir", help="folder for the cluster's configuration, state and logs")
    args = parser.parse_args(argv)
    cluster = Cluster(args.dir)
    if args.action == "stop":
        cluster.stop()
        print(f"stopped the cluster in {cluster.root}")
        return 0
    try:
        install()
        cluster.start()
    except Unavailable as exc:
        print(f"slurm_cluster: cannot run here: {exc}", file=sys.stderr)
        return 2
    except Exception:
        cluster.stop()
        raise
    print(f"cluster up (daemons {cluster.pids}); use it with:\n"
          f"  export SLURM_CONF={cluster.conf} PATH={cluster.root / 'bin'}:$PATH\n"
          f"stop it with:\n  python scripts/slurm_cluster.py stop {cluster.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
