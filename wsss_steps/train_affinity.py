"""Stage 4: train AffinityNet on pairs within radius gamma of the affinity labels (affinity.method irn: IRN's
boundary branch on pairs within irn.train_radius of the stride-4 grid)."""

from __future__ import annotations

import sys

from .lib.artifacts import provenance, save_weights
from .lib.config import load_params, settings_arg
from .data.loader import CropDataset, StoreMaps
from .methods.affinitynet import affinity_loss_fn
from .methods.irn import TRAIN_RADIUS, boundary_loss_fn
from .nets.affinity import build_affinity_net
from .nets.boundary import build_boundary_net
from .nets.backbones import computed_in
from .nets.classifier import load_classifier_backbone
from .lib.runtime import base_parser, loader_workers, run_stage, seed_everything, start
from .lib.training import discard_checkpoint, fit, make_optimizer, run_fingerprint

STAGE = "train_affinity"


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--backbone", required=True, type=settings_arg("backbone", needs=("name",)), help="backbone settings (JSON or YAML file)")
    parser.add_argument("--params", required=True, type=settings_arg("affinity"), help="affinity settings (JSON or YAML file)")
    parser.add_argument("--labels", required=True, help="affinity label store (.h5)")
    parser.add_argument("--classifier", help="classifier weights, used when init_from_classifier is true")
    parser.add_argument("--out", required=True, help="weights file to write (.h5)")
    parser.add_argument("--checkpoint", help="resume file kept outside the outputs: saved every epoch, deleted at the end")
    args, log, device, layout = start(parser, argv)
    backbone_cfg, params = load_params(args.backbone, "backbone"), load_params(args.params, "affinity")
    seed_everything(args.seed)
    init = params["init_from_classifier"]
    if params.get("method") == "irn":
        model = build_boundary_net(backbone_cfg, pretrained=not init)
        loss_fn = boundary_loss_fn(params.get("irn", {}).get("train_radius", TRAIN_RADIUS))
    else:
        model = build_affinity_net(backbone_cfg, params["head_channels"], pretrained=not init,
                                   feature_stride=params.get("feature_stride"), head_init=params.get("head_init"))
        loss_fn = affinity_loss_fn(params["radius"])
    if init:
        load_classifier_backbone(model.backbone, args.classifier, backbone_cfg, layout.classes)
    label_maps = StoreMaps(args.labels, "make_affinity_labels", layout)
    dataset = CropDataset(layout, list(label_maps), params["crop_size"], params["scale_range"], args.seed, label_maps=label_maps)
    optimizer = make_optimizer(*model.trainable_parameters(), params)
    inputs = [args.labels] + ([args.classifier] if init else [])
    curve = []
    history = fit(model, dataset, loss_fn, optimizer, params, params["batch_size"],
                  device, args.seed, "affinity", args.checkpoint, run_fingerprint(args, inputs),
                  loader_workers(args.workers, args.threads, device), curve)
    attrs = provenance(STAGE, {"backbone": backbone_cfg, **params}, args.seed, inputs)
    attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), final_loss=history[-1],
                 **computed_in(backbone_cfg, device))
    save_weights(args.out, model.cpu(), attrs, curve)
    discard_checkpoint(args.checkpoint)
    log.info("wrote %s (final loss %.4f)", args.out, history[-1])


if __name__ == "__main__":
    sys.exit(run_stage(main))
