"""Artifacts as data: HDF5 stores with provenance and model weights in HDF5 (label PNGs: data.label_png).

Every writer writes to a temporary name beside the target and renames it on success,
so a killed job never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from .. import __version__
from .files import atomic_path, require_space, space_errno


class ArtifactError(RuntimeError):
    """An input artifact is missing, unreadable or made for something else."""


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


# Attributes every artifact this process writes records, set at start-up (runtime.record_manifests): the digest of
# the dataset manifests the workflow planned the job with.
RUN_PROVENANCE: dict = {}


def provenance(stage: str, params: dict, seed: int | None, inputs: list) -> dict:
    """Attributes recording what made an artifact."""
    return {
        **RUN_PROVENANCE,
        "stage": stage,
        "params": json.dumps(params, sort_keys=True, default=str),
        "seed": -1 if seed is None else int(seed),
        "package_version": __version__,
        "inputs": json.dumps({str(p): file_sha256(p) for p in inputs if Path(p).is_file()}, sort_keys=True),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@contextlib.contextmanager
def _quiet_failed_writes():
    """Keep HDF5's failed writes out of stderr while a store is written.

    HDF5 writes a dataset's chunks when h5py frees it, where a failure can only be printed ('Exception ignored ...')
    and the stage would go on computing; put_array writes each dataset's chunks itself so that the first failure
    is raised, and the repeats of that failure that h5py reports while it frees objects are dropped here.
    """
    previous = sys.unraisablehook

    def hook(unraisable):
        if space_errno(unraisable.exc_value) is None:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


@contextlib.contextmanager
def write_store(path, attrs: dict):
    """Open a new HDF5 store for writing under a temporary name, with provenance ``attrs``.

    A write that fails for lack of space stops the stage at once with one sentence (files.DiskFull) naming ``path``;
    the unfinished file is removed.
    """
    with atomic_path(path) as tmp, _quiet_failed_writes():
        store = h5py.File(tmp, "w")
        try:
            for key, value in attrs.items():
                store.attrs[key] = value
            yield store
            store.attrs["datasets"] = count_datasets(store)
        except BaseException:
            # the error that stopped the block is the one to report: a failed close only repeats it
            with contextlib.suppress(Exception), contextlib.redirect_stderr(io.StringIO()):
                store.close()
            raise
        store.close()


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes: what verify_store compares against."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def count_datasets(store) -> int:
    found = []
    store.visititems(lambda _name, obj: found.append(1) if isinstance(obj, h5py.Dataset) else None)
    return len(found)


def verify_store(path) -> list[str]:
    """What no longer matches what was written: every dataset's SHA-256 and the number of datasets (empty if intact).

    Raises ArtifactError when the file cannot be opened at all.
    """
    problems = []
    with open_store(path) as store:
        expected = store.attrs.get("datasets")

        def check(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            try:
                data = obj[()]
            except (OSError, ValueError) as exc:
                problems.append(f"dataset '{name}' cannot be read ({exc})")
                return
            recorded = obj.attrs.get("sha256")
            if recorded is not None and array_sha256(np.asarray(data)) != recorded:
                problems.append(f"dataset '{name}' differs from what was written")

        store.visititems(check)
        if expected is not None and count_datasets(store) != int(expected):
            problems.append(f"holds {count_datasets(store)} datasets, {int(expected)} were written")
    return problems


PLANE_CHUNK_BYTES = 1 << 20
SPACE_MARGIN = 1 << 16  # bytes kept free beyond an array's own for HDF5's metadata


def put_array(store, name: str, array: np.ndarray, **attrs):
    """Write one chunked, gzip-compressed dataset with attributes.

    Arrays are read whole, so each 2-D plane (one class map of a CAM set, one label map) is one
    chunk when it takes at most 1 MiB: fewer chunks decode faster (about 1.2x for VOC-sized float16
    CAMs) and compress a little better than h5py's automatic ~100 x 100 chunks, used for larger planes.
    """
    kwargs = {}
    if array.ndim >= 2 and array.size > 0:
        plane = array.shape[-2] * array.shape[-1] * array.itemsize <= PLANE_CHUNK_BYTES
        chunks = (1,) * (array.ndim - 2) + array.shape[-2:] if plane else True
        kwargs = dict(chunks=chunks, compression="gzip", compression_opts=4, shuffle=True)
    return new_dataset(store, name, array, attrs, **kwargs)


def new_dataset(group, name: str, array: np.ndarray, attrs: dict | None = None, **kwargs):
    """Create one dataset with its SHA-256 and ``attrs``, written to disk before this returns.

    A full disk stops the stage here, at the first array that does not fit, with the space it needs: its bytes
    uncompressed + 64 KiB must be free. HDF5 would otherwise report the failed write only when h5py frees the
    dataset, where the error cannot stop the stage and is printed once per object while the stage computes on.
    """
    array = np.asarray(array)
    require_space(group.file.filename, array.nbytes + SPACE_MARGIN)
    dset = group.create_dataset(name, data=array, **kwargs)
    dset.attrs["sha256"] = array_sha256(array)
    for key, value in (attrs or {}).items():
        dset.attrs[key] = value
    try:
        dset.id.flush()  # a failed write that the check above could not foresee (a file size limit) raises here
    except Exception:
        with contextlib.redirect_stderr(io.StringIO()):  # h5py prints the same failure again as it frees the dataset
            del dset  # while its file is open: HDF5 crashes on a dataset freed after a failed close of its file
        raise
    return dset


def check_classes(path, attrs, classes, remedy: str, verb: str = "made") -> None:
    """Refuse an artifact whose ``classes`` attribute differs from ``classes``, naming both and the ``remedy``."""
    made = [str(c) for c in attrs.get("classes", [])]
    if made and made != [str(c) for c in classes]:
        raise ArtifactError(f"{path}: was {verb} for the classes {made} but the config lists {list(classes)}; {remedy}.")


def check_made_for(path, attrs, layout) -> None:
    """Refuse an artifact made for another class list or dataset root than ``layout``'s, naming both."""
    check_classes(path, attrs, layout.classes, rebuild_hint(attrs.get("stage")))
    made_root = attrs.get("dataset_root")
    if made_root is not None and Path(str(made_root)).resolve() != Path(layout.root).resolve():
        raise ArtifactError(f"{path}: was made from the dataset at {made_root} but the config points at "
                            f"{layout.root}; {rebuild_hint(attrs.get('stage'))}.")


