"""Adversarial erasing, one round's mining: the union map U_r = max(U_{r-1}, M_r) of this round's CAMs (read on
the images with the earlier rounds' regions erased) into a store the later stages read as CAMs; the round stops
erasing when its classifier no longer classifies the erased images (wsss_steps/methods/adversarial_erasing.py).
The union map is checked as extract_cams checks CAMs (its health record: per class, a confident pixel and the
whole image), since the later stages read it in their place."""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np

from .lib import health
from .lib.artifacts import open_store, provenance, put_array, read_array, write_store
from .lib.config import load_params, settings_arg
from .lib.log import progress
from .methods.cam import cam_labels
from .methods.adversarial_erasing import mined_region, round_succeeded, union_map
from .lib.runtime import base_parser, run_stage, start

STAGE = "mine_regions"


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--params", required=True, type=settings_arg("adversarial_erasing", needs=()), help="adversarial_erasing settings (JSON or YAML file)")
    parser.add_argument("--round", type=int, required=True, help="this round's number (1: the run's own CAMs)")
    parser.add_argument("--cams", required=True, help="this round's CAM store (.h5)")
    parser.add_argument("--classifier", required=True, help="this round's classifier weights (its health: recall on the erased images)")
    parser.add_argument("--previous", help="the previous round's mine_regions store (rounds after the first)")
    parser.add_argument("--split", required=True, help="the training split (whose recall the classifier recorded)")
    parser.add_argument("--out", required=True, help="regions store to write (.h5)")
    args, log, device, layout = start(parser, argv)
    params = load_params(args.params, "adversarial_erasing")
    delta = params["delta"]
    previous = open_store(args.previous, STAGE, layout) if args.previous else None
    try:
        history = json.loads(previous.attrs["rounds"]) if previous is not None else []
        stopped = int(previous.attrs["stopped_at"]) if previous is not None else 0
        with h5py.File(args.classifier, "r") as weights:
            figures = json.loads(weights.attrs["health"]).get("figures", {}) if "health" in weights.attrs else {}
        recall = figures.get(args.split, {})
        use_round = not stopped
        if use_round and args.round > 1 and not round_succeeded(recall, params["min_recall"]):
            stopped, use_round = args.round, False
            log.warning("adversarial erasing: the round %d classifier recalls the erased training images below %.2f "
                        "(adversarial_erasing.min_recall): its regions are not used and erasing stops here",
                        args.round, params["min_recall"])
        source = open_store(args.cams, "extract_cams", layout) if use_round else previous
        with source:
            ids = json.loads(source.attrs["ids"])
            attrs = provenance(STAGE, {**params, "round": args.round}, args.seed,
                               [p for p in (args.cams, args.classifier, args.previous) if p])
            mined, total = 0, 0
            confident, whole = health.Tally(), health.Tally()
            with write_store(args.out, attrs) as store:
                for image_id in progress(ids, desc=f"mine round {args.round}"):
                    cam = read_array(source, image_id).astype(np.float32)
                    classes = np.asarray(source[image_id].attrs["classes"])
                    if use_round and previous is not None:
                        cam = union_map(read_array(previous, image_id).astype(np.float32), cam)
                    stored = cam.astype(np.float16)  # what the later stages read, and what is checked
                    put_array(store, image_id, stored, classes=classes)
                    region = mined_region(cam, delta)
                    health.tally_localisation(cam_labels(stored.astype(np.float32), classes,
                                                         health.CAM_THRESHOLD), classes, confident, whole)
                    mined, total = mined + int(region.sum()), total + region.size
                share = round(100 * mined / max(1, total), 2)
                history.append({"round": args.round, "used": use_round, "mined_share": share,
                                "recall": {k: v.get("recall") for k, v in recall.items()}})
                store.attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), ids=json.dumps(ids),
                                   stopped_at=stopped, rounds=json.dumps(history))
                figures = {"confident_share": confident.rates(layout.classes),
                           "whole_image_share": whole.rates(layout.classes)}
                health.record(store.attrs, figures, health.low_rates(
                    f"{STAGE} round {args.round}", "confident_share", figures["confident_share"],
                    health.MIN_CONFIDENT_SHARE, "the round's classifier (classifier.lr / classifier.steps)",
                    "the class gets no confident pixel in the union map in many of its images") +
                    health.whole_image_warnings(
                        f"{STAGE} round {args.round}", figures["whole_image_share"],
                        "adversarial_erasing.rounds or delta: the later rounds mined the background (fewer rounds, "
                        "a higher delta)"))
    finally:
        if previous is not None:
            previous.close()
    log.info("round %d: %.2f %% of the training pixels mined so far%s; wrote %s", args.round, share,
             f" (erasing stopped at round {stopped})" if stopped else "", args.out)


if __name__ == "__main__":
    sys.exit(run_stage(main))
