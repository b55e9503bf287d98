"""Stage 2: multi-scale + flip CAMs of every image of a split into one HDF5 store."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

from .algorithms import normalize_cam
from .config import load_params
from .data import VOCLayout, to_tensor
from .io import load_weights, provenance, put_array, write_store
from .log import progress
from .models import CAMNet
from .runtime import base_parser, start
from .train_classifier import build
from .training import pad_to_stride

STAGE = "extract_cams"


@torch.no_grad()
def multiscale_cam(model: CAMNet, image: torch.Tensor, classes, scales, flip: bool) -> torch.Tensor:
    """sum over scales s (and flips) of ReLU(upsample(CAM(resize(image, s)))), then M_c / max M_c, for ``classes`` only.

    image: normalised (3, H, W); classes: 1-based class indices; returns (len(classes), H, W).
    """
    h, w = image.shape[-2:]
    stride = model.backbone.stride
    index = torch.as_tensor([c - 1 for c in classes], dtype=torch.long)
    total = torch.zeros(len(classes), h, w, device=image.device)
    if not classes:
        return total
    for scale in scales:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        scaled = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        batch = torch.cat([scaled, scaled.flip(-1)]) if flip else scaled
        padded, _ = pad_to_stride(batch, stride)
        cam = model.cam(padded)[:, index]
        cam = F.interpolate(cam, size=padded.shape[-2:], mode="bilinear", align_corners=False)[..., :size[0], :size[1]]
        cam = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)
        cam = F.relu(cam)
        total += cam[0] + (cam[1].flip(-1) if flip else 0)
    return normalize_cam(total)


def extract(model: CAMNet, layout: VOCLayout, ids, table, scales, flip, device, store):
    """Write one float16 (K, H, W) dataset per image with its class indices as attribute ``classes``."""
    model.to(device).eval()
    for image_id in progress(ids, desc="CAMs"):
        classes = table[image_id]
        image = to_tensor(layout.image(image_id)).to(device)
        cam = multiscale_cam(model, image, classes, scales, flip).cpu().numpy().astype(np.float16)
        put_array(store, image_id, cam, classes=np.asarray(classes, dtype=np.int64))


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--backbone", required=True, help="backbone settings (JSON or YAML file)")
    parser.add_argument("--params", required=True, help="CAM settings: scales, flip (JSON or YAML file)")
    parser.add_argument("--classifier", required=True, help="classifier weights (.h5)")
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True, help="CAM store to write (.h5)")
    args, log, device, layout = start(parser, argv)
    backbone_cfg, params = load_params(args.backbone), load_params(args.params)
    model = build(backbone_cfg, layout.num_classes, pretrained=False)
    load_weights(args.classifier, model, stage="train_classifier", classes=layout.classes)
    table = layout.label_table(args.split)
    ids = list(table)
    attrs = provenance(STAGE, {**params, "split": args.split}, args.seed, [args.classifier, layout.list_file(args.split)])
    attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), ids=json.dumps(ids))
    with write_store(args.out, attrs) as store:
        extract(model, layout, ids, table, params["scales"], params["flip"], device, store)
    log.info("wrote CAMs of %d images to %s", len(ids), args.out)


if __name__ == "__main__":
    sys.exit(main())
