"""Segment new images with a trained run: every image of a folder becomes a palette PNG of class indices and an
overlay, with the run's class names in a legend file.

    python -m wsss_steps.predict --run results/<run> --images DIR --out DIR [--scales 1 1.5 --flip] [--crf]

The network is rebuilt from the run's segmentation weights alone (``segmentation.weights.h5``: the backbone and
head settings and the class names are recorded there), so nothing of the training set is needed. Images (``.jpg``,
``.jpeg``, ``.png``, any size, in nested folders too) are read one at a time, so memory stays flat in the
folder's size. For ``DIR/a/b.jpg`` the stage writes ``OUT/a/b.png`` (class indices, VOC colours; what
``segmentation_predictions.h5`` holds for a val image) and ``OUT/a/b_overlay.jpg`` (the image with the labels
blended in); ``OUT/legend.json`` maps each index to its class name and colour. A rerun writes only what is
missing; ``OUT/settings.json`` records the weights' digest and the settings, and a rerun with others into the same
folder is refused (its labels would mix two settings). ``--crf`` refines each label map with the test-time dense CRF
(``wsss_steps/methods/crf.py``, evaluate's "+ CRF" row). An image that cannot be read is named in one line and skipped (``--on-error stop`` stops there
instead); the exit status is then 1. Nothing already written is removed.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np

from .lib.log import command_parser

STAGE = "predict"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
log = logging.getLogger("wsss_steps")


def image_files(folder: Path) -> list[Path]:
    """The images under ``folder`` (nested folders included), sorted; hidden files and folders left out."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def outputs_of(image: Path, folder: Path, out: Path) -> tuple[Path, Path]:
    """(label PNG, overlay JPEG) written for ``image`` of ``folder``, mirrored under ``out``."""
    stem = out / image.relative_to(folder).with_suffix("")
    return stem.with_suffix(".png"), stem.parent / f"{stem.name}_overlay.jpg"


def overlay(image: np.ndarray, labels: np.ndarray, palette: list[int], alpha: float = 0.5) -> np.ndarray:
    """image * (1 - alpha) + colour(label) * alpha where the label is an object class; background pixels unchanged."""
    colours = np.asarray(palette, np.float32).reshape(-1, 3)[labels]
    blend = image.astype(np.float32) * (1 - alpha) + colours * alpha
    return np.where((labels > 0)[..., None], blend, image).round().astype(np.uint8)


def multiscale_scores(model, image, scales, flip: bool):
    """sum over scales (and horizontal flips) of softmax(scores), each resized back to the image: (K, H, W)."""
    import torch
    import torch.nn.functional as F

    from .data.transforms import pad_to_stride

    h, w = image.shape[-2:]
    total = 0
    with torch.no_grad():
        for scale in scales:
            scaled = image[None] if scale == 1 else F.interpolate(
                image[None], scale_factor=scale, mode="bilinear", align_corners=False)
            for flipped in ((False, True) if flip else (False,)):
                batch = torch.flip(scaled, dims=[-1]) if flipped else scaled
                padded, (sh, sw) = pad_to_stride(batch, model.backbone.backbone.stride)
                scores = model(padded)["out"][:, :, :sh, :sw]
                if flipped:
                    scores = torch.flip(scores, dims=[-1])
                scores = F.interpolate(scores, size=(h, w), mode="bilinear", align_corners=False)
                total = total + scores.softmax(dim=1)[0]
    return total


