"""GPU check: the tiny pipeline on a device, each stage's throughput and peak memory, and the walk against the CPU's.

For whoever has a GPU (no stage is covered by CI on one):

    .venv/bin/python benchmarks/gpu_check.py                 # device cuda; fails at once without CUDA
    .venv/bin/python benchmarks/gpu_check.py --device cpu    # the same figures on the CPU, for comparison

1. Runs the whole workflow on ``tests/tiny_config.yaml`` (or ``--config``) with ``device`` set (run ``gpu-check-<device>`` in a
   fresh working folder) and prints, per stage, its wall time, the images it went through, images per second,
   peak resident memory and peak CUDA memory, read from the line each stage log ends with.
2. Runs ``random_walk`` alone again on the CPU from the same CAMs and AffinityNet, and prints the share of pixels
   whose pseudo-label agrees with the device's walk (expected 100 % up to ties; below 99.5 % is a FAIL).
3. Trains the classifier alone for ``--steps`` steps with 0 and with ``--workers`` DataLoader workers and prints
   the images per second of each and their largest weight difference (on the CPU it must be 0, else FAIL).

Exit status 1 if a check fails. The figures depend on the machine: they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_config.yaml"
USAGE = re.compile(r"stage took ([\d.]+) s, peak memory (\d+) MiB(?:, peak CUDA memory (\d+) MiB)?")
STAGES = ("train_classifier", "extract_cams", "make_affinity_labels", "train_affinity", "random_walk",
          "train_segmentation", "evaluate")


def stage_usage(log_text: str) -> dict | None:
    """(seconds, peak MiB, peak CUDA MiB or None) from the line a stage's log ends with, or None without one."""
    found = USAGE.findall(log_text)
    if not found:
        return None
    seconds, peak, cuda = found[-1]
    return {"seconds": float(seconds), "peak_mib": int(peak), "cuda_mib": int(cuda) if cuda else None}


def images_through(stage: str, config: dict, train_images: int, val_images: int) -> int:
    """Images a stage goes through: training stages steps x batch (or epochs x images), the others their splits."""
    section = {"train_classifier": "classifier", "train_affinity": "affinity", "train_segmentation": "segmentation"}
    if stage in section:
        params = config[section[stage]]
        if params.get("steps"):
            return int(params["steps"]) * int(params["batch_size"])
        return int(params["epochs"]) * train_images + (train_images + val_images if stage == "train_segmentation" else 0)
    return {"evaluate": train_images + val_images}.get(stage, train_images)


def label_agreement(a_path, b_path) -> float:
    """Share of pixels (0-1) whose label is the same in two pseudo-label stores with the same image ids."""
    same = total = 0
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        for image_id in json.loads(a.attrs["ids"]):
            x, y = a[image_id][()], b[image_id][()]
            same += int((x == y).sum())
            total += x.size
    return same / max(1, total)


def weights_difference(a_path, b_path) -> float:
    """Largest absolute difference between two weights files' arrays (inf if they hold different arrays)."""
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        keys = sorted(a["state_dict"])
        if keys != sorted(b["state_dict"]):
            return float("inf")
        return max(float(np.abs(a["state_dict"][k][()].astype(np.float64) - b["state_dict"][k][()]).max(initial=0))
                   for k in keys)


