"""SEC (segmentation.method: sec): seed, expand and constrain losses on hand-made arrays, and the stage on the tiny run.

The tests here run the workflow; those that do not are in tests/unit/test_sec.py.
"""

import json

import numpy as np

from conftest import arrays, planned_jobs, snakemake, write_config


def test_sec_trains_the_segmentation_net_from_the_affinity_label_seeds(run_copy, tmp_path):
    config = write_config(tmp_path / "sec.yaml", segmentation={"method": "sec"})
    proc = snakemake(run_copy, "-n", "--cores", "2", configfiles=(config,))
    assert planned_jobs(proc.stdout) == {"train_segmentation": 1, "evaluate": 1, "figures": 1, "all": 1}
    assert "--pseudo-labels results/tiny/affinity_labels_train.h5" in proc.stdout
    snakemake(run_copy, "--cores", "2", configfiles=(config,))
    weights = arrays(run_copy / "results" / "tiny" / "segmentation.weights.h5")
    for term in ("seed", "expand", "constrain"):
        values = weights[f"training_curve/{term}"]
        assert len(values) > 0 and np.isfinite(values).all() and (values >= 0).all()
    summary = json.loads((run_copy / "results" / "tiny" / "summary.json").read_text())
    assert summary["seg"]["trained_with"] == "sec" and 0 <= summary["seg"]["miou"] <= 100
    assert "| DeepLabV3 with SEC | val |" in (run_copy / "results" / "tiny" / "summary.md").read_text()
