"""Stage 1: train the CAM classifier from image-level labels (multilabel soft-margin loss)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from .lib import health
from .lib.artifacts import provenance, save_weights
from .lib.config import ConfigError, load_params, settings_arg
from .data import VOCLayout
from .data.loader import CropDataset
from .data.transforms import pad_to_stride, to_tensor
from .lib.log import progress
from .methods import acol, cam, eps, puzzle_cam
from .data.erased import stopped_round, with_regions
from .methods.adversarial_erasing import erase_mined
from .methods.hide_and_seek import draw_patch_size, hidden_cells, hide, mean_colour
from .nets.backbones import computed_in
from .nets.classifier import build_classifier
from .lib.runtime import base_parser, loader_workers, run_stage, seed_everything, start
from .lib.training import discard_checkpoint, fit, make_optimizer, run_fingerprint

STAGE = "train_classifier"
# classifier.method -> its loss function's builder (methods/); Hide-and-Seek trains with plain CAM's loss on
# hidden crops (crop_hiding)
LOSSES = {"cam": cam.training_loss, "hide_and_seek": cam.training_loss, "puzzle_cam": puzzle_cam.training_loss,
          "acol": acol.training_loss, "eps": eps.training_loss}
log = logging.getLogger("wsss_steps")


def train(layout: VOCLayout, split: str, backbone_cfg: dict, params: dict, seed: int, device, checkpoint=None,
          fingerprint: str = "", workers: int = 0, curve: list | None = None, another_cycle=None):
    """Train and return the classifier and its loss history (resuming from ``checkpoint`` when it fits); each step's
    loss goes into ``curve`` when given; ``another_cycle(model, step)`` decides at the end of each schedule whether to
    train another (``fit``, up to ``classifier.max_cycles``)."""
    seed_everything(seed)
    table = layout.label_table(split)
    model = build_classifier(backbone_cfg, layout.num_classes, method=params.get("method", "cam"))
    dataset = CropDataset(layout, table, params["crop_size"], params["scale_range"], seed, image_labels=table,
                          hide=crop_hiding(layout, table, params), saliency=params.get("method") == "eps")
    optimizer = make_optimizer(*model.trainable_parameters(), params)

    method = params.get("method", "cam")
    if method == "puzzle_cam":
        try:
            puzzle_cam.check_crop(params["crop_size"], params["puzzle_cam"]["tiles"], model.backbone.stride)
        except ValueError as exc:
            raise ConfigError(f"config key 'classifier.crop_size': {exc}.") from None
    if method == "eps":
        for image_id in table:  # every saliency map readable before training starts
            layout.saliency(image_id)
    loss_fn = LOSSES[method](params.get(method, {}))

    history = fit(model, dataset, loss_fn, optimizer, params, params["batch_size"], device, seed, "classifier",
                  checkpoint, fingerprint, workers, curve, another_cycle)
    return model.cpu(), history


def crop_hiding(layout: VOCLayout, ids, params: dict):
    """The training crops' hiding of ``classifier.method`` (Hide-and-Seek), or None for plain CAM training."""
    if params.get("method", "cam") != "hide_and_seek":
        return None
    settings = params["hide_and_seek"]
    mean = mean_colour(layout.image(image_id) for image_id in ids)
    log.info("Hide-and-Seek: cells of %s px (one size drawn per crop) hidden with p %.2f, filled with the training "
             "mean colour %s", settings["patch_sizes"], settings["p"], np.round(mean, 1).tolist())
    return functools.partial(_hide_crop, patch_sizes=tuple(settings["patch_sizes"]), p=settings["p"], mean=mean)


def _hide_crop(rng, image, patch_sizes, p, mean):
    return hide(image, hidden_cells(rng, image.shape[:2], draw_patch_size(rng, patch_sizes), p), mean)


def health_tables(layout: VOCLayout, splits, log) -> dict:
    """The images of each health split that have image-level labels, decided before training: a split without masks
    or annotations (a val split of unlabelled photos) is left out of the health check, and the log says so."""
    tables = {}
    for split in dict.fromkeys(splits):
        table, unlabelled = layout.labelled_table(split)
        if unlabelled:
            log.warning("health: %d of the %d images of split %s have no image-level labels (no mask, annotation or "
                        "labels-file entry): %s", len(unlabelled), len(unlabelled) + len(table), split,
                        "its image-level precision and recall are measured on the others" if table
                        else "its image-level precision and recall are not measured")
        if table:
            tables[split] = table
    return tables


