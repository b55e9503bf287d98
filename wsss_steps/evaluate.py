"""Stage 7: mIoU per class of CAM and CAM+RW (train split) and of the segmentation network (val split).

Writes summary.json, summary.md (a table like the paper's) and examples.png (image, ground
truth, CAM, affinity labels, pseudo-label, prediction side by side).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .lib import health
from .lib.artifacts import LOCALISATION_STAGES, RUN_PROVENANCE, atomic_path, open_store, read_array
from .lib.config import load_params, settings_arg
from .data import VOCLayout
from .data.label_png import voc_palette
from .methods.cam import cam_labels
from .methods.crf import crf_labels
from .lib.metrics import confusion_counts, confusion_matrix, confusion_ratio, score
from .lib.scoring import evaluate_cams
from .lib.log import progress, setup_logging
from .lib.runtime import base_parser, record_manifests, run_stage

STAGE = "evaluate"


def evaluate_labels(layout: VOCLayout, group, ids, desc: str, labels_of=None) -> dict:
    """mIoU of stored label maps (one dataset per image id; or ``labels_of(image_id)``) against the ground-truth masks."""
    n = layout.num_classes
    conf = np.zeros((n, n), np.int64)
    labels_of = labels_of or (lambda image_id: read_array(group, image_id))
    for image_id in progress(ids, desc=desc):
        conf += confusion_matrix(labels_of(image_id), layout.mask(image_id), n, layout.ignore_index)
    return dict(score(conf, layout.classes), images=len(ids))


def cooccurrence_ratios(layout: VOCLayout, pairs, sources: dict) -> list[dict]:
    """EPS's confusion ratio of each declared (class, context) pair for each label source.

    sources: name -> (ids, labels_of(image_id) -> (H, W) labels); returns one row per pair with a ratio per
    source (None where the class has no true positive) and the images it was measured on.
    """
    rows = []
    for pair in pairs:
        c = layout.classes.index(pair["class"])
        row = {"class": pair["class"], "context": pair["context"]}
        for name, (ids, labels_of) in sources.items():
            k_as_c = tp_c = 0
            for image_id in progress(ids, desc=f"confusion {pair['class']}/{pair['context']} {name}"):
                counts = confusion_counts(labels_of(image_id), layout.mask(image_id),
                                          layout.context(image_id, pair["context"]), c)
                k_as_c, tp_c = k_as_c + counts[0], tp_c + counts[1]
            ratio = confusion_ratio(k_as_c, tp_c)
            row[name] = None if np.isnan(ratio) else round(ratio, 4)
        rows.append(row)
    return rows


def cooccurrence_markdown(rows: list[dict]) -> str:
    """The confusion-ratio table of summary.md (empty without declared pairs)."""
    if not rows:
        return ""
    lines = ["", "## Co-occurrence", "",
             "EPS's confusion ratio: pixels of the context predicted as the class, over the class's true positives "
             "(lower is better).", "", "| class | context | CAM | CAM + RW | segmentation (val) |", "|---|---|---|---|---|"]
    for row in rows:
        cells = ["-" if row.get(k) is None else f"{row[k]:.3f}" for k in ("cam", "rw", "seg")]
        lines.append(f"| {row['class']} | {row['context']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def affinity_label_quality(layout: VOCLayout, labels, ids) -> dict:
    """Share of pixels given a confident label and the accuracy of those labels."""
    confident = correct = total = 0
    for image_id in ids:
        gt = layout.mask(image_id)
        lab = read_array(labels, image_id)
        valid = gt != layout.ignore_index
        keep = valid & (lab != 255)
        total += int(valid.sum())
        confident += int(keep.sum())
        correct += int((lab[keep] == gt[keep]).sum())
    return {"confident_share": round(100 * confident / max(1, total), 2), "accuracy": round(100 * correct / max(1, confident), 2)}


# The segmentation row's name by segmentation.method.
SEG_ROWS = {"random_walk": "DeepLabV3 on CAM + RW", "sec": "DeepLabV3 with SEC", "psl": "DeepLabV3 on CAM + RW, PSL"}


def markdown_table(summary: dict) -> str:
    """The per-class IoU table (rows: CAM, CAM+RW, segmentation)."""
    classes = summary["classes"]
    head = "| method | split | " + " | ".join(classes) + " | mIoU |\n|---|---|" + "---|" * (len(classes) + 1) + "\n"
    rows = []
    seg = SEG_ROWS.get(summary.get("seg", {}).get("trained_with"), SEG_ROWS["random_walk"])
    for key, name in (("cam", f"CAM (bg {summary['cam']['threshold']})"), ("rw", "CAM + RW"), ("seg", seg),
                      ("seg_crf", f"{seg}, + CRF")):
        if key not in summary:
            continue
        part = summary[key]
        cells = ["-" if part["iou"][c] is None else f"{part['iou'][c]:.1f}" for c in classes]
        rows.append(f"| {name} | {part['split']} | " + " | ".join(cells) + f" | **{part['miou']:.1f}** |")
    for key, reason in summary.get("not_scored", {}).items():
        rows.append(f"| {seg if key == 'seg' else key} | not scored: {reason} |" + " |" * (len(classes) + 1))
    curve = ", ".join(f"{p['threshold']}: {p['miou']:.1f}" for p in summary["cam"]["curve"])
    return (f"# {summary['run_name']} on {summary['dataset']}\n\n" + head + "\n".join(rows) +
            f"\n\nCAM mIoU against the background threshold (for reference, not tuned): {curve}\n")


def health_section(stores: dict) -> dict:
    """The Health section: each stage's figures and every warning, from the ``health`` attribute of its artifact.

    stores: {stage: HDF5 attributes of its artifact}; a stage whose artifact has no record is listed as unchecked,
    and one whose record lacks a check's figures (``health.missing_figures``) as "stage (figure, ...)".
    """
    section = {"stages": {}, "warnings": [], "unchecked": []}
    for stage, attrs in stores.items():
        record = health.read(attrs)
        if record is None:
            section["unchecked"].append(stage)
            continue
        if missing := health.missing_figures(stage, record):
            section["unchecked"].append(f"{stage} ({', '.join(missing)})")
        section["stages"][stage] = record["figures"]
        section["warnings"].extend(record["warnings"])
    return section


def health_markdown(section: dict) -> str:
    """The Health section of summary.md: OK, or one line per warning."""
    lines = ["\n## Health\n"]
    if section["warnings"]:
        lines += [f"- **WARNING** {w['message']}" for w in section["warnings"]]
    elif section["unchecked"]:
        lines.append("No check that ran found a problem; some did not run (below).")
    else:
        lines.append("All checks passed (classifier labels, CAM and affinity-label coverage, class survival in the "
                     "walk, no class walked onto confident background, no class over its whole image, predicted classes).")
    if section["unchecked"]:
        lines.append(f"\nNot checked (the artifact has no figures for it: made before the check existed; rerun the "
                     f"stage to check it): {', '.join(section['unchecked'])}.")
    return "\n".join(lines) + "\n"


def _colour(labels: np.ndarray) -> np.ndarray:
    palette = np.asarray(voc_palette(), np.uint8).reshape(256, 3)
    return palette[labels]


def _heat(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    x = cam.max(axis=0) if cam.shape[0] else np.zeros(image.shape[:2], np.float32)
    jet = np.stack([np.clip(1.5 - np.abs(4 * x - k), 0, 1) for k in (3, 2, 1)], axis=-1) * 255
    return (0.5 * image + 0.5 * jet).astype(np.uint8)


def spread_examples(images, n: int, first=()) -> list:
    """``n`` image ids spread over the classes, deterministically: classes take turns (those in ``first``, e.g. the
    health warnings' classes, then the rest in order), each taking its next image in list order not yet shown;
    ``images`` is [(id, class indices)], images without a class are never shown."""
    labelled = [(i, set(cs)) for i, cs in images if cs]
    classes = list(dict.fromkeys([*first, *sorted({c for _, cs in labelled for c in cs})]))
    shown, taken = [], set()
    while len(shown) < min(n, len(labelled)):
        before = len(shown)
        for c in classes:
            pick = next((i for i, cs in labelled if c in cs and i not in taken), None)
            if pick is not None and len(shown) < n:
                shown.append(pick)
                taken.add(pick)
        if len(shown) == before:
            break
    return shown


def examples_figure(layout, ids, cams, labels, pseudo, preds) -> Image.Image:
    """Rows of image | ground truth | CAM | affinity labels | pseudo-label | prediction."""
    titles = ["image", "ground truth", "CAM", "affinity labels", "pseudo-label (RW)", "prediction"]
    rows = []
    for image_id in ids:
        image = layout.image(image_id)
        cam = read_array(cams, image_id).astype(np.float32)
        tiles = [image, _colour(layout.mask(image_id)), _heat(image, cam), _colour(read_array(labels, image_id)),
                 _colour(read_array(pseudo, image_id)), _colour(read_array(preds, image_id))]
        h = max(t.shape[0] for t in tiles)
        w = max(t.shape[1] for t in tiles)
        row = np.full((h, len(tiles) * (w + 4), 3), 255, np.uint8)
        for k, tile in enumerate(tiles):
            row[:tile.shape[0], k * (w + 4):k * (w + 4) + tile.shape[1]] = tile
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    canvas = Image.new("RGB", (width, 16 + sum(r.shape[0] + 4 for r in rows)), "white")
    draw = ImageDraw.Draw(canvas)
    tile_w = width // len(titles)
    for k, title in enumerate(titles):
        draw.text((k * tile_w + 2, 2), title, fill="black")
    y = 16
    for row in rows:
        canvas.paste(Image.fromarray(row), (0, y))
        y += row.shape[0] + 4
    legend = legend_strip(layout.classes, layout.ignore_index, width)
    figure = Image.new("RGB", (width, canvas.height + legend.height), "white")
    figure.paste(canvas, (0, 0))
    figure.paste(legend, (0, canvas.height))
    return figure


def legend_strip(classes, ignore_index: int, width: int) -> Image.Image:
    """The class colours of the label tiles: a swatch and a name per class and one for ignore_index (the affinity
    labels' uncertain pixels), wrapped into lines of at most ``width`` pixels."""
    palette = np.asarray(voc_palette(), np.uint8).reshape(256, 3)
    entries = [(palette[k], name) for k, name in enumerate(classes)]
    entries.append((palette[ignore_index], f"{ignore_index}: uncertain / ignored"))
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    sizes = [16 + 4 + int(draw.textlength(name)) + 14 for _, name in entries]
    lines, line, used = [], [], 0
    for entry, size in zip(entries, sizes):
        if line and used + size > width:
            lines.append(line)
            line, used = [], 0
        line.append((entry, used))
        used += size
    lines.append(line)
    strip = Image.new("RGB", (width, 4 + 20 * len(lines)), "white")
    draw = ImageDraw.Draw(strip)
    for row, line in enumerate(lines):
        y = 4 + 20 * row
        for (colour, name), x in line:
            draw.rectangle([x + 2, y, x + 16, y + 14], fill=tuple(int(c) for c in colour), outline="black")
            draw.text((x + 20, y + 2), name, fill="black")
    return strip


def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--params", required=True, type=settings_arg("evaluate"), help="evaluation settings (JSON or YAML file)")
    parser.add_argument("--run-name", required=True)
    parser.add_argument("--cams", required=True)
    parser.add_argument("--affinity-labels", required=True)
    parser.add_argument("--pseudo-labels", required=True)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--train-split", required=True)
    parser.add_argument("--val-split", required=True)
    parser.add_argument("--score-split", required=True, help="list whose images' CAMs and pseudo-labels are scored (the config fills dataset.score_split)")
    parser.add_argument("--classifier", help="classifier weights (.h5), for its health record")
    parser.add_argument("--cooccurrence", default="[]",
                        help="JSON list of {class, context} pairs whose confusion ratio is measured (dataset.cooccurrence)")
    parser.add_argument("--summary", required=True, help="summary.json to write")
    parser.add_argument("--table", required=True, help="summary.md to write")
    parser.add_argument("--examples", required=True, help="examples.png to write")
    args = parser.parse_args(argv)
    log = setup_logging(args.log)
    record_manifests(args)
    dataset = load_params(args.dataset)
    layout = VOCLayout.from_config(dataset)
    params = load_params(args.params, "evaluate")
    with open_store(args.cams, LOCALISATION_STAGES, layout) as cams, \
            open_store(args.affinity_labels, "make_affinity_labels", layout) as labels, \
            open_store(args.pseudo_labels, "random_walk", layout) as pseudo, \
            open_store(args.predictions, "predict_segmentation", layout) as preds:
        score_split = args.score_split
        train_ids = json.loads(cams.attrs["ids"])
        if score_split != args.train_split:
            wanted = set(layout.ids(score_split))
            train_ids = [i for i in train_ids if i in wanted]
        train_ids = layout.scored_ids(train_ids)
        if args.val_split not in preds:
            raise SystemExit(f"{args.predictions}: has no predictions for split '{args.val_split}'.")
        val_ids = layout.scored_ids(json.loads(preds[args.val_split].attrs["ids"]))
        if not train_ids:
            raise SystemExit(f"{layout.root / layout.mask_dir}: no masks for the images to score "
                             f"({len(train_ids)} on {score_split}, {len(val_ids)} on {args.val_split}).")
        log.info("scoring %d images of %s and %d of %s (those with a mask)", len(train_ids),
                 score_split, len(val_ids), args.val_split)
        summary = {"run_name": args.run_name, "dataset": dataset.get("name", str(layout.root)),
                   "classes": list(layout.classes), **RUN_PROVENANCE}
        if not val_ids:  # said at planning too (rules/common.smk): the network is trained and predicts, unscored
            summary["not_scored"] = {"seg": f"no image of split {args.val_split} has a mask"}
            log.warning("no image of split %s has a mask in %s: the segmentation network is not scored (its "
                        "predictions are in %s)", args.val_split, layout.root / layout.mask_dir, args.predictions)
        summary["cam"] = dict(evaluate_cams(layout, cams, train_ids, params["cam_threshold"], params["threshold_curve"]),
                              split=score_split)
        summary["rw"] = dict(evaluate_labels(layout, pseudo, train_ids, "score CAM+RW"),
                             split=score_split)
        if val_ids:
            summary["seg"] = dict(evaluate_labels(layout, preds[args.val_split], val_ids, "score segmentation"),
                                  split=args.val_split, trained_with=str(preds.attrs.get("trained_with", "random_walk")))
        if params.get("crf") and val_ids:
            crf = dict(params["crf"])
            gt_prob = crf.pop("gt_prob")
            val = preds[args.val_split]
            summary["seg_crf"] = dict(evaluate_labels(
                layout, None, val_ids, "score segmentation + CRF",
                labels_of=lambda i: crf_labels(layout.image(i), read_array(val, i), gt_prob, **crf)),
                split=args.val_split)
        if args.train_split in preds:
            summary["seg_train"] = dict(evaluate_labels(layout, preds[args.train_split], train_ids, "score seg train"),
                                        split=args.train_split)
        summary["affinity_labels"] = affinity_label_quality(layout, labels, train_ids)
        threshold = params["cam_threshold"]

        def cam_of(image_id):
            return cam_labels(read_array(cams, image_id).astype(np.float32),
                              [int(c) for c in cams[image_id].attrs["classes"]], threshold)

        summary["cooccurrence"] = cooccurrence_ratios(layout, json.loads(args.cooccurrence), {
            "cam": (train_ids, cam_of), "rw": (train_ids, lambda i: read_array(pseudo, i)),
            **({"seg": (val_ids, lambda i: read_array(preds[args.val_split], i))} if val_ids else {})})
        stores = {}
        if args.classifier:
            with open_store(args.classifier, "train_classifier", layout) as weights:
                stores["train_classifier"] = dict(weights.attrs)
        stores.update(extract_cams=dict(cams.attrs), make_affinity_labels=dict(labels.attrs),
                      random_walk=dict(pseudo.attrs), train_segmentation=dict(preds.attrs))
        summary["health"] = health_section(stores)
        shown = spread_examples([(i, [int(c) for c in cams[i].attrs["classes"]]) for i in train_ids],
                                params["examples"],
                                [layout.classes.index(w["class"]) for w in summary["health"]["warnings"]
                                 if w.get("class") in layout.classes])
        figure = None
        if shown and args.train_split in preds:
            figure = examples_figure(layout, shown, cams, labels, pseudo, preds[args.train_split])
    with atomic_path(args.summary) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2) + "\n")
    with atomic_path(args.table) as tmp:
        Path(tmp).write_text(markdown_table(summary) + cooccurrence_markdown(summary["cooccurrence"])
                             + health_markdown(summary["health"]))
    with atomic_path(args.examples) as tmp:
        (figure or Image.new("RGB", (64, 16), "white")).save(tmp, format="PNG")
    log.info("CAM %.2f | CAM+RW %.2f | segmentation %s mIoU%s", summary["cam"]["miou"], summary["rw"]["miou"],
             f"{summary['seg']['miou']:.2f}" if "seg" in summary else "not scored",
             f" (+ CRF {summary['seg_crf']['miou']:.2f})" if "seg_crf" in summary else "")
    warnings = summary["health"]["warnings"]
    for item in warnings:
        log.warning("health: %s", item["message"])
    if warnings and params["strict"]:
        log.error("evaluate.strict: %d health check(s) failed (listed above; the summary was not kept); the run "
                  "fails", len(warnings))
        return 1
    log.info("health: %s", f"{len(warnings)} warning(s), see the Health section of {args.table}" if warnings
             else "every check passed")


if __name__ == "__main__":
    sys.exit(run_stage(main))
