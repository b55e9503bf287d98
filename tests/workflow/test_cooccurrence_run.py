"""EPS's confusion ratio: the counts on tiny arrays, the context masks, the config check and the tiny run's summary.

The tests here run the workflow; those that do not are in tests/unit/test_cooccurrence.py.
"""

import json




def test_the_tiny_run_reports_the_boat_water_confusion_ratio(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    rows = json.loads((results / "summary.json").read_text())["cooccurrence"]
    assert [(r["class"], r["context"]) for r in rows] == [("boat", "water")]
    assert all(rows[0][k] is None or rows[0][k] >= 0 for k in ("cam", "rw", "seg"))
    assert "## Co-occurrence" in (results / "summary.md").read_text()
    assert any((workdir / "data" / "tiny-synthetic" / "ContextMasks" / "water").glob("*.png"))
