"""Health checks that need no ground truth: each stage measures its own output, stores the figures in its
artifact (attribute ``health``, JSON) and logs a WARNING for each check that fails; ``evaluate`` gathers
them into the "Health" section of the summary.

The thresholds are fixed, documented constants, the same for every dataset and not settings: a check must
not move with the settings it judges.

- classifier: per class, precision and recall of the image-level labels (logit > 0) on train and val,
  each at least ``MIN_PRECISION_RECALL``;
- CAMs and affinity labels: per class, the share of the images labelled with it in which it gets a confident
  pixel (CAM: it wins argmax([CAM_THRESHOLD; M]) somewhere; affinity labels: some pixel carries its
  label), at least ``MIN_CONFIDENT_SHARE``;
- random walk: per class, **survival**: the share of (image, class) pairs in which the class keeps at least
  ``SURVIVAL_SHARE`` of the pixels the CAM gives it at CAM_THRESHOLD, at least ``MIN_SURVIVAL``;
- random walk: per class, **growth**: the share of the images labelled with the class in which the walk gives it
  more than ``GROWTH_FACTOR`` times the pixels the CAM gives it at CAM_THRESHOLD (a figure, no warning: growing a
  small discriminative region to the object is the walk's purpose), and **confident background**: the share of
  the walk's pixels of the class that the CAM called background and the affinity labels call confident
  background, at most ``MAX_CONFIDENT_BACKGROUND``: a walk that spreads a class over the pixels AffinityNet was
  taught to separate from it takes IoU off the CAM instead of adding to it;
- CAMs and random walk: per class, **whole image**: the share of the images labelled with it in which the class
  covers at least ``WHOLE_IMAGE_SHARE`` of the image (CAM: it wins argmax([CAM_THRESHOLD; M]) there; walk: its
  pseudo-label), at most ``MAX_WHOLE_IMAGE``: an object class spread over its whole image in most of its images
  has been learnt from its context (the map no longer separates object from background);
- segmentation: per class, the share of train pixels predicted as the class against the pseudo-labels'
  share, at least ``MIN_PREDICTED_RATIO`` of it; an object class never predicted on val.
"""

from __future__ import annotations

import json
import logging

import numpy as np

CAM_THRESHOLD = 0.2  # psa's fixed background score: what "the CAM's pixels of a class" means here
MIN_PRECISION_RECALL = 0.5
MIN_CONFIDENT_SHARE = 0.8
SURVIVAL_SHARE = 0.1
MIN_SURVIVAL = 0.8
MIN_PREDICTED_RATIO = 0.25
WHOLE_IMAGE_SHARE = 0.9  # a class on 90 % of an image's pixels covers the image
MAX_WHOLE_IMAGE = 0.5  # objects that fill the frame are a minority of a class's photos, never most of them
GROWTH_FACTOR = 2.0  # a class "grows" in an image when the walk gives it more than twice the CAM's pixels
# At most this share of a class's walked pixels may be CAM background that the affinity labels call confident
# background. Measured on two datasets: horse 0.012 on horse-street (the cpu_photos preset's recorded run); 0.018-0.027
# per class on the built-in set (the default config); a walk on affinities of 1 everywhere puts a class on all of
# its image.
MAX_CONFIDENT_BACKGROUND = 0.2

# The per-class figures each stage's checks read, by stage: an artifact whose record lacks one was made before
# that check existed, and the summary lists the check as not run instead of passing it.
STAGE_FIGURES = {
    "extract_cams": ("confident_share", "whole_image_share"),
    "make_affinity_labels": ("confident_share",),
    "random_walk": ("survival", "whole_image_share", "growth", "confident_background"),
}

log = logging.getLogger("wsss_steps")


