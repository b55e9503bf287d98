"""Stage 5: refine CAMs into pseudo-labels by a random walk on AffinityNet's affinities (affinity.method irn: on
IRN's boundary affinities)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import torch

from .lib import health
from .lib.artifacts import LOCALISATION_STAGES, load_weights, open_store, provenance, put_array, read_array, write_store
from .lib.config import load_params, settings_arg
from .data.label_png import save_label_png
from .data.transforms import to_tensor
from .lib.log import progress
from .methods import irn
from .methods.cam import cam_labels
from .methods.random_walk import check_background, check_walk_stride, refine
from .nets.affinity import build_affinity_net
from .nets.backbones import computed_in
from .nets.boundary import build_boundary_net
from .lib.runtime import base_parser, run_stage, start

STAGE = "random_walk"


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--backbone", required=True, type=settings_arg("backbone", needs=("name",)), help="backbone settings (JSON or YAML file)")
    parser.add_argument("--params", required=True, type=settings_arg("random_walk"), help="alpha, beta, t, stride, background, bg_threshold (JSON or YAML file)")
    parser.add_argument("--affinity-params", required=True, type=settings_arg("affinity", needs=("radius", "head_channels")), help="affinity settings: radius, head_channels")
    parser.add_argument("--cams", required=True, help="CAM store (.h5)")
    parser.add_argument("--affinity", required=True, help="AffinityNet weights (.h5)")
    parser.add_argument("--affinity-labels", help="the affinity label store AffinityNet was trained on (.h5): the "
                                                  "health check of where the walk grows each class reads it")
    parser.add_argument("--out", required=True, help="pseudo-label store to write (.h5)")
    parser.add_argument("--png-dir", help="also write each pseudo-label as a palette PNG here")
    args, log, device, layout = start(parser, argv)
    backbone_cfg, params = load_params(args.backbone, "backbone"), load_params(args.params, "random_walk")
    affinity_cfg = load_params(args.affinity_params, "affinity")
    try:
        stride = check_walk_stride(params["stride"])
        check_background(params["background"])
    except ValueError as exc:
        parser.error(str(exc))
    by_boundary = affinity_cfg.get("method") == "irn"
    if by_boundary:
        model = build_boundary_net(backbone_cfg, pretrained=False)
        log.info("IRN: walking on boundary affinities, the label read with bg_threshold %s against the walked maps' "
                 "common maximum (random_walk.background and alpha are AffinityNet's)", params["bg_threshold"])
    else:
        model = build_affinity_net(backbone_cfg, affinity_cfg["head_channels"], pretrained=False,
                                   feature_stride=affinity_cfg.get("feature_stride"))
    load_weights(args.affinity, model, stage="train_affinity")
    model.to(device).eval()
    png_dir = Path(args.png_dir) if args.png_dir else None
    inputs = [args.cams, args.affinity] + ([args.affinity_labels] if args.affinity_labels else [])
    with open_store(args.cams, LOCALISATION_STAGES, layout) as cams, \
            (open_store(args.affinity_labels, "make_affinity_labels", layout) if args.affinity_labels
             else contextlib.nullcontext()) as confident:
        ids = json.loads(cams.attrs["ids"])
        attrs = provenance(STAGE, {**params, "radius": affinity_cfg["radius"],
                                   **({"affinity_method": "irn"} if by_boundary else {})}, args.seed, inputs)
        attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), ids=json.dumps(ids),
                     **computed_in(backbone_cfg, device))
        survival, whole, growth, background = health.Tally(), health.Tally(), health.PixelShare(), health.PixelShare()
        with write_store(args.out, attrs) as store:
            for image_id in progress(ids, desc="random walk"):
                classes = [int(c) for c in cams[image_id].attrs["classes"]]
                image = to_tensor(layout.image(image_id)).to(device)
                cam = read_array(cams, image_id)
                if by_boundary:
                    labels = irn.refine(model, image, cam, classes, params["beta"], params["t"], affinity_cfg["radius"],
                                        stride, params["bg_threshold"])
                else:
                    labels = refine(model, image, cam, classes, params["alpha"], params["beta"],
                                    params["t"], affinity_cfg["radius"], stride, params["background"],
                                    params["bg_threshold"])
                put_array(store, image_id, labels)
                if png_dir is not None:
                    save_label_png(png_dir / f"{image_id}.png", labels)
                at_threshold = cam_labels(cam.astype("float32"), classes, health.CAM_THRESHOLD)
                before = health.class_pixels(at_threshold, classes)
                moved = health.walk_growth(at_threshold, labels,
                                           None if confident is None else read_array(confident, image_id), classes)
                for cls in classes:
                    after = moved[cls]["walk"]
                    if before[cls]:
                        survival.add(cls, health.survived(after, before[cls]))
                    whole.add(cls, health.covers_image(after, labels.size))
                    growth.add(cls, int(health.grew(after, before[cls])), 1)
                    if confident is not None:
                        background.add(cls, moved[cls]["onto_background"], after)
            figures = {"survival": survival.rates(layout.classes), "whole_image_share": whole.rates(layout.classes),
                       "growth": growth.rates(layout.classes)}
            if confident is not None:
                figures["confident_background"] = background.rates(layout.classes)
            setting = ("random_walk.alpha (the walked background drowns the class; background: threshold cannot)"
                       if params["background"] == "power" else
                       "random_walk.bg_threshold or the affinities (affinity.steps)")
            health.record(store.attrs, figures, health.low_rates(
                STAGE, "survival", figures["survival"], health.MIN_SURVIVAL, setting,
                "the walk erases the class in many of its images") + health.whole_image_warnings(
                STAGE, figures["whole_image_share"],
                "the CAMs, when extract_cams warns too; else the walk (random_walk.beta / t, or bg_threshold)")
                + health.confident_background_warnings(figures.get("confident_background", {})))
    log.info("wrote pseudo-labels of %d images to %s (walk at stride %d, %d torch threads)", len(ids), args.out, stride,
             torch.get_num_threads())


if __name__ == "__main__":
    sys.exit(run_stage(main))
