"""Stage 2: multi-scale + flip CAMs of every image of a split into one HDF5 store."""

from __future__ import annotations

import functools
import json
import sys

import numpy as np

from .lib import health
from .lib.artifacts import provenance, put_array, write_store
from .lib.config import load_params, settings_arg
from .data import VOCLayout
from .data.transforms import to_tensor
from .lib.log import progress
from .methods.acol import acol_maps
from .data.erased import stopped_round, with_regions
from .methods.adversarial_erasing import erase_mined
from .methods.cam import cam_labels, cam_maps, multiscale_cam
from .methods.eps import eps_maps
from .methods.gradcam import gradcam_maps
from .methods.hide_and_seek import mean_colour
from .nets.backbones import computed_in
from .nets.classifier import CAMNet, classifier_method, load_classifier
from .lib.runtime import base_parser, run_stage, start

STAGE = "extract_cams"
CAM_METHODS = ("cam", "gradcam")  # cams.method; absent means cam
TRAINED_MAPS = {"acol": acol_maps, "eps": eps_maps}  # classifier.method -> its map read-out (others: cam_maps)


def method_maps(params: dict, trained_with: str = "cam"):
    """The raw-map function of ``cams.method``: Grad-CAM at ``cams.gradcam.layer``, or the map of the method the
    classifier was trained with (``classifier.method``): ACoL's fused heads, EPS's softmax over its C + 1 maps, or
    the CAM, M_c = w_c^T f."""
    if params.get("method", "cam") == "gradcam":
        return functools.partial(gradcam_maps, layer=params["gradcam"]["layer"])
    return TRAINED_MAPS.get(trained_with, cam_maps)


def extract(model: CAMNet, layout: VOCLayout, ids, table, scales, flip, device, store, maps=cam_maps):
    """Write one float16 (K, H, W) dataset per image with its class indices as attribute ``classes``, and the
    store's health: per class, the share of its images in which it wins argmax([CAM_THRESHOLD; M]) somewhere,
    and the share in which it wins it on the whole image."""
    model.to(device).eval()
    confident, whole = health.Tally(), health.Tally()
    for image_id in progress(ids, desc="CAMs"):
        classes = table[image_id]
        image = to_tensor(layout.image(image_id)).to(device)
        cam = multiscale_cam(model, image, classes, scales, flip, maps).cpu().numpy().astype(np.float16)
        put_array(store, image_id, cam, classes=np.asarray(classes, dtype=np.int64))
        health.tally_localisation(cam_labels(cam.astype(np.float32), classes, health.CAM_THRESHOLD), classes,
                                  confident, whole)
    figures = {"confident_share": confident.rates(layout.classes), "whole_image_share": whole.rates(layout.classes)}
    health.record(store.attrs, figures, health.low_rates(
        STAGE, "confident_share", figures["confident_share"], health.MIN_CONFIDENT_SHARE,
        "classifier (its CAM of the class is empty: classifier.lr / classifier.steps)",
        "the class gets no confident CAM pixel in many of its images") + health.whole_image_warnings(
        STAGE, figures["whole_image_share"],
        "the classifier's method (classifier.method and its section: its CAMs spread over the image), or classifier.steps"))


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--backbone", required=True, type=settings_arg("backbone", needs=("name",)), help="backbone settings (JSON or YAML file)")
    parser.add_argument("--params", required=True, type=settings_arg("cams"), help="CAM settings: scales, flip, method (JSON or YAML file)")
    parser.add_argument("--classifier", required=True, help="classifier weights (.h5)")
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True, help="CAM store to write (.h5)")
    parser.add_argument("--erase-regions", help="adversarial erasing: a mine_regions store whose regions are erased "
                                                "from the images first (a later round's CAMs)")
    parser.add_argument("--erasing", type=settings_arg("adversarial_erasing", needs=()), help="adversarial_erasing settings (JSON or YAML file), with --erase-regions")
    args, log, device, layout = start(parser, argv)
    backbone_cfg, params = load_params(args.backbone, "backbone"), load_params(args.params, "cams")
    table = layout.label_table(args.split)
    ids = list(table)
    inputs = [args.classifier, layout.list_file(args.split)] + ([args.erase_regions] if args.erase_regions else [])
    attrs = provenance(STAGE, {**params, "split": args.split}, args.seed, inputs)
    attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), ids=json.dumps(ids),
                 **computed_in(backbone_cfg, device))
    if args.erase_regions and stopped_round(args.erase_regions):
        attrs["skipped"] = f"erasing stopped at round {stopped_round(args.erase_regions)}"
        with write_store(args.out, attrs):
            pass
        log.info("adversarial erasing stopped (%s): no CAMs for this round", args.erase_regions)
        return
    if args.erase_regions:
        erasing = load_params(args.erasing, "adversarial_erasing")
        fill = mean_colour(layout.image(image_id) for image_id in ids)
        layout = with_regions(layout, args.erase_regions,
                              functools.partial(erase_mined, delta=erasing["delta"], mean=tuple(fill.tolist())))
    model = load_classifier(args.classifier, backbone_cfg, layout.classes)
    with write_store(args.out, attrs) as store:
        extract(model, layout, ids, table, params["scales"], params["flip"], device, store, method_maps(params, classifier_method(args.classifier)))
    log.info("wrote %s maps of %d images to %s", params.get("method", "cam"), len(ids), args.out)


if __name__ == "__main__":
    sys.exit(run_stage(main))