RULE_OF_STAGE = {"predict_segmentation": "train_segmentation"}  # stages written by a rule of another name
# The rule that writes each artifact of a run (file names as in rules/*.smk), for files too broken to say so.
RULE_OF_FILE = {"classifier.weights.h5": "train_classifier", "cams_*.h5": "extract_cams",
                "affinity_labels_*.h5": "make_affinity_labels", "affinity.weights.h5": "train_affinity",
                "pseudo_labels_*.h5": "random_walk", "segmentation.weights.h5": "train_segmentation",
                "segmentation_predictions.h5": "train_segmentation"}


def rule_of_file(path) -> str | None:
    name = Path(path).name
    return next((rule for pattern, rule in RULE_OF_FILE.items() if fnmatch.fnmatch(name, pattern)), None)


# The stores the later stages read as CAMs: extract_cams', or adversarial erasing's union of mined regions.
LOCALISATION_STAGES = ("extract_cams", "mine_regions")


def rebuild_hint(stage: str | tuple | None, path=None) -> str:
    """What rebuilds an artifact and everything made from it, as a command the user can run as it stands."""
    stage = stage[0] if isinstance(stage, tuple) else stage
    rule = RULE_OF_STAGE.get(stage, stage) if stage else (rule_of_file(path) if path else None)
    rule = rule or "<the rule that makes it>"
    return f"rebuild it and what is made from it with `snakemake --forcerun {rule}` (plus your usual options)"


