"""Benchmark: CAMs in our HDF5 store against one float32 .npy file per image (what the published code writes).

Writes N synthetic CAM sets of PASCAL VOC sizes (500 x 375, 375 x 500, 333 x 500, 500 x 333, 500 x 500;
1-3 present classes; float CAMs with smooth structure: a random field at 1/32 of the image size,
bilinearly upsampled, ReLU'd and divided by its maximum per class, as ``normalize_cam`` does)
into a temporary directory twice:

* store: one HDF5 file through ``wsss_steps.lib.artifacts.write_store`` + ``put_array``, float16 (K, H, W)
  per image with its classes as an attribute - exactly how ``wsss_steps/extract_cams.py`` stores
  CAMs (chunked, gzip level 4 with the shuffle filter);
* npy: one ``np.save``'d float32 (K, H, W) array per image, as psa's ``infer_cls.py`` saves its
  per-image CAMs (there a pickled dict of class -> float32 map; same bytes plus a small header).

Printed: MB (10^6 bytes) on disk per image for each and their ratio; images/s for sequential
reads (one process, in id order); images/s for random-access reads through a torch DataLoader
with 2 worker processes (shuffle=True, batch_size=None: one image per item, as a training loader
would fetch them; each pass a fresh DataLoader, so worker start-up is included). Read rates are
the median of 3 passes (a single pass of 200 images lasts well under a second and varies by
+-30 % from run to run). The store is read through ``wsss_steps.data.loader.StoreDataset``, which opens its h5py
handle lazily inside each worker (an HDF5 handle must never be shared across a fork); the .npy
loader calls ``np.load`` per item. Both include handing the arrays back from the workers. Files
are read right after being written, so both come from the page cache: this measures decoding
cost, not disk speed (from a cold disk the 3x smaller store would gain). Then the targets (store
<= 1/3 of .npy per image; random access through 2 workers at least half as fast as .npy) with
PASS / FAIL.

Run from the repository root:

    .venv/bin/python benchmarks/store.py --images 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wsss_steps.data.loader import StoreDataset
from wsss_steps.lib.artifacts import open_store, put_array, read_array, write_store

VOC_SIZES = [(500, 375), (375, 500), (333, 500), (500, 333), (500, 500)]
VOC_WEIGHTS = [0.55, 0.25, 0.1, 0.05, 0.05]
MB = 1e6
PASSES = 3


def synthetic_cams(rng: np.random.Generator, height: int, width: int, classes: int) -> np.ndarray:
    """(K, H, W) float32 in [0, 1]: a coarse random field, upsampled, ReLU'd, max-normalised per class."""
    coarse = torch.from_numpy(rng.standard_normal((1, classes, height // 32 + 2, width // 32 + 2)).astype(np.float32))
    cam = F.relu(F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)[0])
    cam = cam / (cam.flatten(1).max(dim=1).values.view(-1, 1, 1) + 1e-5)
    return cam.numpy()


class NpyDataset(torch.utils.data.Dataset):
    """One .npy file per image: item i = (name, array, {})."""

    def __init__(self, folder: Path, names):
        self.folder, self.names = folder, list(names)

    def __len__(self):
        return len(self.names)

    def __getitem__(self, index):
        name = self.names[index]
        return name, np.load(self.folder / f"{name}.npy"), {}


def rate(read, count: int) -> float:
    """Items/s of one call of ``read`` that reads ``count`` items."""
    start = time.perf_counter()
    read()
    return count / (time.perf_counter() - start)


def loader_rate(dataset, workers: int, seed: int) -> float:
    """Images/s of one shuffled pass through a DataLoader with ``workers`` forked workers."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=True, num_workers=workers,
                                         multiprocessing_context="fork",
                                         generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    count = sum(1 for _ in loader)
    return count / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="number of synthetic CAM sets (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for random access (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    names = [f"2007_{i:06d}" for i in range(args.images)]

    with tempfile.TemporaryDirectory(prefix="store_bench_") as tmp:
        tmp = Path(tmp)
        store_path, npy_dir = tmp / "cams.h5", tmp / "npy"
        npy_dir.mkdir()
        pixels = 0
        write = {"store": 0.0, "npy": 0.0}
        with write_store(store_path, {"stage": "extract_cams", "ids": json.dumps(names)}) as store:
            for name in names:
                height, width = VOC_SIZES[rng.choice(len(VOC_SIZES), p=VOC_WEIGHTS)]
                classes = sorted(rng.choice(np.arange(1, 21), size=rng.integers(1, 4), replace=False).tolist())
                cam = synthetic_cams(rng, height, width, len(classes))
                pixels += cam.size
                start = time.perf_counter()
                put_array(store, name, cam.astype(np.float16), classes=np.asarray(classes, dtype=np.int64))
                write["store"] += time.perf_counter() - start
                start = time.perf_counter()
                np.save(npy_dir / f"{name}.npy", cam.astype(np.float32))
                write["npy"] += time.perf_counter() - start
        size = {"store": store_path.stat().st_size, "npy": sum(p.stat().st_size for p in npy_dir.iterdir())}

        def read_store():
            with open_store(store_path, "extract_cams") as store:
                for name in names:
                    read_array(store, name)

        def read_npy():
            for name in names:
                np.load(npy_dir / f"{name}.npy")

        sequential = {key: statistics.median(rate(read, args.images) for _ in range(PASSES))
                      for key, read in (("store", read_store), ("npy", read_npy))}
        datasets = {"store": StoreDataset(store_path, stage="extract_cams"), "npy": NpyDataset(npy_dir, names)}
        random_access = {key: statistics.median(loader_rate(data, args.workers, args.seed + i) for i in range(PASSES))
                         for key, data in datasets.items()}

    n = args.images
    print(f"{n} synthetic CAM sets of VOC sizes, {pixels / n / 1e6:.2f} M CAM values per image on average")
    print(f"{'':8} {'MB/image':>9} {'write img/s':>12} {'sequential read img/s':>22} "
          f"{f'random read, {args.workers} workers, img/s':>34}   (reads: median of {PASSES} passes)")
    for key, label in (("store", "store"), ("npy", ".npy")):
        print(f"{label:8} {size[key] / n / MB:9.3f} {n / write[key]:12.1f} {sequential[key]:22.1f} "
              f"{random_access[key]:34.1f}")
    ratio = size["store"] / size["npy"]
    speed = random_access["store"] / random_access["npy"]
    print("targets:")
    print(f"  store size {ratio:.3f} of .npy per image (target <= 1/3): {'PASS' if ratio <= 1 / 3 else 'FAIL'}")
    print(f"  random access through {args.workers} workers at {speed:.2f}x the .npy rate (target >= 0.5x): "
          f"{'PASS' if speed >= 0.5 else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
