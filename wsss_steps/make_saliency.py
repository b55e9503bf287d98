"""Saliency maps for EPS when the dataset has none: OpenCV's unsupervised static saliency, one PNG per image.

Writes <out>/<id>.png (uint8, 0 = background ... 255 = salient, the image's size) for every image of the splits,
the layout EPS reads from dataset.saliency_dir. The folder appears complete or not at all.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .data.voc import DatasetError
from .lib.log import progress
from .lib.runtime import base_parser, run_stage, start

STAGE = "make_saliency"
METHODS = ("spectral_residual", "fine_grained")


def static_saliency(image: np.ndarray, method: str) -> np.ndarray:
    """OpenCV's static saliency S of an RGB image (H, W, 3), rescaled to 0-255: 255 (S - min S) / (max S - min S)."""
    import cv2

    if method not in METHODS:
        raise ValueError(f"saliency method must be one of {METHODS}, not {method!r}")
    create = {"spectral_residual": cv2.saliency.StaticSaliencySpectralResidual_create,
              "fine_grained": cv2.saliency.StaticSaliencyFineGrained_create}[method]
    ok, saliency = create().computeSaliency(np.ascontiguousarray(image[..., ::-1]))  # OpenCV expects BGR
    if not ok:
        raise RuntimeError(f"OpenCV's {method} saliency failed on an image of {image.shape[1]} x {image.shape[0]}")
    saliency = np.asarray(saliency, np.float32)
    if saliency.shape != image.shape[:2]:  # spectral residual may work on a smaller copy; bring it to the image
        saliency = np.asarray(Image.fromarray(saliency).resize((image.shape[1], image.shape[0]), Image.BILINEAR))
    low, high = float(saliency.min()), float(saliency.max())
    if high - low < 1e-12:
        return np.zeros(image.shape[:2], np.uint8)
    return np.round(255 * (saliency - low) / (high - low)).astype(np.uint8)


def _ours(folder: Path) -> bool:
    """Whether ``folder`` was written by this stage (its provenance.json says so)."""
    try:
        return json.loads((folder / "provenance.json").read_text()).get("stage") == STAGE
    except (OSError, ValueError):
        return False


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--splits", nargs="+", required=True, help="splits whose images get a saliency map")
    parser.add_argument("--method", choices=METHODS, default="spectral_residual",
                        help="OpenCV static saliency: spectral_residual (Hou & Zhang 2007) or fine_grained "
                             "(Montabone & Soto 2010)")
    parser.add_argument("--out", required=True, help="folder to write, one <id>.png per image")
    args, log, device, layout = start(parser, argv)
    out = Path(args.out)
    if out.exists() and not _ours(out):
        raise DatasetError(f"{out}: exists and was not written by make_saliency; name a new folder with --out "
                           "(the stage never replaces a folder it did not make).")
    ids = list(dict.fromkeys(i for split in args.splits for i in layout.ids(split)))
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start_time = time.time()
    for image_id in progress(ids, desc="saliency"):
        saliency = static_saliency(layout.image(image_id), args.method)
        Image.fromarray(saliency).save(tmp / f"{image_id}.png")
    (tmp / "provenance.json").write_text(json.dumps({"stage": STAGE, "method": args.method, "splits": args.splits,
                                                      "dataset_root": str(layout.root), "images": len(ids)}, indent=1))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log.info("wrote %d saliency maps (%s) to %s in %.1f s", len(ids), args.method, out, time.time() - start_time)


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
