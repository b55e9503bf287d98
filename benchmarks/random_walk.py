"""Benchmark: our random walk (``wsss_steps.methods.random_walk.propagate``) against the dense walk of the published code.

Both compute the same formula, vec(M*) = T^t vec(M) with T = D^-1 W^beta over the radius
neighbourhood, on the same inputs:

* ours: ``propagate`` - T as a sparse CSR matrix with N nonzeros per row (``sparse_transition``),
  then t sparse @ dense products with the K classes as columns; never an HW x HW matrix;
* dense: what psa's ``infer_aff.py`` does - build the dense HW x HW transition matrix (here with
  ``wsss_steps.methods.random_walk.dense_transition``), square it log2(t) times to get T^t, multiply the
  CAMs once (psa normalises columns and multiplies from the left; that is the transpose of the
  same product).

Inputs, per feature-map size S x S: a random piecewise-constant feature map (Voronoi cells of
random seeds, about one cell per 16 x 16 pixels, each cell a random 16-channel vector plus a little
noise), its affinities W from ``neighbour_affinity`` (high inside a cell, about 1e-8 across cells
after the power beta), and CAMs for K classes: each cell belongs to one class (half of them
background, class 0) and has that class's evidence on a random 10 % of its pixels, on top of weak
uniform noise in every class. The walk spreads each cell's evidence over the cell, so the argmax
labels are meaningful and the two implementations can be compared on them.

Printed per size: wall time of each (ours: median of 3 walks; dense: one walk, from the affinity
and CAMs to the walked CAMs, after a warm-up walk of t = 2 steps on the top-left 32 x 32 corner that
starts the thread pools and pages in the code), the speed
ratio, the peak memory each allocates above its process baseline, and the share of pixels whose
argmax label agrees. Then the acceptance targets (64 x 64: ours >= 20x faster, <= 1/10 of the dense
peak memory, >= 99.5 % same labels; 128 x 128: ours < 2 GiB at peak) with PASS / FAIL.

How memory is measured: every measurement runs in a fresh child process (this script with
``--child``) that imports torch, loads the inputs and runs the warm-up, then calls glibc's
``malloc_trim(0)`` to hand free heap memory back, resets the kernel's peak-RSS counter (writes
``5`` to ``/proc/self/clear_refs``) and reads its resident set size (VmRSS in
``/proc/self/status``) as the baseline. After the walk it reads VmHWM, the peak resident set size
since the reset. Peak = VmHWM - baseline: every page the walk touched at its high point (torch's
CPU allocations, MKL's work buffers), which ``tracemalloc`` cannot see. If the counter cannot be
reset, the peak since process start is used and the line says "(upper bound)".

Dense at a size is skipped, with the reason printed, when its estimated memory (3 HW x HW float32
matrices: T, its square being formed, and slack) exceeds the available memory (MemAvailable)
minus a 2 GiB margin. Dense at 128 x 128 needs about 2 GiB and, on a 2-core CPU, 6 minutes when the
machine is idle (15 under load): eight 16384^3 matrix products. ``--dense-max-size`` caps the sizes
that run dense.

Run from the repository root:

    .venv/bin/python benchmarks/random_walk.py --sizes 32 64 128 --t 256 --classes 21 --radius 5 --beta 8 --threads 2
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GIB = 1024**3
MARGIN = 2 * GIB


# ----------------------------------------------------------------------------- memory
def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Trim the heap and reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _available_bytes() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("MemAvailable not in /proc/meminfo")


# ----------------------------------------------------------------------------- inputs
def make_inputs(size: int, classes: int, radius: int, seed: int):
    """Affinity (N, S, S) and CAMs (K, S, S), float32, from a random piecewise-constant feature map."""
    import torch

    from wsss_steps.methods.affinitynet import neighbour_affinity

    gen = torch.Generator().manual_seed(seed * 1000 + size)
    cells = max(4, size * size // 256)
    centres = torch.rand(cells, 2, generator=gen) * size
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    grid = torch.stack([ys, xs], dim=-1).reshape(-1, 1, 2)
    cell = ((grid - centres[None]) ** 2).sum(-1).argmin(dim=1).reshape(size, size)
    vectors = torch.randn(cells, 16, generator=gen) * 2.0
    features = vectors[cell].permute(2, 0, 1) + 0.05 * torch.randn(16, size, size, generator=gen)
    affinity = neighbour_affinity(features, radius)
    owner = torch.randint(1, classes, (cells,), generator=gen)
    owner[torch.rand(cells, generator=gen) < 0.5] = 0
    cams = 0.05 * torch.rand(classes, size, size, generator=gen)
    seeds = torch.rand(size, size, generator=gen) < 0.1
    cams[owner[cell][seeds], seeds.nonzero()[:, 0], seeds.nonzero()[:, 1]] += 1.0
    return affinity.contiguous(), cams.contiguous()


# ----------------------------------------------------------------------------- the two walks
def ours(cams, affinity, beta, t, radius):
    from wsss_steps.methods.random_walk import propagate

    return propagate(cams, affinity, beta, t, radius)


def dense(cams, affinity, beta, t, radius):
    """psa's walk: dense T, squared log2(t) times, times vec(M)."""
    from wsss_steps.methods.random_walk import dense_transition

    steps = int(round(math.log2(t)))
    if 2**steps != t:
        raise ValueError(f"the dense walk squares T, so t must be a power of 2, not {t}")
    trans = dense_transition(affinity, beta, radius)
    for _ in range(steps):
        trans = trans @ trans
    k = cams.shape[0]
    return (trans @ cams.reshape(k, -1).T).T.reshape(cams.shape)


