"""The VOC-scale benchmark runs every stage and compares peak memory across dataset sizes (on tiny sets here)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_voc_scale_benchmark_runs_every_stage_at_two_sizes(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/voc_scale.py"), "--sizes", "12", "16",
                           "--image-size", "48", "--val", "4", "--steps", "1", "--batch", "4", "--infer", "4",
                           "--crop", "48", "--jobs", "2", "--work", str(tmp_path / "work"), "--json", str(out)],
                          capture_output=True, text=True, timeout=1800)  # a hang guard
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1 would be a FAIL of flatness, printed
    figures = json.loads(out.read_text())
    stages = ["train_classifier", "extract_cams", "make_affinity_labels", "train_affinity", "random_walk",
              "train_segmentation"]
    for size in ("12", "16"):
        assert list(figures[size]) == stages
        assert all(row["images_per_s"] > 0 and row["peak_mib"] > 0 for row in figures[size].values())
    assert "peak memory at N = 16 over N = 12" in proc.stdout
    generated = (tmp_path / "work" / "voc16" / "ImageSets/Segmentation/train.txt").read_text().split()
    assert len(generated) == 16