def precision_recall(predicted: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """precision = TP / (TP + FP), recall = TP / (TP + FN) per class (column) of (N, C) boolean arrays; NaN where undefined."""
    predicted, target = np.asarray(predicted, bool), np.asarray(target, bool)
    tp = (predicted & target).sum(axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / predicted.sum(axis=0), tp / target.sum(axis=0)


def class_pixels(labels: np.ndarray, classes) -> dict[int, int]:
    """Number of pixels of each of ``classes`` in a label map."""
    return {int(c): int((labels == c).sum()) for c in classes}


def survived(walk_pixels: int, cam_pixels: int, share: float = SURVIVAL_SHARE) -> bool:
    """A class survives the walk when walk_pixels >= share x cam_pixels."""
    return walk_pixels >= share * cam_pixels


def covers_image(class_pixels: int, image_pixels: int, share: float = WHOLE_IMAGE_SHARE) -> bool:
    """A class covers its image when class_pixels >= share x image_pixels."""
    return class_pixels >= share * image_pixels


def walk_growth(cam_labels: np.ndarray, walk_labels: np.ndarray, affinity_labels: np.ndarray | None, classes) -> dict:
    """Per class c: {"walk": #(walk = c), "moved": #(walk = c, cam = 0), "onto_background": #(walk = c, cam = 0,
    affinity label = 0)} (onto_background None without affinity labels)."""
    moved_mask = cam_labels == 0
    confident_bg = None if affinity_labels is None else moved_mask & (affinity_labels == 0)
    out = {}
    for c in classes:
        walked = walk_labels == c
        out[int(c)] = {"walk": int(walked.sum()), "moved": int((walked & moved_mask).sum()),
                       "onto_background": None if confident_bg is None else int((walked & confident_bg).sum())}
    return out


def grew(walk_pixels: int, cam_pixels: int, factor: float = GROWTH_FACTOR) -> bool:
    """A class grows in an image when walk_pixels > factor x cam_pixels (a class the CAM missed grows from any pixel)."""
    return walk_pixels > factor * cam_pixels


class PixelShare:
    """Per class, sums over images of a part and a whole in pixels: share = part / whole."""

    def __init__(self):
        self.part, self.whole, self.images = {}, {}, {}

    def add(self, cls: int, part: int, whole: int):
        self.part[cls] = self.part.get(cls, 0) + part
        self.whole[cls] = self.whole.get(cls, 0) + whole
        self.images[cls] = self.images.get(cls, 0) + 1

    def rates(self, names) -> dict:
        """{class name: {"rate": part / whole (0 for an empty whole), "images": images}} for the classes seen."""
        return {names[c]: {"rate": round(self.part[c] / self.whole[c], 4) if self.whole[c] else 0.0,
                           "images": self.images[c]} for c in sorted(self.part)}


def confident_background_warnings(rates: dict) -> list[dict]:
    """Warnings for classes whose walked pixels lie on CAM background the affinity labels call confident background
    in more than MAX_CONFIDENT_BACKGROUND of them."""
    return high_rates("random_walk", "confident_background", rates, MAX_CONFIDENT_BACKGROUND,
                      "random_walk.beta / random_walk.t (the walk crosses the learnt boundaries, AffinityNet's "
                      "or IRN's), random_walk.bg_threshold, or the affinities (affinity.steps, affinity_labels.alpha_high)",
                      "the walk spreads the class over what the affinity labels call confident background")


def tally_localisation(labels: np.ndarray, classes, confident: "Tally", whole: "Tally"):
    """Add one image's localisation (argmax([CAM_THRESHOLD; M])) to the tallies: per labelled class, whether it
    gets a pixel, and whether it covers the image."""
    for cls, count in class_pixels(labels, classes).items():
        confident.add(cls, count > 0)
        whole.add(cls, covers_image(count, labels.size))


class Tally:
    """Per-class counts of (image, class) pairs and of those passing a check: rate = passed / pairs."""

    def __init__(self):
        self.pairs, self.passed = {}, {}

    def add(self, cls: int, ok: bool):
        self.pairs[cls] = self.pairs.get(cls, 0) + 1
        self.passed[cls] = self.passed.get(cls, 0) + int(bool(ok))

    def rates(self, names) -> dict:
        """{class name: {"rate": passed / pairs, "images": pairs}} for the classes seen."""
        return {names[c]: {"rate": round(self.passed[c] / self.pairs[c], 4), "images": self.pairs[c]}
                for c in sorted(self.pairs)}


def warning(stage: str, check: str, cls: str, value: float, threshold: float, setting: str, text: str) -> dict:
    """One failed check, as stored and shown: the stage, the check, the class, the figures and the likely setting."""
    return {"stage": stage, "check": check, "class": cls, "value": round(float(value), 4), "threshold": threshold,
            "setting": setting, "message": f"{stage}: {text} (class '{cls}': {value:.2f}, threshold {threshold}); "
                                           f"most likely at fault: {setting}"}


def low_rates(stage: str, check: str, rates: dict, threshold: float, setting: str, what: str) -> list[dict]:
    """A warning for each class of ``rates`` ({name: {"rate": r, ...}}) whose rate is below ``threshold``."""
    return [warning(stage, check, name, row["rate"], threshold, setting, what)
            for name, row in rates.items() if row["rate"] < threshold]


def high_rates(stage: str, check: str, rates: dict, threshold: float, setting: str, what: str) -> list[dict]:
    """A warning for each class of ``rates`` ({name: {"rate": r, ...}}) whose rate is above ``threshold``."""
    return [warning(stage, check, name, row["rate"], threshold, setting, what)
            for name, row in rates.items() if row["rate"] > threshold]


def whole_image_warnings(stage: str, rates: dict, setting: str) -> list[dict]:
    """Warnings for classes that cover their whole image in more than MAX_WHOLE_IMAGE of their images."""
    return high_rates(stage, "whole_image", rates, MAX_WHOLE_IMAGE, setting,
                      "the class covers the whole image in most of its images (spread onto its context)")


def classifier_warnings(figures: dict, train_split: str | None = None) -> list[dict]:
    """Warnings for classes whose image-level precision or recall (train or val) is below MIN_PRECISION_RECALL; a
    class that no image of ``train_split`` contains gets that one warning instead (no setting can cure it)."""
    out = []
    unseen = {name for name, row in figures.get(train_split, {}).items() if row.get("images") == 0}
    for name in sorted(unseen):
        out.append({"stage": "train_classifier", "check": "no_training_image", "class": name, "value": 0.0,
                    "threshold": 1, "setting": "the training split (dataset.train_split) or dataset.classes",
                    "message": f"train_classifier: no training image contains class '{name}', so the classifier "
                               f"cannot learn it; add images of it to the training split or take it out of "
                               f"dataset.classes"})
    for split, rows in figures.items():
        for name, row in rows.items():
            if name in unseen:
                continue
            for key in ("precision", "recall"):
                value = row.get(key)
                if value is not None and value < MIN_PRECISION_RECALL:
                    out.append(warning("train_classifier", f"{key}_{split}", name, value, MIN_PRECISION_RECALL,
                                       "classifier.lr / classifier.steps (or too few images of the class)",
                                       f"image-level {key} on {split} is low"))
    return out


def unlearnt_classes(rows: dict) -> list[str]:
    """The classes of one split's classifier figures ({name: {precision, recall, images}}) that have images but
    precision or recall below MIN_PRECISION_RECALL (a class never predicted has no precision and recall 0)."""
    return [name for name, row in rows.items() if row.get("images") and
            any(row.get(key) is None or row[key] < MIN_PRECISION_RECALL for key in ("precision", "recall"))]


def describe_classes(rows: dict, names) -> str:
    """"class 'cat' (precision 0.40, recall 0.10, 12 images), ..." for ``names`` of one split's classifier figures."""
    def figure(value):
        return "none" if value is None else f"{value:.2f}"

    return ", ".join(f"class '{name}' (precision {figure(rows[name].get('precision'))}, recall "
                     f"{figure(rows[name].get('recall'))}, {rows[name].get('images')} images)" for name in names)


class HealthStop(RuntimeError):
    """A failed health check that health.stop_on makes stop the run: one sentence naming the class and the remedy."""


def segmentation_warnings(train_ratio: dict, val_predicted: dict) -> list[dict]:
    """Warnings for classes predicted on train far less than the pseudo-labels give them, or never on val."""
    setting = "segmentation.lr / segmentation.steps (the net learnt the majority class)"
    out = low_rates("train_segmentation", "predicted_vs_pseudo", train_ratio, MIN_PREDICTED_RATIO, setting,
                    "predicts the class on train far less than its pseudo-labels do")
    for name, pixels in val_predicted.items():
        if pixels == 0:
            out.append(warning("train_segmentation", "never_predicted_val", name, 0.0, 1, setting,
                               "never predicts the class on val"))
    return out


def record(store_attrs, figures: dict, warnings: list[dict]):
    """Store a stage's health figures and warnings in its artifact's attributes and log each warning."""
    for item in warnings:
        log.warning("health: %s", item["message"])
    if not warnings:
        log.info("health: every check passed")
    store_attrs["health"] = json.dumps({"figures": figures, "warnings": warnings}, sort_keys=True)


def read(store_attrs) -> dict | None:
    """The health record of an artifact (None for one written before the checks existed)."""
    text = store_attrs.get("health")
    return None if text is None else json.loads(text)


def missing_figures(stage: str, record: dict) -> list[str]:
    """The figures of ``STAGE_FIGURES[stage]`` a stage's health record lacks: its checks that never ran."""
    return [name for name in STAGE_FIGURES.get(stage, ()) if name not in record["figures"]]
