"""Stage 5: refine CAMs into pseudo-labels by a random walk on AffinityNet's affinities."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .algorithms import neighbour_affinity, propagate, with_background
from .config import load_params
from .data import to_tensor
from .io import load_weights, open_store, provenance, put_array, read_array, save_label_png, write_store
from .log import progress
from .models import AffinityNet
from .runtime import base_parser, start
from .train_affinity import build
from .training import pad_to_stride

STAGE = "random_walk"


def scores_at_stride(cams: np.ndarray, alpha: float, stride: int, size) -> torch.Tensor:
    """[M_bg; M] with M_bg = (1 - max_c M_c)^alpha, zero-padded to ``size`` (a multiple of stride), average-pooled by stride."""
    scores = torch.from_numpy(with_background(cams.astype(np.float32), alpha))
    h, w = scores.shape[-2:]
    scores = F.pad(scores, (0, size[1] - w, 0, size[0] - h))
    return F.avg_pool2d(scores[None], stride, stride)[0]


def walk_labels(small: torch.Tensor, affinity: torch.Tensor, classes, beta: float, t: int, radius: int, size,
                crop) -> np.ndarray:
    """Class ids of argmax upsample(T^t [M_bg; M]) with T = D^-1 W^beta, upsampled to ``size`` and cropped to ``crop``."""
    lut = np.asarray([0, *classes], dtype=np.uint8)
    walked = propagate(small.to(affinity), affinity, beta, t, radius)
    up = F.interpolate(walked[None], size=tuple(size), mode="bilinear", align_corners=False)[0, :, :crop[0], :crop[1]]
    return lut[up.argmax(dim=0).cpu().numpy()]


@torch.no_grad()
def refine(model: AffinityNet, image: torch.Tensor, cams: np.ndarray, classes, alpha: float, beta: float, t: int,
           radius: int) -> np.ndarray:
    """Pseudo-label = argmax upsample(T^t [M_bg; M]) at the feature stride, T = D^-1 W^beta; returns class ids (H, W)."""
    stride = model.backbone.stride
    padded, (h, w) = pad_to_stride(image[None], stride)
    features = model(padded)[0]
    small = scores_at_stride(cams, alpha, stride, padded.shape[-2:])
    if features.shape[-2:] != small.shape[-2:]:
        small = F.interpolate(small[None], size=features.shape[-2:], mode="bilinear", align_corners=False)[0]
    return walk_labels(small, neighbour_affinity(features, radius), classes, beta, t, radius, padded.shape[-2:], (h, w))


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--backbone", required=True, help="backbone settings (JSON or YAML file)")
    parser.add_argument("--params", required=True, help="alpha, beta, t (JSON or YAML file)")
    parser.add_argument("--affinity-params", required=True, help="affinity settings: radius, head_channels")
    parser.add_argument("--cams", required=True, help="CAM store (.h5)")
    parser.add_argument("--affinity", required=True, help="AffinityNet weights (.h5)")
    parser.add_argument("--out", required=True, help="pseudo-label store to write (.h5)")
    parser.add_argument("--png-dir", help="also write each pseudo-label as a palette PNG here")
    args, log, device, layout = start(parser, argv)
    backbone_cfg, params, aff = load_params(args.backbone), load_params(args.params), load_params(args.affinity_params)
    model = build(backbone_cfg, aff["head_channels"], pretrained=False)
    load_weights(args.affinity, model, stage="train_affinity")
    model.to(device).eval()
    png_dir = Path(args.png_dir) if args.png_dir else None
    with open_store(args.cams, "extract_cams") as cams:
        ids = json.loads(cams.attrs["ids"])
        attrs = provenance(STAGE, {**params, "radius": aff["radius"]}, args.seed, [args.cams, args.affinity])
        attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), ids=json.dumps(ids))
        with write_store(args.out, attrs) as store:
            for image_id in progress(ids, desc="random walk"):
                classes = [int(c) for c in cams[image_id].attrs["classes"]]
                image = to_tensor(layout.image(image_id)).to(device)
                labels = refine(model, image, read_array(cams, image_id), classes, params["alpha"], params["beta"],
                                params["t"], aff["radius"])
                put_array(store, image_id, labels)
                if png_dir is not None:
                    save_label_png(png_dir / f"{image_id}.png", labels)
    log.info("wrote pseudo-labels of %d images to %s", len(ids), args.out)


if __name__ == "__main__":
    sys.exit(main())
