"""The walk sweep (the paper's Fig. 8): point names and settings, and the sweep_walk target on the tiny run,
which reruns only the walk, caches each point and writes a CSV and a plot.

The tests here run the workflow; those that do not are in tests/unit/test_sweep.py.
"""

import csv
import json

import pytest

from conftest import planned_jobs, snakemake, write_config

WALK = {"alpha": 16, "beta": 8, "t": 256, "stride": 8, "background": "threshold", "bg_threshold": 0.5}


def test_the_sweep_reruns_only_the_walk_per_point_and_a_wider_grid_only_the_new_points(run_copy, tmp_path):
    small = write_config(tmp_path / "s1.yaml", sweep={"beta": [4, 8], "t": [8], "alpha": [16]})  # the run walks at beta 8, t 8
    proc = snakemake(run_copy, "-n", "--cores", "2", "sweep_walk", configfiles=(small,))
    assert planned_jobs(proc.stdout) == {"sweep_walk_point": 3, "score_sweep_point": 3, "sweep_walk": 1}
    snakemake(run_copy, "--cores", "2", "sweep_walk", configfiles=(small,))
    run = run_copy / "results" / "tiny"
    rows = list(csv.DictReader((run / "sweep_walk.csv").open()))
    assert [r["point"] for r in rows] == ["alpha16", "beta4_t8", "beta8_t8"]
    assert [r["background"] for r in rows] == ["power"] * 3
    # regression: the background class's IoU has a column of its own, not overwritten by the background setting
    point = json.loads((run / "sweep" / "walk" / "beta4_t8.json").read_text())
    assert float(rows[1]["iou_background"]) == point["iou"]["background"] and rows[1]["background"] == "power"
    # beta8_t8 and alpha16 are the run's own walk (power background, alpha 16): they score what evaluate scored
    own = json.loads((run / "summary.json").read_text())["rw"]["miou"]
    assert float(rows[2]["miou"]) == float(rows[0]["miou"]) == pytest.approx(own, abs=0.01)
    assert 0 <= float(rows[1]["miou"]) <= 100
    assert (run / "sweep_walk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((run / "sweep" / "walk").glob("*.h5"))  # the walked stores are temporary, the scores stay
    wider = write_config(tmp_path / "s2.yaml", sweep={"beta": [4, 8], "t": [8, 32], "alpha": [16]})
    proc = snakemake(run_copy, "-n", "--cores", "2", "sweep_walk", configfiles=(wider,))
    assert planned_jobs(proc.stdout) == {"sweep_walk_point": 2, "score_sweep_point": 2, "sweep_walk": 1}


def test_the_cam_sweep_reruns_only_extract_cams_and_its_own_scales_score_what_evaluate_scored(run_copy, tmp_path):
    own_scales = [1.0, 0.5]  # tests/tiny_config.yaml's cams.scales
    sweep = write_config(tmp_path / "c.yaml", sweep={"cam_scales": [own_scales, [1.0]]})
    proc = snakemake(run_copy, "-n", "--cores", "2", "sweep_cams", configfiles=(sweep,))
    assert planned_jobs(proc.stdout) == {"sweep_cams_point": 2, "score_cams_point": 2, "sweep_cams": 1}
    snakemake(run_copy, "--cores", "2", "sweep_cams", configfiles=(sweep,))
    run = run_copy / "results" / "tiny"
    rows = list(csv.DictReader((run / "sweep_cams.csv").open()))
    summary = json.loads((run / "summary.json").read_text())["cam"]
    fixed = {r["scales"]: float(r["miou"]) for r in rows if r["fixed_threshold"] == "True"}
    assert fixed["1 0.5"] == pytest.approx(summary["miou"], abs=0.01)  # the run's own scales: evaluate's CAM mIoU
    assert set(fixed) == {"1 0.5", "1"} and 0 <= fixed["1"] <= 100
    assert len(rows) == 2 * len(summary["curve"])  # every threshold of the curve, per scale set
    assert (run / "sweep_cams.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((run / "sweep" / "cams").glob("*.h5"))
