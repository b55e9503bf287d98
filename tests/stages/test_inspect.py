"""python -m wsss_steps.inspect_artifact prints what made an artifact."""

import hashlib
import json
import subprocess
import sys

import numpy as np

from wsss_steps.lib.artifacts import provenance, put_array, write_store


def test_inspect_prints_stage_params_seed_version_and_input_checksums(tmp_path):
    source = tmp_path / "train.txt"
    source.write_text("a\nb\n")
    attrs = provenance("extract_cams", {"scales": [1.0, 0.5], "flip": True}, 7, [source])
    attrs.update(classes=["background", "cat"], ids=json.dumps(["a", "b"]),
                 health=json.dumps({"figures": {"whole_image_share": {"cat": 0.0}}, "warnings": []}))
    path = tmp_path / "cams.h5"
    with write_store(path, attrs) as store:
        put_array(store, "a", np.ones((1, 8, 8), np.float16), classes=np.asarray([1]))
        put_array(store, "b", np.ones((1, 8, 8), np.float16), classes=np.asarray([1]))
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.inspect_artifact", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["stage"] == "extract_cams" and shown["seed"] == 7
    assert shown["params"] == {"flip": True, "scales": [1.0, 0.5]}
    assert shown["inputs"] == {str(source): hashlib.sha256(b"a\nb\n").hexdigest()}
    assert shown["classes"] == ["background", "cat"] and shown["contents"]["datasets"] == 2
    assert "package_version" in shown
    assert shown["health"] == {"figures": {"whole_image_share": {"cat": 0.0}}, "warnings": []}  # structure, not a string


def test_inspect_names_a_file_that_is_not_an_artifact(tmp_path):
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"not hdf5")
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.inspect_artifact", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and f"{bad}: not a readable HDF5 file" in proc.stderr