def open_store(path, stage: str | tuple | None = None, layout=None):
    """Open an HDF5 artifact for reading, failing with one sentence naming the file if it is unusable.

    With ``stage`` (a name, or a tuple of names) the file must have been made by that stage; with ``layout`` (a
    VOCLayout), for the same class list and dataset root.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found; {rebuild_hint(stage, path)}.")
    try:
        store = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(f"{path}: not a readable HDF5 file ({exc}); {rebuild_hint(stage, path)}.") from None
    try:
        stages = (stage,) if isinstance(stage, str) else stage
        if stage is not None and store.attrs.get("stage") not in stages:
            found = store.attrs.get("stage", "nothing")
            raise ArtifactError(f"{path}: expected an artifact of stage '{' or '.join(stages)}' but it was made by '{found}'.")
        if layout is not None:
            check_made_for(path, store.attrs, layout)
    except ArtifactError:
        store.close()
        raise
    return store


def read_array(store, name: str) -> np.ndarray:
    """Read one dataset, naming the file and dataset if it is absent."""
    if name not in store:
        raise ArtifactError(f"{store.filename}: has no dataset '{name}'; it was made for other images, rerun its stage.")
    return store[name][()]


def write_state_dict(group, state: dict):
    """One HDF5 dataset per tensor of a state dict, under ``group``."""
    for key, tensor in state.items():
        new_dataset(group, key, tensor.detach().cpu().numpy())


def read_state_dict(group) -> dict:
    """The state dict written by ``write_state_dict``."""
    return {key: torch.from_numpy(np.asarray(group[key][()])) for key in group}


def save_weights(path, model: torch.nn.Module, attrs: dict, curve=None):
    """Save a model's state dict as one HDF5 dataset per tensor (no pickles), and the training ``curve`` (a list of
    per-step records {step, loss, ...terms}) as one dataset per column in the group ``training_curve``."""
    with write_store(path, attrs) as store:
        write_state_dict(store.create_group("state_dict"), model.state_dict())
        if curve:
            write_curve(store.create_group("training_curve"), curve)


def write_curve(group, curve):
    """Per-step records as one float64 dataset per column (step first), a column absent from a step being NaN."""
    columns = list(dict.fromkeys(key for record in curve for key in record))
    for key in columns:
        new_dataset(group, key, np.array([record.get(key, np.nan) for record in curve], np.float64))
    group.attrs["columns"] = json.dumps(columns)


def read_curve(group) -> list[dict]:
    """The records ``write_curve`` wrote."""
    columns = json.loads(group.attrs["columns"])
    values = {key: group[key][()] for key in columns}
    return [{key: (int(values[key][i]) if key == "step" else float(values[key][i])) for key in columns}
            for i in range(len(values[columns[0]]))]


def curve_csv(path) -> str:
    """The training curve of a weights file as CSV text (header row, one row per step); '' if it has none."""
    with h5py.File(path, "r") as store:
        if "training_curve" not in store:
            return ""
        curve = read_curve(store["training_curve"])
    columns = list(curve[0]) if curve else []
    return "\n".join([",".join(columns)] + [",".join(repr(r[c]) for c in columns) for r in curve]) + "\n"


def load_weights(path, model: torch.nn.Module, stage: str | None = None, classes=None) -> dict:
    """Load a state dict saved by ``save_weights`` into ``model``; return the file's attributes.

    With ``classes``, the file must have been trained for exactly that class list.
    """
    with open_store(path, stage) as store:
        if "state_dict" not in store:
            raise ArtifactError(f"{path}: has no 'state_dict' group; it is not a weights file of this project.")
        if classes is not None:
            check_classes(path, store.attrs, classes, "retrain it or fix dataset.classes", verb="trained")
        state = read_state_dict(store["state_dict"])
        attrs = dict(store.attrs)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ArtifactError(f"{path}: weights do not fit this model ({first}).") from None
    return attrs


_JSON_ATTRS = ("params", "inputs", "ids", "history", "health")


def describe(path) -> dict:
    """The provenance attributes of an HDF5 artifact (JSON ones decoded) and a short inventory of its contents."""
    with open_store(path) as store:
        attrs = {}
        for key, value in store.attrs.items():
            value = value.tolist() if hasattr(value, "tolist") else value
            if key in _JSON_ATTRS and isinstance(value, str):
                value = json.loads(value)
            attrs[key] = value
        if isinstance(attrs.get("ids"), list):
            attrs["ids"] = f"{len(attrs['ids'])} ids"
        groups, datasets, nbytes = 0, 0, 0

        def visit(_name, obj):
            nonlocal groups, datasets, nbytes
            if isinstance(obj, h5py.Dataset):
                datasets += 1
                nbytes += obj.id.get_storage_size()
            else:
                groups += 1

        store.visititems(visit)
    return {"path": str(path), **attrs, "contents": {"groups": groups, "datasets": datasets, "stored_bytes": nbytes}}