@torch.no_grad()
def label_health(model, layout: VOCLayout, tables: dict, device) -> dict:
    """Per split and class: precision and recall of the image-level labels predicted as logit > 0 on whole images
    (``tables``: split -> {id: classes}); the model is left on ``device`` in the mode it was in."""
    training = model.training
    model.to(device).eval()
    figures = {}
    names = layout.classes[1:]
    for split, table in tables.items():
        predicted = np.zeros((len(table), len(names)), bool)
        target = np.zeros_like(predicted)
        for row, (image_id, classes) in enumerate(progress(table.items(), total=len(table), desc=f"labels {split}")):
            padded, _ = pad_to_stride(to_tensor(layout.image(image_id))[None].to(device), model.backbone.stride)
            predicted[row] = (model(padded)[0] > 0).cpu().numpy()
            target[row, [c - 1 for c in classes]] = True
        precision, recall = health.precision_recall(predicted, target)
        figures[split] = {name: {"precision": None if np.isnan(p) else round(float(p), 4),
                                 "recall": None if np.isnan(r) else round(float(r), 4), "images": int(target[:, k].sum())}
                          for k, (name, p, r) in enumerate(zip(names, precision, recall))}
    model.train(training)
    return figures


class UntilLearnt:
    """``fit``'s ``another_cycle``: at the end of each schedule, the image-level precision and recall of every class
    on the training images (``label_health``); another schedule while a class with training images is below
    ``health.MIN_PRECISION_RECALL``. Keeps the last figures and step for the health record."""

    def __init__(self, layout: VOCLayout, split: str, table: dict, device):
        self.layout, self.split, self.table, self.device = layout, split, table, device
        self.figures, self.step = None, 0

    def __call__(self, model, step: int) -> bool:
        self.figures, self.step = label_health(model, self.layout, {self.split: self.table}, self.device), step
        unlearnt = self.unlearnt()
        if unlearnt:
            log.info("classifier after %d steps: not yet learnt on the training images: %s", step,
                     health.describe_classes(self.figures[self.split], unlearnt))
        else:
            log.info("classifier after %d steps: every class learnt on the training images (image-level precision "
                     "and recall at least %.1f)", step, health.MIN_PRECISION_RECALL)
        return bool(unlearnt)

    def unlearnt(self) -> list[str]:
        return health.unlearnt_classes(self.figures[self.split]) if self.figures else []