def main(argv=None):
    parser = command_parser(STAGE, __doc__)
    parser.add_argument("--run", type=Path, help="a finished run's folder (results/<run>); its segmentation.weights.h5")
    parser.add_argument("--weights", type=Path, help="a segmentation weights file instead of --run")
    parser.add_argument("--images", type=Path, required=True, help="folder of images (.jpg, .jpeg, .png; nested too)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the label PNGs, overlays and legend to")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0],
                        help="image scales whose softmax scores are summed (default: 1, as the pipeline's predictions)")
    parser.add_argument("--flip", action="store_true", help="add each scale's horizontal flip")
    parser.add_argument("--crf", nargs="?", const="{}", metavar="SETTINGS",
                        help="refine each prediction with the test-time dense CRF (evaluate's '+ CRF' row); SETTINGS: "
                             "the evaluate.crf block as JSON or YAML (default: its defaults)")
    parser.add_argument("--on-error", choices=["skip", "stop"], default="skip",
                        help="an unreadable image is named and skipped (default), or stops the run")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when available")
    parser.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's choice)")
    parser.add_argument("--log", help="log file (default: stderr only)")
    parser.add_argument("--record", type=Path, help="also write a JSON record of what was segmented here (the workflow's)")
    args = parser.parse_args(argv)
    if (args.run is None) == (args.weights is None):
        parser.error("give one of --run and --weights")
    weights = args.weights or args.run / "segmentation.weights.h5"
    if not weights.is_file():
        parser.error(f"{weights}: no segmentation weights there (finish the run first: snakemake ... train_segmentation)")
    if not args.images.is_dir():
        parser.error(f"argument --images: {args.images} is not a folder")
    if args.out.resolve() == args.images.resolve() or args.images.resolve() in args.out.resolve().parents:
        parser.error("argument --out: give a folder outside --images (the images are never written to)")
    if any(s <= 0 for s in args.scales):
        parser.error("argument --scales: scales must be positive")
    crf = None
    if args.crf is not None:
        from .lib.config import ConfigError, crf_settings

        try:
            crf = crf_settings(args.crf)
        except ConfigError as exc:
            parser.error(f"argument --crf: {exc}")

    from PIL import Image

    from .data.label_png import save_label_png, voc_palette
    from .data.transforms import to_tensor
    from .lib.artifacts import file_sha256
    from .lib.files import atomic_path
    from .lib.log import progress, setup_logging
    from .methods.crf import crf_labels
    from .nets.segmentation import load_segmentation_net, predict
    from .lib.runtime import resolve_device, set_threads

    setup_logging(args.log)
    set_threads(args.threads)
    device = resolve_device(args.device)
    model, classes = load_segmentation_net(weights, device)
    palette = voc_palette()
    args.out.mkdir(parents=True, exist_ok=True)
    legend = {str(i): {"class": name, "colour": palette[3 * i:3 * i + 3]} for i, name in enumerate(classes)}
    legend_path = args.out / "legend.json"
    if not legend_path.exists():
        with atomic_path(legend_path) as tmp:
            Path(tmp).write_text(json.dumps(legend, indent=2) + "\n")
    settings = {"weights_sha256": file_sha256(weights), "scales": args.scales, "flip": args.flip, "crf": crf}
    settings_path = args.out / "settings.json"
    if settings_path.exists() and json.loads(settings_path.read_text()) != settings:
        log.error("%s: %s was written with other weights or settings (%s); give another --out, or delete it to "
                  "segment again", settings_path, args.out, settings_path.read_text().strip())
        return 2
    with atomic_path(settings_path) as tmp:
        Path(tmp).write_text(json.dumps(settings, indent=2) + "\n")
    files = image_files(args.images)
    todo = [p for p in files if not all(o.exists() for o in outputs_of(p, args.images, args.out))]
    log.info("%d images under %s, %d already segmented in %s; %s", len(files), args.images, len(files) - len(todo),
             args.out, f"scales {args.scales}" + (" with flips" if args.flip else "") + (" and the CRF" if crf else ""))
    plain = args.scales == [1.0] and not args.flip
    failed = []
    for path in progress(todo, desc="predict"):
        try:
            with Image.open(path) as opened:
                image = np.asarray(opened.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            message = f"{path}: not a readable image ({exc.__class__.__name__}: {exc})"
            if args.on_error == "stop":
                log.error("%s; stopped (--on-error stop); what was written is kept.", message)
                return 1
            log.warning("%s; skipped.", message)
            failed.append(str(path))
            continue
        tensor = to_tensor(image).to(device)
        labels = predict(model, tensor) if plain else \
            multiscale_scores(model, tensor, args.scales, args.flip).argmax(dim=0).to("cpu").numpy().astype(np.uint8)
        if crf is not None:
            labels = crf_labels(image, labels, **crf)
        label_path, overlay_path = outputs_of(path, args.images, args.out)
        label_path.parent.mkdir(parents=True, exist_ok=True)
        save_label_png(label_path, labels)
        with atomic_path(overlay_path) as tmp:
            Image.fromarray(overlay(image, labels, palette)).save(tmp, format="JPEG", quality=90)
    log.info("segmented %d images into %s (legend: %s)%s", len(todo) - len(failed), args.out, legend_path,
             f"; {len(failed)} unreadable, skipped" if failed else "")
    if args.record is not None and not failed:
        with atomic_path(args.record) as tmp:
            Path(tmp).write_text(json.dumps({"weights": str(weights), "images": str(args.images), "out": str(args.out),
                                             "scales": args.scales, "flip": args.flip, "crf": crf,
                                             "segmented": len(files)},
                                            indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
