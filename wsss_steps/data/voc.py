"""Reading a PASCAL-VOC-layout dataset: id lists, images, masks, image-level labels."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from PIL import Image

from ..lib.config import check_background_first
from .label_png import load_label_png

# Characters that text editors and other tools put into list files without showing them (byte-order mark, zero-width
# spaces and joiners, soft hyphen): never part of an image id, dropped with the surrounding whitespace.
INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060\u00ad"


def _loose(name: str) -> str:
    """A file stem or id as compared for near matches: lower case, without invisible characters and outer spaces."""
    return "".join(c for c in name if c not in INVISIBLE).strip().casefold()


class DatasetError(ValueError):
    """The dataset on disk does not match what the config says."""


def unreadable(path, what: str, exc: Exception) -> DatasetError:
    """The error for a file that cannot be decoded, naming it, the reason and the fix."""
    return DatasetError(f"{path}: the {what} cannot be read ({exc}); replace the file or take its id out of the "
                        f"split lists.")


@dataclass(frozen=True)
class VOCLayout:
    """Where the pieces of a VOC-layout dataset live, and how its image-level labels are read.

    Image-level labels come, in this order of preference, from ``labels_file`` (when set), from
    ``annotation_dir/<id>.xml`` object names (when that folder exists), or from the mask.
    """

    root: Path
    classes: tuple[str, ...]  # index 0 is background
    ignore_index: int = 255
    image_dir: str = "JPEGImages"
    mask_dir: str = "SegmentationClass"
    list_dir: str = "ImageSets/Segmentation"
    annotation_dir: str = "Annotations"
    labels_file: str | None = None
    saliency_dir: str = "SaliencyMaps"
    context_dir: str = "ContextMasks"
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "classes", tuple(self.classes))

    @classmethod
    def from_config(cls, dataset: dict) -> "VOCLayout":
        optional = {key: dataset[key] for key in ("image_dir", "mask_dir", "list_dir", "annotation_dir", "labels_file",
                                                          "saliency_dir", "context_dir")
                    if dataset.get(key) is not None}
        return cls(root=Path(dataset["root"]), classes=tuple(dataset["classes"]),
                   ignore_index=int(dataset.get("ignore_index", 255)), **optional)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def list_file(self, split: str) -> Path:
        return self.root / self.list_dir / f"{split}.txt"

    def image_path(self, image_id: str) -> Path:
        return self.root / self.image_dir / f"{image_id}.jpg"

    def mask_path(self, image_id: str) -> Path:
        return self.root / self.mask_dir / f"{image_id}.png"

    def annotation_path(self, image_id: str) -> Path:
        return self.root / self.annotation_dir / f"{image_id}.xml"

    def has_mask(self, image_id: str) -> bool:
        return self.mask_path(image_id).is_file()

    def _listing(self, folder: str) -> dict[str, list[str]]:
        """The files of ``root/folder`` by their name's stem in lower case, without invisible characters (cached)."""
        key = ("listing", folder)
        if key not in self._cache:
            table = {}
            directory = self.root / folder
            for name in sorted(os.listdir(directory)) if directory.is_dir() else []:
                stem = name.rsplit(".", 1)[0] if "." in name else name
                table.setdefault(_loose(stem), []).append(name)
            self._cache[key] = table
        return self._cache[key]

    def near_matches(self, folder: str, image_id: str) -> list[str]:
        """Files of ``root/folder`` named like ``image_id`` but for the case, the extension or invisible characters."""
        return self._listing(folder).get(_loose(image_id), [])

    def missing_image(self, image_id: str, listed_in=None) -> DatasetError:
        """The error for a listed image that is not at <image_dir>/<id>.jpg: what was found instead and what to do."""
        path = self.image_path(image_id)
        where = f"listed in {listed_in}" if listed_in else "listed in a split file"
        found = self.near_matches(self.image_dir, image_id)
        if not found:
            return DatasetError(f"{path}: image {where} is missing.")
        return DatasetError(f"{path}: image {where} is missing, but {self.image_dir} holds {found[0]!r}; images are "
                            f"read as <id>.jpg with the id as the list spells it: rename the file to {image_id}.jpg, "
                            f"or spell the id in the list as the file does.")

    def check_folders(self, need_masks: bool = False):
        """Fail with one sentence naming the first missing piece: root, image folder, list folder (mask folder)."""
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset root not found (dataset.root in the config).")
        needed = [self.image_dir, self.list_dir] + ([self.mask_dir] if need_masks else [])
        for sub in needed:
            if not (self.root / sub).is_dir():
                raise DatasetError(f"{self.root / sub}: folder not found under the dataset root.")
        if self.labels_file is not None and not self._labels_path().is_file():
            raise DatasetError(f"{self._labels_path()}: labels file not found (dataset.labels_file).")

    def ids(self, split: str) -> list[str]:
        path = self.list_file(split)
        if not path.is_file():
            raise DatasetError(f"{path}: split list not found (dataset root {self.root}).")
        ids, seen = [], {}
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            image_id = line.strip().strip(INVISIBLE).strip()  # Windows line ends go with splitlines and strip
            if not image_id:
                continue
            if len(image_id.split()) > 1:
                raise DatasetError(f"{path}, line {number}: '{image_id}' is not one image id (one id per line, "
                                   f"without spaces); fix the list.")
            if "/" in image_id or "\\" in image_id or image_id.startswith("."):
                raise DatasetError(f"{path}, line {number}: '{image_id}' names a file outside {self.image_dir}; "
                                   f"list plain ids (file names without folder and extension).")
            if image_id in seen:
                raise DatasetError(f"{path}, line {number}: id '{image_id}' is listed twice (first on line "
                                   f"{seen[image_id]}); remove the repeat.")
            seen[image_id] = number
            ids.append(image_id)
        if not ids:
            raise DatasetError(f"{path}: the split list is empty.")
        return ids

    def image(self, image_id: str) -> np.ndarray:
        """RGB uint8 (H, W, 3)."""
        path = self.image_path(image_id)
        if not path.is_file():
            raise self.missing_image(image_id)
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise unreadable(path, "image", exc) from None

    def saliency(self, image_id: str) -> np.ndarray:
        """The image's saliency map, uint8 (H, W), 0 = background ... 255 = salient (for saliency-guided methods)."""
        path = self.root / self.saliency_dir / f"{image_id}.png"
        if not path.is_file():
            raise DatasetError(f"{path}: saliency map not found; this method needs one PNG per training image in "
                               f"dataset.saliency_dir (now '{self.saliency_dir}').")
        try:
            with Image.open(path) as image:
                saliency = np.asarray(image.convert("L"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise unreadable(path, "saliency map", exc) from None
        if saliency.shape != self.image_size(image_id):
            raise DatasetError(f"{path}: saliency map is {saliency.shape[1]} x {saliency.shape[0]}, its image "
                               f"{self.image_size(image_id)[1]} x {self.image_size(image_id)[0]}; they must match.")
        return saliency

    def context(self, image_id: str, name: str) -> np.ndarray:
        """Boolean (H, W) region of context ``name``: a class of the dataset (its mask pixels) or a folder of
        ``context_dir`` (<context_dir>/<name>/<id>.png, non-zero pixels), e.g. water for boats."""
        if name in self.classes:
            return self.mask(image_id) == self.classes.index(name)
        path = self.root / self.context_dir / name / f"{image_id}.png"
        if not path.is_file():
            raise DatasetError(f"{path}: context mask not found; dataset.cooccurrence names '{name}', which is neither "
                               f"a class nor a folder of dataset.context_dir (now '{self.context_dir}'); a built-in dataset "
                               f"generated before context masks existed is rewritten by snakemake --forcerun make_dataset.")
        with Image.open(path) as image:
            return np.asarray(image.convert("L")) > 0

    def image_size(self, image_id: str) -> tuple[int, int]:
        """(H, W) from the image header, without decoding the pixels."""
        path = self.image_path(image_id)
        if not path.is_file():
            raise self.missing_image(image_id)
        try:
            with Image.open(path) as image:
                return image.height, image.width
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise unreadable(path, "image", exc) from None

    def check_image(self, image_id: str):
        """Decode the whole image (JPEGs at 1/8 scale, which still reads every byte), naming it if it is broken."""
        path = self.image_path(image_id)
        if not path.is_file():
            raise self.missing_image(image_id)
        try:
            with Image.open(path) as image:
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise unreadable(path, "image", exc) from None

    def mask(self, image_id: str) -> np.ndarray:
        """Class-index mask (H, W) uint8 with ``ignore_index`` on void pixels."""
        path = self.mask_path(image_id)
        if not path.is_file():
            raise DatasetError(f"{path}: segmentation mask is missing.")
        try:
            return load_label_png(path)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise unreadable(path, "mask", exc) from None

    def check_mask(self, image_id: str) -> np.ndarray:
        """The mask, checked: same size as its image, every value a class index or the ignore index."""
        mask = self.mask(image_id)
        height, width = self.image_size(image_id)
        if mask.shape != (height, width):
            raise DatasetError(f"{self.mask_path(image_id)}: mask is {mask.shape[1]}x{mask.shape[0]} pixels but its "
                               f"image {self.image_path(image_id)} is {width}x{height}.")
        bad = [int(v) for v in np.unique(mask) if v != self.ignore_index and v >= self.num_classes]
        if bad:
            raise DatasetError(f"{self.mask_path(image_id)}: mask value {bad[0]} is neither a class index "
                               f"(0-{self.num_classes - 1}) nor the ignore index {self.ignore_index}.")
        return mask

    def _labels_path(self) -> Path:
        path = Path(self.labels_file)
        return path if path.is_absolute() else self.root / path

    def _class_index(self, name: str, source) -> int:
        if name not in self.classes:
            raise DatasetError(f"{source}: unknown class name '{name}'; the config lists {list(self.classes)}.")
        return self.classes.index(name)

    def _labels_file_table(self) -> dict[str, list[int]]:
        """id -> classes from ``labels_file``: JSON {id: [names or indices]} or text lines 'id name name ...'."""
        if "labels_file" not in self._cache:
            path = self._labels_path()
            if not path.is_file():
                raise DatasetError(f"{path}: labels file not found (dataset.labels_file).")
            if path.suffix == ".json":
                raw = json.loads(path.read_text())
            else:
                raw = {parts[0]: parts[1:] for parts in (line.split() for line in path.read_text().splitlines()) if parts}
            table = {}
            for image_id, names in raw.items():
                table[image_id] = sorted({n if isinstance(n, int) else self._class_index(n, path) for n in names} - {0})
                bad = [c for c in table[image_id] if not 0 < c < self.num_classes]
                if bad:
                    raise DatasetError(f"{path}: image {image_id} has class index {bad[0]}, outside 1-{self.num_classes - 1}.")
            self._cache["labels_file"] = table
        return self._cache["labels_file"]

    def labels_from_xml(self, image_id: str) -> list[int]:
        """Foreground classes named by the ``<object><name>`` entries of the image's VOC annotation."""
        path = self.annotation_path(image_id)
        try:
            names = [obj.findtext("name", "").strip() for obj in ElementTree.parse(path).getroot().iter("object")]
        except ElementTree.ParseError as exc:
            raise DatasetError(f"{path}: not a readable annotation XML ({exc}).") from None
        return sorted({self._class_index(name, path) for name in names} - {0})

    def labels_from_mask(self, image_id: str) -> list[int]:
        """Foreground classes present in the image's mask (0 and the ignore index excluded)."""
        return [int(v) for v in np.unique(self.check_mask(image_id)) if 0 < v < self.num_classes]

    def label_source(self) -> str:
        """Where image-level labels come from: 'labels_file', 'annotations' or 'masks'."""
        if self.labels_file is not None:
            return "labels_file"
        return "annotations" if (self.root / self.annotation_dir).is_dir() else "masks"

    def image_labels(self, image_id: str) -> list[int]:
        """Foreground class indices present in the image, sorted, from the preferred label source."""
        source = self.label_source()
        if source == "labels_file":
            table = self._labels_file_table()
            if image_id not in table:
                raise DatasetError(f"{self._labels_path()}: has no labels for image {image_id}.")
            return table[image_id]
        if source == "annotations" and self.annotation_path(image_id).is_file():
            return self.labels_from_xml(image_id)
        if not self.has_mask(image_id):
            raise DatasetError(f"{self.annotation_path(image_id)}: no annotation and no mask "
                               f"({self.mask_path(image_id)}) to read the image-level labels of {image_id} from.")
        return self.labels_from_mask(image_id)

    def has_labels(self, image_id: str) -> bool:
        """Whether the preferred label source gives the image's image-level labels (a val image may have none)."""
        source = self.label_source()
        if source == "labels_file":
            return image_id in self._labels_file_table()
        return self.has_mask(image_id) or (source == "annotations" and self.annotation_path(image_id).is_file())

    def labelled_table(self, split: str) -> tuple[dict[str, list[int]], list[str]]:
        """(id -> classes for the images of a split that have image-level labels, the ids that have none)."""
        ids = self.ids(split)
        unlabelled = [i for i in ids if not self.has_labels(i)]
        skip = set(unlabelled)
        return {i: self.image_labels(i) for i in ids if i not in skip}, unlabelled

    def classes_without_images(self, table: dict[str, list[int]]) -> list[str]:
        """The foreground classes that no image of ``table`` (id -> classes) contains."""
        present = {c for classes in table.values() for c in classes}
        return [name for index, name in enumerate(self.classes) if index > 0 and index not in present]

    def label_table(self, split: str) -> dict[str, list[int]]:
        """image id -> present foreground classes, for every image of a split, each image checked to exist."""
        table = {}
        for image_id in self.ids(split):
            if not self.image_path(image_id).is_file():
                raise self.missing_image(image_id, self.list_file(split))
            table[image_id] = self.image_labels(image_id)
        return table

    def check(self, label_splits, mask_splits) -> dict:
        """Check everything a run will read, before any work: folders, list files, images, labels, and masks.

        Every image of ``label_splits`` needs an image and image-level labels; every image of
        ``mask_splits`` that has a mask gets it checked against its image. Raises DatasetError naming
        the first bad file; returns counts per split.
        """
        check_background_first(self.classes)
        self.check_folders()
        report = {}
        for split in dict.fromkeys(label_splits):
            table = self.label_table(split)
            report[split] = {"images": len(table), "with_foreground": sum(bool(v) for v in table.values())}
            if self.classes_without_images(table):
                report[split]["classes_without_images"] = self.classes_without_images(table)
        for split in dict.fromkeys(mask_splits):
            ids = self.ids(split)
            report.setdefault(split, {"images": len(ids)})["with_mask"] = len(self.scored_ids(ids))
        for image_id in dict.fromkeys(i for split in dict.fromkeys([*label_splits, *mask_splits])
                                      for i in self.ids(split)):
            self.check_image(image_id)  # a truncated or broken image is named here, not deep inside training
        return report

    def scored_ids(self, ids) -> list[str]:
        """The ids that have a mask to be scored against, each mask checked against its image.

        An id without <mask_dir>/<id>.png is not scored, unless a file named like it (other case, other extension,
        invisible characters) is there: that is a mask the user meant, and the run stops naming it.
        """
        scored = [i for i in ids if self.has_mask(i)]
        for image_id in ids:
            if image_id not in scored and self.near_matches(self.mask_dir, image_id):
                found = self.near_matches(self.mask_dir, image_id)[0]
                raise DatasetError(f"{self.mask_path(image_id)}: mask not found, but {self.mask_dir} holds {found!r}; "
                                   f"masks are read as <id>.png with the id as the list spells it: rename the file to "
                                   f"{image_id}.png (an 8-bit PNG of class indices), or the image is not scored.")
        for image_id in scored:
            self.check_mask(image_id)
        return scored