def write_skipped_round(out, regions, layout):
    """A weights file without weights for an adversarial-erasing round after the one at which erasing stopped."""
    from .lib.artifacts import write_store

    round_ = stopped_round(regions)
    attrs = provenance(STAGE, {}, None, [regions])
    attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), skipped=f"erasing stopped at round {round_}")
    with write_store(out, attrs):
        pass
    log.info("adversarial erasing stopped at round %d (%s): this round is skipped", round_, regions)


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--backbone", required=True, type=settings_arg("backbone", needs=("name",)), help="backbone settings (JSON or YAML file)")
    parser.add_argument("--params", required=True, type=settings_arg("classifier"), help="classifier settings (JSON or YAML file)")
    parser.add_argument("--split", required=True, help="split list to train on")
    parser.add_argument("--out", required=True, help="weights file to write (.h5)")
    parser.add_argument("--checkpoint", help="resume file kept outside the outputs: saved every epoch, deleted at the end")
    parser.add_argument("--health-splits", nargs="*", default=[], metavar="SPLIT",
                        help="splits on which the image-level precision and recall are measured after training")
    parser.add_argument("--stop-unlearnt", action="store_true",
                        help="a class still not learnt on the training images when training ends (classifier."
                             "max_cycles) stops the stage with an error: no weights are written, the checkpoint is "
                             "kept (health.stop_on: [classifier])")
    parser.add_argument("--check-masks", nargs="*", default=[], metavar="SPLIT",
                        help="also check, before training, the masks of these splits (those scored later)")
    parser.add_argument("--saliency-dir", help="saliency maps to read instead of the dataset's saliency_dir "
                                               "(classifier.method eps; the folder make_saliency wrote)")
    parser.add_argument("--erase-regions", help="adversarial erasing: a mine_regions store whose regions are erased "
                                                "from the training images (a later round's classifier)")
    parser.add_argument("--erasing", type=settings_arg("adversarial_erasing", needs=()), help="adversarial_erasing settings (JSON or YAML file), with --erase-regions")
    args, log, device, layout = start(parser, argv)
    if args.saliency_dir:
        layout = dataclasses.replace(layout, saliency_dir=str(Path(args.saliency_dir).resolve()))
    for split, counts in layout.check([args.split], args.check_masks).items():
        log.info("dataset check, split %s: %s", split, counts)
        if counts.get("classes_without_images"):
            log.warning("dataset check: no image of the training split %s contains the classes %s: the classifier "
                        "cannot learn them; add images of them to the split or take them out of dataset.classes",
                        split, ", ".join(f"'{name}'" for name in counts["classes_without_images"]))
    tables = health_tables(layout, args.health_splits, log)
    backbone_cfg, params = load_params(args.backbone, "backbone"), load_params(args.params, "classifier")
    inputs = [layout.list_file(args.split)]
    if args.erase_regions:
        inputs.append(args.erase_regions)
        if stopped_round(args.erase_regions):
            write_skipped_round(args.out, args.erase_regions, layout)
            return
        erasing = load_params(args.erasing, "adversarial_erasing")
        fill = mean_colour(layout.image(image_id) for image_id in layout.ids(args.split))
        layout = with_regions(layout, args.erase_regions,
                              functools.partial(erase_mined, delta=erasing["delta"], mean=tuple(fill.tolist())))
        log.info("adversarial erasing: training on images with the regions of %s erased (delta %.2f, fill %s)",
                 args.erase_regions, erasing["delta"], np.round(fill, 1).tolist())
    # neither max_cycles nor the stop flag changes a step of training: a rerun that raises one continues the checkpoint
    fingerprint = run_fingerprint(argparse.Namespace(**{**vars(args), "stop_unlearnt": None, "params": {
        k: v for k, v in params.items() if k != "max_cycles"}}), inputs)
    curve = []
    until = UntilLearnt(layout, args.split, tables.get(args.split) or layout.label_table(args.split), device)
    model, history = train(layout, args.split, backbone_cfg, params, args.seed, device, args.checkpoint, fingerprint,
                           loader_workers(args.workers, args.threads, device), curve, until)
    if unlearnt := until.unlearnt():
        message = (f"train_classifier: after {until.step} steps ({params.get('max_cycles') or 1} schedule(s), "
                   f"classifier.max_cycles) the classifier has not learnt "
                   f"{health.describe_classes(until.figures[args.split], unlearnt)} on the training images (image-level "
                   f"precision or recall below {health.MIN_PRECISION_RECALL}); raise classifier.max_cycles (the rerun "
                   f"continues this training), lower classifier.lr if the loss jumped, or add images of the class")
        if args.stop_unlearnt:
            model.cpu()
            raise health.HealthStop(f"{message}; or set health.stop_on: [] to go on with this classifier. No weights "
                                    f"were written; the training is kept in {args.checkpoint}.")
    attrs = provenance(STAGE, {"backbone": backbone_cfg, **params, "split": args.split}, args.seed, inputs)
    attrs.update(classes=list(layout.classes), dataset_root=str(layout.root), final_loss=history[-1],
                 steps_trained=until.step, **computed_in(backbone_cfg, device))
    if tables:
        model.to(device)
        figures = label_health(model, layout, {s: t for s, t in tables.items() if s != args.split}, device)
        if args.split in tables:
            figures = {args.split: until.figures[args.split], **figures}
        model.cpu()
        health.record(attrs, figures, health.classifier_warnings(figures, args.split))
    save_weights(args.out, model, attrs, curve)
    discard_checkpoint(args.checkpoint)
    log.info("wrote %s (final loss %.4f)", args.out, history[-1])


if __name__ == "__main__":
    sys.exit(run_stage(main))
