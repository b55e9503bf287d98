"""export on the tiny run: each TorchScript file loads and runs in a Python that never imports wsss_steps, and gives
the pipeline's answers: the segmentation network's val labels of segmentation_predictions.h5 (every pixel: the same
float32 computation on the same CPU), the classifier's CAMs and scores as the classifier computes them."""

import json
import subprocess
import sys

import h5py
import numpy as np
import torch

from test_entry_points import CONFIG

OUTSIDE = r"""
import json, sys
import numpy as np, torch
from PIL import Image
export, images, out = sys.argv[1:4]
seg = torch.jit.load(f"{export}/segmentation.torchscript.pt")
cls = torch.jit.load(f"{export}/classifier.torchscript.pt")
found = {}
for name in json.loads(sys.argv[4]):
    rgb = np.asarray(Image.open(f"{images}/{name}.jpg").convert("RGB"), np.float32) / 255
    x = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        labels = seg(x)[0].argmax(0).numpy().astype(np.uint8)
        scores, cams = cls(x)
    found[name] = {"labels": labels.tolist(), "scores": scores[0].tolist(), "cams": cams[0].tolist()}
    odd = x[:, :, :x.shape[2] - 5, :x.shape[3] - 3]  # a size that is no multiple of the stride
    with torch.no_grad():
        found[name]["odd"] = list(seg(odd).shape)
state = torch.load(f"{export}/segmentation.state_dict.pth")
json.dump({"found": found, "modules": sorted(m for m in sys.modules if m.startswith("wsss")),
           "state_keys": sorted(state)}, open(out, "w"))
"""


def test_exported_networks_run_without_the_package_and_give_the_pipeline_s_answers(tiny_run, tmp_path):
    workdir, _ = tiny_run
    run = workdir / "results" / "tiny"
    export = tmp_path / "export"
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.export", "--run", str(run), "--out", str(export)],
                          cwd=workdir, capture_output=True, text=True, timeout=1800)  # a hang guard
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((export / "segmentation.json").read_text())
    assert info["classes"] == CONFIG["dataset"]["classes"] and info["output_stride"] == 8
    assert json.loads((export / "classifier.json").read_text())["classes"] == CONFIG["dataset"]["classes"][1:]

    data = workdir / CONFIG["dataset"]["root"]
    images = data / "JPEGImages"
    names = (data / "ImageSets" / "Segmentation" / "val.txt").read_text().split()[:3]
    out = tmp_path / "found.json"
    outside = subprocess.run([sys.executable, "-c", OUTSIDE, str(export), str(images), str(out), json.dumps(names)],
                             cwd=tmp_path, capture_output=True, text=True, timeout=1800)  # a hang guard
    assert outside.returncode == 0, outside.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["modules"] == []  # nothing of this package was imported to run them

    from wsss_steps.data.transforms import pad_to_stride, to_tensor
    from wsss_steps.nets.classifier import load_classifier
    from PIL import Image

    with h5py.File(run / "segmentation_predictions.h5", "r") as store:
        for name in names:
            expected = store["val"][name][()]
            np.testing.assert_array_equal(np.asarray(result["found"][name]["labels"], np.uint8), expected)
            assert result["found"][name]["odd"][2:] == [expected.shape[0] - 5, expected.shape[1] - 3]
    with h5py.File(run / "classifier.weights.h5", "r") as store:
        params = json.loads(store.attrs["params"])
        assert sorted(result["state_keys"]) == result["state_keys"] and result["state_keys"]
    classifier = load_classifier(run / "classifier.weights.h5", params["backbone"], CONFIG["dataset"]["classes"]).eval()
    for name in names:
        image = to_tensor(np.asarray(Image.open(images / f"{name}.jpg").convert("RGB")))
        padded, _ = pad_to_stride(image[None], classifier.backbone.stride)
        with torch.no_grad():
            cams = classifier.cam(padded)[0]
        np.testing.assert_allclose(np.asarray(result["found"][name]["cams"]), cams.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(result["found"][name]["scores"]), cams.mean(dim=(-2, -1)).numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_snakemake_export_target(run_copy):
    from conftest import planned_jobs, snakemake

    planned = snakemake(run_copy, "-n", "--cores", "2", "export")
    assert planned_jobs(planned.stdout) == {"export": 1}  # nothing of the run is trained again
    snakemake(run_copy, "--cores", "2", "export")
    folder = run_copy / "results" / "tiny" / "export"
    assert {p.name for p in folder.iterdir() if not p.name.startswith(".")} == {f"{n}.{kind}" for n in ("segmentation", "classifier")
                                                  for kind in ("torchscript.pt", "state_dict.pth", "json")}
    assert torch.jit.load(str(folder / "segmentation.torchscript.pt"))(torch.rand(1, 3, 40, 56)).shape == (1, 4, 40, 56)