def run(cmd, cwd) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, cmd[:6]))} ...\n{proc.stdout[-4000:]}")
    return proc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--config", default=str(TINY), help="workflow config to run (default: the tiny test config; "
                        "config.yaml runs the built-in demo, larger figures)")
    parser.add_argument("--workdir", help="working folder (default: a new temporary one)")
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers to compare with none")
    parser.add_argument("--steps", type=int, default=30, help="classifier steps for the workers comparison")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gpu-check-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = Path(args.config).resolve()
    config = yaml.safe_load(config_file.read_text())
    run_name = f"gpu-check-{args.device}"
    overlay = workdir / "gpu_check.yaml"
    overlay.write_text(yaml.safe_dump({"run_name": run_name, "device": args.device}))
    failures = []

    start = time.time()
    run([sys.executable, "-m", "snakemake", "-s", REPO / "Snakefile", "-d", workdir, "--configfile", config_file, overlay,
         "--cores", args.cores, "--resources", "gpu=1"], cwd=workdir)
    print(f"tiny pipeline on {args.device}: {time.time() - start:.1f} s end to end ({workdir})")
    results = workdir / "results" / run_name
    root = Path(config["dataset"]["root"])
    root = root if root.is_absolute() else workdir / root
    lists = root / config["dataset"].get("list_dir", "ImageSets/Segmentation")
    train_images, val_images = (len((lists / f"{config['dataset'][k]}.txt").read_text().split())
                                for k in ("train_split", "val_split"))
    print("| stage | s | images | images/s | peak MiB | peak CUDA MiB |\n|---|---|---|---|---|---|")
    for stage in STAGES:
        log = results / "logs" / f"{stage}.log"
        usage = stage_usage(log.read_text()) if log.is_file() else None
        if usage is None:
            print(f"| {stage} | - | - | - | - | - |")
            continue
        images = images_through(stage, config, train_images, val_images)
        cuda = "-" if usage["cuda_mib"] is None else usage["cuda_mib"]
        print(f"| {stage} | {usage['seconds']:.1f} | {images} | {images / max(usage['seconds'], 1e-9):.1f} | "
              f"{usage['peak_mib']} | {cuda} |")

    dataset = json.dumps({k: v for k, v in config["dataset"].items() if k not in ("generate", "score_split", "cooccurrence")})
    common = ["--dataset", dataset, "--backbone", json.dumps(config["backbone"]), "--seed", str(config["seed"]),
              "--threads", str(args.cores)]
    cpu_walk = workdir / "cpu_walk.h5"
    run([sys.executable, "-m", "wsss_steps.random_walk", *common, "--device", "cpu",
         "--params", json.dumps(config["random_walk"]), "--affinity-params", json.dumps(config["affinity"]),
         "--cams", results / "cams_train.h5", "--affinity", results / "affinity.weights.h5",
         "--affinity-labels", results / "affinity_labels_train.h5", "--out", cpu_walk],
        cwd=workdir)
    agreement = label_agreement(results / "pseudo_labels_train.h5", cpu_walk)
    verdict = "PASS" if agreement >= 0.995 else "FAIL"
    failures += [] if verdict == "PASS" else ["walk"]
    print(f"random walk, {args.device} against cpu: {100 * agreement:.2f} % of pixels agree ({verdict}, >= 99.5 %)")

    params = dict(config["classifier"], steps=args.steps)
    params.pop("epochs", None)
    speeds = {}
    for workers in (0, args.workers):
        out = workdir / f"classifier_w{workers}.h5"
        tic = time.time()
        run([sys.executable, "-m", "wsss_steps.train_classifier", *common, "--device", args.device,
             "--params", json.dumps(params), "--split", config["dataset"]["train_split"], "--workers", str(workers),
             "--out", out, "--log", workdir / f"classifier_w{workers}.log"], cwd=workdir)
        usage = stage_usage((workdir / f"classifier_w{workers}.log").read_text())
        seconds = usage["seconds"] if usage else time.time() - tic
        speeds[workers] = args.steps * params["batch_size"] / seconds
        print(f"classifier training, {workers} workers: {speeds[workers]:.1f} images/s ({args.steps} steps, "
              f"{seconds:.1f} s with start-up)")
    diff = weights_difference(workdir / "classifier_w0.h5", workdir / f"classifier_w{args.workers}.h5")
    if args.device == "cpu":  # the same batches must give bit-identical weights on the CPU
        failures += [] if diff == 0 else ["workers"]
        print(f"0 and {args.workers} workers, largest weight difference {diff:.3g}: {'PASS' if diff == 0 else 'FAIL'}")
    else:  # CUDA's non-deterministic kernels (atomic adds) may move weights a little with the very same batches
        print(f"0 and {args.workers} workers, largest weight difference {diff:.3g} (same batches; CUDA kernels "
              "are not bit-deterministic, so a small difference is expected there)")
    if failures:
        print("FAILED: " + ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
