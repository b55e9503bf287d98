"""Stage 5: refine CAMs into pseudo-labels by a random walk on AffinityNet's affinities."""

from __future__ import annotations

import json
import math
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


WALK_STRIDES = (4, 8)  # random_walk.stride: 8 = psa's walk on the feature map, 4 = irn's finer walk


def walk_stride(parser, params: dict) -> int:
    """The random-walk settings' stride (default 8), or a usage error naming the allowed values."""
    stride = params.get("stride", 8)
    if stride not in WALK_STRIDES:
        parser.error(f"random_walk stride must be one of {WALK_STRIDES}, not {stride!r}")
    return stride


def features_at_stride(model: AffinityNet, image: torch.Tensor, stride: int):
    """AffinityNet features f on the image's stride-``stride`` grid, bilinearly upsampled when the backbone is coarser.

    The image (3, H, W) is padded to a multiple of lcm(stride, backbone stride). Returns
    (features (C, H'/stride, W'/stride), padded size (H', W'), image size (H, W)).
    """
    padded, size = pad_to_stride(image[None], math.lcm(stride, model.backbone.stride))
    grid = (padded.shape[-2] // stride, padded.shape[-1] // stride)
    features = model(padded)
    if features.shape[-2:] != grid:
        features = F.interpolate(features, size=grid, mode="bilinear", align_corners=False)
    return features[0], padded.shape[-2:], size


@torch.no_grad()
def refine(model: AffinityNet, image: torch.Tensor, cams: np.ndarray, classes, alpha: float, beta: float, t: int,
           radius: int, stride: int | None = None) -> np.ndarray:
    """Pseudo-label = argmax upsample(T^t [M_bg; M]) on the stride-``stride`` grid, T = D^-1 W^beta; class ids (H, W).

    ``stride`` (4 or 8; None = the backbone's stride) is the grid the walk runs on: the features are
    upsampled to it, [M_bg; M] is average-pooled to it and ``radius`` counts its pixels.
    """
    stride = stride or model.backbone.stride
    features, padded_size, crop = features_at_stride(model, image, stride)
    small = scores_at_stride(cams, alpha, stride, padded_size)
    return walk_labels(small, neighbour_affinity(features, radius), classes, beta, t, radius, padded_size, crop)


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--backbone", required=True, help="backbone settings (JSON or YAML file)")
    parser.add_argument("--params", required=True, help="alpha, beta, t, stride (JSON or YAML file)")
    parser.add_argument("--affinity-params", required=True, help="affinity settings: radius, head_channels")
    parser.add_argument("--cams", required=True, help="CAM store (.h5)")
    parser.add_argument("--affinity", required=True, help="AffinityNet weights (.h5)")
    parser.add_argument("--out", required=True, help="pseudo-label store to write (.h5)")
    parser.add_argument("--png-dir", help="also write each pseudo-label as a palette PNG here")
    args, log, device, layout = start(parser, argv)
    backbone_cfg, params, aff = load_params(args.backbone), load_params(args.params), load_params(args.affinity_params)
    stride = walk_stride(parser, params)
    model = build(backbone_cfg, aff["head_channels"], pretrained=False)
    load_weights(args.affinity, model, stage="train_affinity")
    model.to(device).eval()
    png_dir = Path(args.png_dir) if args.png_dir else None
    with open_store(args.cams, "extract_cams", layout) as cams:
        ids = json.loads(cams.attrs["ids"])
        attrs = provenance(STAGE, {**params, "radius": aff["radius"]}, args.seed, [args.cams, args.affinity])
        attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), ids=json.dumps(ids))
        with write_store(args.out, attrs) as store:
            for image_id in progress(ids, desc="random walk"):
                classes = [int(c) for c in cams[image_id].attrs["classes"]]
                image = to_tensor(layout.image(image_id)).to(device)
                labels = refine(model, image, read_array(cams, image_id), classes, params["alpha"], params["beta"],
                                params["t"], aff["radius"], stride)
                put_array(store, image_id, labels)
                if png_dir is not None:
                    save_label_png(png_dir / f"{image_id}.png", labels)
    log.info("wrote pseudo-labels of %d images to %s (walk at stride %d, %d torch threads)", len(ids), args.out, stride,
             torch.get_num_threads())


if __name__ == "__main__":
    sys.exit(main())
