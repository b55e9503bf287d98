"""Adversarial erasing (AE-PSL): erasing and the union on tiny arrays, the round jobs of the workflow, and the
early stop when a round's classifier no longer classifies the erased images.

The tests here run the workflow; those that do not are in tests/unit/test_adversarial_erasing.py.
"""

import json

import h5py
import numpy as np
import yaml

from conftest import arrays, planned_jobs, snakemake, write_config

DOWNSTREAM = {"make_affinity_labels": 1, "train_affinity": 1, "random_walk": 1, "train_segmentation": 1,
              "evaluate": 1, "figures": 1, "all": 1}


def test_rounds_are_jobs_and_raising_rounds_runs_only_the_new_round_and_what_follows(run_copy, tmp_path):
    two = write_config(tmp_path / "ae2.yaml", adversarial_erasing={"rounds": 2, "min_recall": 0.0})
    proc = snakemake(run_copy, "-n", "--cores", "2", configfiles=(two,))
    assert planned_jobs(proc.stdout) == {"ae_train_classifier": 1, "ae_extract_cams": 1, "mine_regions": 2, **DOWNSTREAM}
    snakemake(run_copy, "--cores", "2", configfiles=(two,))
    folder = run_copy / "results" / "tiny" / "adversarial_erasing"
    with h5py.File(folder / "regions_round1.h5") as first, h5py.File(folder / "regions_round2.h5") as second:
        assert second.attrs["stopped_at"] == 0 and [r["round"] for r in json.loads(second.attrs["rounds"])] == [1, 2]
        ids = json.loads(first.attrs["ids"])
        grew = [(second[i][()] >= first[i][()]).all() for i in ids]
    assert all(grew)
    summary = json.loads((run_copy / "results" / "tiny" / "summary.json").read_text())
    assert 0 <= summary["cam"]["miou"] <= 100

    three = write_config(tmp_path / "ae3.yaml", adversarial_erasing={"rounds": 3, "min_recall": 0.0})
    proc = snakemake(run_copy, "-n", "--cores", "2", configfiles=(three,))
    assert planned_jobs(proc.stdout) == {"ae_train_classifier": 1, "ae_extract_cams": 1, "mine_regions": 1, **DOWNSTREAM}


def test_a_round_whose_classifier_fails_on_the_erased_images_stops_erasing(run_copy, tmp_path, monkeypatch):
    from wsss_steps.extract_cams import main as extract_cams
    from wsss_steps.mine_regions import main as mine
    from wsss_steps.train_classifier import main as train

    monkeypatch.chdir(run_copy)  # the stores record the dataset root as the workflow gave it (relative)
    run = run_copy / "results" / "tiny"
    config = yaml.safe_load(write_config(tmp_path / "c.yaml").read_text())
    dataset = json.dumps({k: v for k, v in config["dataset"].items() if k not in ("generate", "cooccurrence")})
    params = json.dumps({"delta": 0.5, "min_recall": 0.9})
    first = tmp_path / "regions_round1.h5"
    mine(["--dataset", dataset, "--params", params, "--round", "1", "--cams", str(run / "cams_train.h5"),
          "--classifier", str(run / "classifier.weights.h5"), "--split", "train", "--out", str(first)])
    # round 1's union is the run's own CAMs: the same health figures as the CAM store's (the later stages read it so)
    with h5py.File(first) as mined, h5py.File(run / "cams_train.h5") as cams:
        figures = json.loads(mined.attrs["health"])["figures"]
        assert figures == json.loads(cams.attrs["health"])["figures"]
        assert set(figures) == {"confident_share", "whole_image_share"}
    failed = tmp_path / "classifier_round2.weights.h5"
    with h5py.File(failed, "w") as weights:  # a round-2 classifier that recalls no erased image
        weights.attrs["health"] = json.dumps({"figures": {"train": {"kite": {"recall": 0.0}, "bug": {"recall": 0.5}}}})
    second = tmp_path / "regions_round2.h5"
    mine(["--dataset", dataset, "--params", params, "--round", "2", "--cams", str(run / "cams_train.h5"),
          "--classifier", str(failed), "--previous", str(first), "--split", "train", "--out", str(second)])
    with h5py.File(first) as a, h5py.File(second) as b:
        assert b.attrs["stopped_at"] == 2 and json.loads(b.attrs["rounds"])[-1]["used"] is False
        assert all(np.array_equal(a[i][()], b[i][()]) for i in json.loads(a.attrs["ids"]))
    skipped = tmp_path / "classifier_round3.weights.h5"
    train(["--dataset", dataset, "--backbone", json.dumps(config["backbone"]), "--params", json.dumps(config["classifier"]),
           "--split", "train", "--erase-regions", str(second), "--erasing", params, "--out", str(skipped)])
    cams = tmp_path / "cams_round3.h5"
    extract_cams(["--dataset", dataset, "--backbone", json.dumps(config["backbone"]), "--params", json.dumps(config["cams"]),
                  "--classifier", str(skipped), "--split", "train", "--erase-regions", str(second), "--erasing", params,
                  "--out", str(cams)])
    with h5py.File(skipped) as w, h5py.File(cams) as c:
        assert "stopped at round 2" in w.attrs["skipped"] and "state_dict" not in w
        assert "stopped at round 2" in c.attrs["skipped"]


def test_psl_trains_with_a_classification_branch_and_the_online_labels(run_copy, tmp_path):
    config = write_config(tmp_path / "psl.yaml", segmentation={"method": "psl"})
    proc = snakemake(run_copy, "-n", "--cores", "2", configfiles=(config,))
    assert planned_jobs(proc.stdout) == {"train_segmentation": 1, "evaluate": 1, "figures": 1, "all": 1}
    assert "--pseudo-labels results/tiny/pseudo_labels_train.h5" in proc.stdout and '"psl": {"online_weight": 1.0}' in proc.stdout
    snakemake(run_copy, "--cores", "2", configfiles=(config,))
    weights = arrays(run_copy / "results" / "tiny" / "segmentation.weights.h5")
    assert any(name.startswith("state_dict/image_head") for name in weights)
    for term in ("pseudo", "classification", "online"):
        values = weights[f"training_curve/{term}"]
        assert len(values) > 0 and np.isfinite(values).all() and (values >= 0).all()
    summary = json.loads((run_copy / "results" / "tiny" / "summary.json").read_text())
    assert summary["seg"]["trained_with"] == "psl" and 0 <= summary["seg"]["miou"] <= 100
    assert "| DeepLabV3 on CAM + RW, PSL | val |" in (run_copy / "results" / "tiny" / "summary.md").read_text()
