"""Segmenting new images with a trained run (wsss_steps.predict and `snakemake predict`) on the tiny run."""

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np

from conftest import planned_jobs, snakemake
from wsss_steps.data.label_png import load_label_png


def test_predicting_the_val_images_reproduces_the_pipeline_s_predictions(tiny_run, tmp_path):
    workdir, _ = tiny_run
    data = workdir / "data" / "tiny-synthetic"
    ids = (data / "ImageSets" / "Segmentation" / "val.txt").read_text().split()
    images = tmp_path / "images"
    (images / "nested").mkdir(parents=True)
    for i, image_id in enumerate(ids):  # half of them one folder down
        shutil.copy(data / "JPEGImages" / f"{image_id}.jpg", images / ("nested" if i % 2 else "") / f"{image_id}.jpg")
    (images / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    base = [sys.executable, "-m", "wsss_steps.predict", "--run", str(workdir / "results" / "tiny"), "--images",
            str(images), "--threads", "2", "--out"]
    cmd = base + [str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr  # the broken image is named and skipped
    assert f"{images / 'broken.jpg'}: not a readable image" in proc.stderr and "skipped" in proc.stderr
    with h5py.File(workdir / "results" / "tiny" / "segmentation_predictions.h5", "r") as store:
        for i, image_id in enumerate(ids):
            stem = out / ("nested" if i % 2 else "") / image_id
            assert np.array_equal(load_label_png(stem.with_suffix(".png")), store["val"][image_id][()]), image_id
            assert (stem.parent / f"{image_id}_overlay.jpg").is_file()
    legend = json.loads((out / "legend.json").read_text())
    assert [legend[str(i)]["class"] for i in range(4)] == ["background", "kite", "bug", "boat"]
    # a rerun writes only what is missing
    (images / "broken.jpg").unlink()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    (out / f"{ids[0]}.png").unlink()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "1 already segmented" not in proc.stderr and f"{len(ids)} images under" in proc.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p.name != f"{ids[0]}.png")
    # multi-scale + flip runs and gives a label for every pixel
    flipped = tmp_path / "flipped"
    subprocess.run(base + [str(flipped), "--scales", "1", "1.5", "--flip"], check=True, capture_output=True)
    assert load_label_png(flipped / f"{ids[0]}.png").shape == load_label_png(out / f"{ids[0]}.png").shape
    # --crf gives evaluate's "+ CRF" labels: the CRF of the pipeline's prediction, at evaluate.crf's defaults
    from PIL import Image

    from wsss_steps.lib.config import crf_settings
    from wsss_steps.methods.crf import crf_labels

    refined = tmp_path / "crf"
    subprocess.run(base + [str(refined), "--crf"], check=True, capture_output=True)
    with h5py.File(workdir / "results" / "tiny" / "segmentation_predictions.h5", "r") as store:
        image = np.asarray(Image.open(data / "JPEGImages" / f"{ids[0]}.jpg").convert("RGB"))
        expected = crf_labels(image, store["val"][ids[0]][()], **crf_settings("{}"))
    assert np.array_equal(load_label_png(refined / f"{ids[0]}.png"), expected)
    # a rerun with other settings into a folder already written is refused: its labels would mix two settings
    proc = subprocess.run(cmd + ["--crf"], capture_output=True, text=True)
    assert proc.returncode == 2 and "was written with other weights or settings" in proc.stderr
    # --out inside --images is refused before anything is written
    proc = subprocess.run(base + [str(images / "x")], capture_output=True, text=True)
    assert proc.returncode == 2 and "outside --images" in proc.stderr and not (images / "x").exists()


def test_snakemake_predict_target(run_copy, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    source = next((run_copy / "data" / "tiny-synthetic" / "JPEGImages").glob("*.jpg"))
    shutil.copy(source, images / source.name)
    proc = snakemake(run_copy, "--cores", "2", "predict", check=False)
    assert proc.returncode != 0 and "--config predict='{images: DIR, out: DIR}'" in proc.stdout
    proc = snakemake(run_copy, "--cores", "2", "predict", "--config", f"predict={{images: {images}, out: {tmp_path / 'out'}}}")
    assert planned_jobs(proc.stdout) == {"predict": 1}  # nothing of the run is trained again
    assert (tmp_path / "out" / source.with_suffix(".png").name).is_file()
    assert json.loads((run_copy / "results" / "tiny" / "predict.json").read_text())["segmented"] == 1
