"""Stage 3: confident foreground / background / neutral labels from CAMs (low/high alpha + dense CRF)."""

from __future__ import annotations

import functools
import json
import multiprocessing
import sys

import numpy as np

from .lib import health
from .lib.artifacts import LOCALISATION_STAGES, open_store, provenance, put_array, read_array, write_store
from .lib.config import load_params, settings_arg
from .data import VOCLayout
from .lib.log import progress, setup_logging
from .methods.affinitynet import affinity_labels
from .methods.crf import dense_crf
from .lib.runtime import base_parser, record_manifests, run_stage

STAGE = "make_affinity_labels"


def label_one(job, alpha_low: float, alpha_high: float, crf: dict):
    """Affinity labels of one image: job = (image id, rgb uint8, cam float, classes)."""
    image_id, rgb, cam, classes = job
    refine = functools.partial(dense_crf, rgb, **crf) if crf["iterations"] > 0 else None
    return image_id, affinity_labels(cam.astype(np.float32), classes, alpha_low, alpha_high,
                                     (lambda probs: refine(probs)) if refine else None)


def _jobs(layout: VOCLayout, cams, ids):
    for image_id in ids:
        cam = read_array(cams, image_id)
        yield image_id, layout.image(image_id), cam, [int(c) for c in cams[image_id].attrs["classes"]]


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--params", required=True, type=settings_arg("affinity_labels"), help="alpha_low, alpha_high, crf (JSON or YAML file)")
    parser.add_argument("--cams", required=True, help="CAM store (.h5) from extract_cams")
    parser.add_argument("--out", required=True, help="label store to write (.h5)")
    args = parser.parse_args(argv)
    log = setup_logging(args.log)
    record_manifests(args)
    layout = VOCLayout.from_config(load_params(args.dataset))
    params = load_params(args.params, "affinity_labels")
    threads = args.threads or 1
    work = functools.partial(label_one, alpha_low=params["alpha_low"], alpha_high=params["alpha_high"], crf=params["crf"])
    with open_store(args.cams, LOCALISATION_STAGES, layout) as cams:
        ids = json.loads(cams.attrs["ids"])
        attrs = provenance(STAGE, params, args.seed, [args.cams])
        attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), ids=json.dumps(ids))
        confident = health.Tally()

        def put(store, image_id, labels):
            put_array(store, image_id, labels)
            for cls in cams[image_id].attrs["classes"]:
                confident.add(int(cls), bool((labels == cls).any()))

        with write_store(args.out, attrs) as store:
            if threads > 1:
                with multiprocessing.get_context("fork").Pool(threads) as pool:
                    results = pool.imap(work, _jobs(layout, cams, ids), chunksize=4)
                    for image_id, labels in progress(results, total=len(ids), desc="affinity labels"):
                        put(store, image_id, labels)
            else:
                for job in progress(_jobs(layout, cams, ids), total=len(ids), desc="affinity labels"):
                    put(store, *work(job))
            figures = {"confident_share": confident.rates(layout.classes)}
            health.record(store.attrs, figures, health.low_rates(
                STAGE, "confident_share", figures["confident_share"], health.MIN_CONFIDENT_SHARE,
                "affinity_labels.alpha_low (too low: the background wins everywhere) or the CAMs",
                "the class gets no confident affinity label in many of its images"))
    log.info("wrote affinity labels of %d images to %s using %d processes", len(ids), args.out, threads)


if __name__ == "__main__":
    sys.exit(run_stage(main))
