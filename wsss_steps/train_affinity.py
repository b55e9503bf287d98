"""Stage 4: train AffinityNet on pairs within radius gamma of the affinity labels."""

from __future__ import annotations

import sys

import torch

from .algorithms import affinity_loss, pair_affinities, pair_labels, pair_offsets
from .config import load_params
from .io import provenance, read_label_maps, save_weights
from .models import AffinityNet, backbone_from_config
from .runtime import base_parser, seed_everything, start
from .train_classifier import load_classifier_backbone
from .training import CropDataset, fit, make_optimizer, run_fingerprint

STAGE = "train_affinity"


def build(backbone_cfg: dict, head_channels, pretrained: bool = True) -> AffinityNet:
    """AffinityNet on the configured backbone."""
    backbone = backbone_from_config(backbone_cfg, pretrained)
    return AffinityNet(backbone, head_channels)


def feature_labels(labels: torch.Tensor, size) -> torch.Tensor:
    """Label of each feature cell: the pixel at the cell's centre, floor((i + 1/2) H / h), of (B, H, W) labels."""
    height, width = labels.shape[-2:]
    rows = ((torch.arange(size[0], device=labels.device) + 0.5) * height / size[0]).long().clamp(max=height - 1)
    cols = ((torch.arange(size[1], device=labels.device) + 0.5) * width / size[1]).long().clamp(max=width - 1)
    return labels[:, rows][:, :, cols].long()


def loss_for(radius: int):
    """The AffinityNet loss on a batch, for pairs within ``radius``."""
    offsets = pair_offsets(radius)

    def loss_fn(net, batch):
        features = net(batch["image"])
        labels = feature_labels(batch["labels"], features.shape[-2:])
        pos_fg, pos_bg, neg = pair_labels(labels, offsets)
        return affinity_loss(pair_affinities(features, offsets), pos_fg, pos_bg, neg)

    return loss_fn


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--backbone", required=True, help="backbone settings (JSON or YAML file)")
    parser.add_argument("--params", required=True, help="affinity settings (JSON or YAML file)")
    parser.add_argument("--labels", required=True, help="affinity label store (.h5)")
    parser.add_argument("--classifier", help="classifier weights, used when init_from_classifier is true")
    parser.add_argument("--out", required=True, help="weights file to write (.h5)")
    parser.add_argument("--checkpoint", help="resume file kept outside the outputs: saved every epoch, deleted at the end")
    args, log, device, layout = start(parser, argv)
    backbone_cfg, params = load_params(args.backbone), load_params(args.params)
    seed_everything(args.seed)
    init = params["init_from_classifier"]
    model = build(backbone_cfg, params["head_channels"], pretrained=not init)
    if init:
        load_classifier_backbone(model.backbone, args.classifier, backbone_cfg, layout.classes)
    label_maps = read_label_maps(args.labels, "make_affinity_labels", layout)
    dataset = CropDataset(layout, list(label_maps), params["crop_size"], params["scale_range"], args.seed, label_maps=label_maps)
    head = list(model.reduce.parameters()) + list(model.fuse.parameters())
    optimizer = make_optimizer(model.backbone.parameters(), head, params)
    inputs = [args.labels] + ([args.classifier] if init else [])
    history = fit(model, dataset, loss_for(params["radius"]), optimizer, params["epochs"], params["batch_size"],
                  device, args.seed, "affinity", args.checkpoint, run_fingerprint(args, inputs))
    attrs = provenance(STAGE, {"backbone": backbone_cfg, **params}, args.seed, inputs)
    attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), final_loss=history[-1])
    save_weights(args.out, model.cpu(), attrs)
    log.info("wrote %s (final loss %.4f)", args.out, history[-1])


if __name__ == "__main__":
    sys.exit(main())