def child(args) -> None:
    """One measurement in a fresh process; prints one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    data = np.load(args.inputs)
    affinity, cams = torch.from_numpy(data["affinity"]), torch.from_numpy(data["cams"])
    walk = {"ours": ours, "dense": dense}[args.child]
    # warm-up on the top-left corner (at most 32 x 32, big enough for the multi-threaded kernels): starts the
    # thread pools and their per-thread buffers and pages in the code, one-time costs of a process
    crop = min(32, cams.shape[-1])
    walk(cams[:, :crop, :crop].contiguous(), affinity[:, :crop, :crop].contiguous(), args.beta, 2, args.radius)
    exact = _reset_peak()
    baseline = _status_bytes("VmRSS")
    times = []
    for _ in range(3 if args.child == "ours" else 1):
        start = time.perf_counter()
        out = walk(cams, affinity, args.beta, args.t, args.radius)
        times.append(time.perf_counter() - start)
    peak = _status_bytes("VmHWM") - baseline
    np.save(args.out, out.argmax(dim=0).numpy().astype(np.int16))
    print(json.dumps({"seconds": statistics.median(times), "peak": peak, "exact": exact}))


def measure(method: str, inputs: Path, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--inputs", str(inputs), "--out", str(out), "--t", str(args.t),
           "--beta", str(args.beta), "--radius", str(args.radius), "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} walk failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mib(n: float) -> str:
    return f"{n / 2**20:9.1f} MiB"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128], help="feature-map sides S (S x S)")
    parser.add_argument("--t", type=int, default=256, help="walk steps (a power of 2 for the dense walk)")
    parser.add_argument("--classes", type=int, default=21, help="CAM channels K (VOC: 20 classes + background)")
    parser.add_argument("--radius", type=int, default=5)
    parser.add_argument("--beta", type=float, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch / MKL threads of each walk")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dense-max-size", type=int, default=None, help="run the dense walk only up to this size")
    parser.add_argument("--child", choices=["ours", "dense"], help=argparse.SUPPRESS)
    parser.add_argument("--inputs", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    print(f"random walk, t = {args.t}, K = {args.classes} classes, radius {args.radius}, beta {args.beta}, "
          f"{args.threads} threads; time: ours median of 3, dense 1 run; memory: peak RSS above the child's baseline")
    header = (f"{'size':>9} {'ours s':>9} {'dense s':>9} {'speed-up':>9} {'ours peak':>13} {'dense peak':>13} "
              f"{'mem ratio':>9} {'same labels':>11}")
    print(header)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="rw_bench_") as tmp:
        tmp = Path(tmp)
        for size in args.sizes:
            affinity, cams = make_inputs(size, args.classes, args.radius, args.seed)
            inputs = tmp / f"inputs{size}.npz"
            np.savez(inputs, affinity=affinity.numpy(), cams=cams.numpy())
            row = {"ours": measure("ours", inputs, tmp / "ours.npy", args)}
            need = 3 * (size * size) ** 2 * 4
            skip = None
            if args.dense_max_size is not None and size > args.dense_max_size:
                skip = f"dense skipped: size above --dense-max-size {args.dense_max_size}"
            elif need > _available_bytes() - MARGIN:
                skip = (f"dense skipped: needs about {need / GIB:.1f} GiB (3 x {size * size}^2 float32), "
                        f"more than the {_available_bytes() / GIB:.1f} GiB available minus a 2 GiB margin")
            if skip is None:
                row["dense"] = measure("dense", inputs, tmp / "dense.npy", args)
                row["same"] = float((np.load(tmp / "ours.npy") == np.load(tmp / "dense.npy")).mean())
            rows[size] = row
            o = row["ours"]
            flag = "" if o["exact"] and row.get("dense", o)["exact"] else " (upper bound)"
            if "dense" in row:
                d = row["dense"]
                speed, mem = d["seconds"] / o["seconds"], o["peak"] / d["peak"]
                print(f"{size:>4}x{size:<4} {o['seconds']:9.3f} {d['seconds']:9.3f} {speed:8.1f}x {mib(o['peak']):>13} "
                      f"{mib(d['peak']):>13} {mem:9.4f} {100 * row['same']:10.2f}%{flag}")
            else:
                print(f"{size:>4}x{size:<4} {o['seconds']:9.3f} {'-':>9} {'-':>9} {mib(o['peak']):>13} {'-':>13} "
                      f"{'-':>9} {'-':>11}{flag}   {skip}")

    print("targets:")
    if 64 in rows and "dense" in rows[64]:
        r = rows[64]
        speed, mem = r["dense"]["seconds"] / r["ours"]["seconds"], r["ours"]["peak"] / r["dense"]["peak"]
        print(f"  64x64: ours {speed:.1f}x faster than dense (target >= 20x): {'PASS' if speed >= 20 else 'FAIL'}")
        print(f"  64x64: ours peak memory {mem:.3f} of dense (target <= 0.1): {'PASS' if mem <= 0.1 else 'FAIL'}")
        same = r["same"]
        print(f"  64x64: {100 * same:.2f} % same labels (target >= 99.5 %): {'PASS' if same >= 0.995 else 'FAIL'}")
    else:
        print("  64x64: not measured (needs --sizes 64 with the dense walk)")
    if 128 in rows:
        peak = rows[128]["ours"]["peak"]
        print(f"  128x128: ours peak {peak / GIB:.3f} GiB (target < 2 GiB): {'PASS' if peak < 2 * GIB else 'FAIL'}")
    else:
        print("  128x128: not measured (needs --sizes 128)")


if __name__ == "__main__":
    sys.exit(main())
