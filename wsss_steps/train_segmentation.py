"""Stage 6: train DeepLabV3 on the pseudo-labels (255 ignored) and predict every image of the given splits.

With ``segmentation.method: sec`` the network is trained with SEC's seed, expand and constrain losses
(wsss_steps/methods/sec.py) from the affinity-label store's confident pixels (the seeds) and the image-level
labels, instead of cross-entropy on the random walk's labels."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch.nn.functional as F

from .lib import health
from .lib.artifacts import provenance, put_array, save_weights, write_store
from .lib.config import load_params, settings_arg
from .data.loader import CropDataset, StoreMaps
from .data.transforms import to_tensor
from .lib.log import progress
from .methods import adversarial_erasing, sec
from .nets.backbones import computed_in
from .nets.classifier import load_classifier_backbone
from .nets.segmentation import build_segmentation_net, predict
from .lib.faults import fault_point
from .lib.runtime import base_parser, loader_workers, run_stage, seed_everything, start
from .lib.training import discard_checkpoint, fit, make_optimizer, run_fingerprint

STAGE = "train_segmentation"


def shares(counts: np.ndarray) -> np.ndarray:
    """Each class's share of the counted pixels."""
    return counts / max(1, int(counts.sum()))


def prediction_health(layout, label_maps: dict, predicted: dict):
    """(figures, warnings) of the predictions: per class, the predicted share on the pseudo-labelled (train) images
    against the pseudo-labels' share, and the pixels predicted on the first predicted split (val).

    predicted: {"train": per-class pixel counts, "val": per-class pixel counts}.
    """
    n = layout.num_classes
    pseudo = np.zeros(n, np.int64)
    for labels in label_maps.values():
        pseudo += np.bincount(labels[labels < n].ravel(), minlength=n)[:n]
    pseudo_share = shares(pseudo)
    figures = {"pseudo_label_share": dict(zip(layout.classes, np.round(pseudo_share, 4).tolist()))}
    ratio = {}
    if predicted["train"].sum():
        train_share = shares(predicted["train"])
        figures["train_predicted_share"] = dict(zip(layout.classes, np.round(train_share, 4).tolist()))
        for c, name in enumerate(layout.classes):
            if pseudo[c] > 0:
                ratio[name] = {"rate": round(float(train_share[c] / pseudo_share[c]), 4)}
        figures["train_ratio"] = ratio
    figures["val_predicted_share"] = dict(zip(layout.classes, np.round(shares(predicted["val"]), 4).tolist()))
    val_pixels = {name: int(predicted["val"][c]) for c, name in enumerate(layout.classes) if c > 0}
    return figures, health.segmentation_warnings(ratio, val_pixels)


def pseudo_label_loss(settings: dict, ignore_index: int):
    """Cross-entropy of the segmentation output against the random walk's pseudo-labels (ignore_index ignored)."""

    def loss_fn(net, batch, progress=0.0):
        return F.cross_entropy(net(batch["image"])["out"], batch["labels"], ignore_index=ignore_index)

    return loss_fn


# segmentation.method -> its loss function's builder (settings, ignore_index) (methods/ for SEC and PSL)
LOSSES = {"random_walk": pseudo_label_loss, "sec": sec.training_loss, "psl": adversarial_erasing.psl_training_loss}


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--backbone", required=True, type=settings_arg("backbone", needs=("name",)), help="backbone settings (JSON or YAML file)")
    parser.add_argument("--params", required=True, type=settings_arg("segmentation"), help="segmentation settings (JSON or YAML file)")
    parser.add_argument("--pseudo-labels", required=True,
                        help="pseudo-label store (.h5) from random_walk; with method sec, the affinity-label store (the seeds)")
    parser.add_argument("--classifier", help="classifier weights, used when init_from_classifier is true")
    parser.add_argument("--predict-splits", nargs="+", required=True, help="splits to predict after training; the first is the one scored (val), whose predicted classes the health check reads")
    parser.add_argument("--out", required=True, help="weights file to write (.h5)")
    parser.add_argument("--predictions", required=True, help="prediction store to write (.h5), one group per split")
    parser.add_argument("--checkpoint", help="resume file kept outside the outputs: saved every epoch, deleted at the end")
    args, log, device, layout = start(parser, argv)
    backbone_cfg, params = load_params(args.backbone, "backbone"), load_params(args.params, "segmentation")
    seed_everything(args.seed)
    init = params["init_from_classifier"]
    model = build_segmentation_net(backbone_cfg, params, layout.num_classes, pretrained=not init)
    if init:
        load_classifier_backbone(model.backbone.backbone, args.classifier, backbone_cfg, layout.classes)
    method = params.get("method", "random_walk")
    label_maps = StoreMaps(args.pseudo_labels, "make_affinity_labels" if method == "sec" else "random_walk", layout)
    dataset = CropDataset(layout, list(label_maps), params["crop_size"], params["scale_range"], args.seed,
                          label_maps=label_maps, image_labels={i: layout.image_labels(i) for i in label_maps} if method != "random_walk" else None)
    optimizer = make_optimizer(*model.trainable_parameters(), params)
    loss_fn = LOSSES[method](params.get(method, {}), layout.ignore_index)

    inputs = [args.pseudo_labels] + ([args.classifier] if init else [])
    curve = []
    history = fit(model, dataset, loss_fn, optimizer, params, params["batch_size"], device, args.seed,
                  "segmentation", args.checkpoint, run_fingerprint(args, inputs),
                  loader_workers(args.workers, args.threads, device), curve)
    attrs = provenance(STAGE, {"backbone": backbone_cfg, **params}, args.seed, inputs)
    attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), final_loss=history[-1],
                 **computed_in(backbone_cfg, device))
    save_weights(args.out, model.cpu(), attrs, curve)
    model.to(device).eval()
    fault_point("segmentation predict")
    attrs = provenance("predict_segmentation", {"splits": args.predict_splits}, args.seed, [args.out])
    attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), trained_with=method,
                 **computed_in(backbone_cfg, device))
    done = set()  # a split listed twice is counted once
    predicted = {"val": np.zeros(layout.num_classes, np.int64), "train": np.zeros(layout.num_classes, np.int64)}
    with write_store(args.predictions, attrs) as store:
        for split in args.predict_splits:
            split_ids = layout.ids(split)
            group = store.create_group(split)
            group.attrs["ids"] = json.dumps(split_ids)
            for image_id in progress(split_ids, desc=f"predict {split}"):
                labels = predict(model, to_tensor(layout.image(image_id)).to(device))
                put_array(group, image_id, labels)
                counts = np.bincount(labels.ravel(), minlength=layout.num_classes)[:layout.num_classes]
                if split == args.predict_splits[0]:
                    predicted["val"] += counts
                if image_id in label_maps and split not in done:
                    predicted["train"] += counts
            done.add(split)
        health.record(store.attrs, *prediction_health(layout, label_maps, predicted))
    discard_checkpoint(args.checkpoint)  # only now: a failed prediction step keeps the trained weights
    log.info("wrote %s and predictions for %s to %s", args.out, ", ".join(args.predict_splits), args.predictions)


if __name__ == "__main__":
    sys.exit(run_stage(main))
