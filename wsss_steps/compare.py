"""Tabulate a method comparison: the workflow's ``compare`` target runs each method of ``compare.methods`` as a
run of its own, all in one workflow, and this stage writes the table from their results.

    snakemake compare --configfile configs/presets/cpu_photos.yaml configs/datasets/pets_horses.yaml \
        --config compare='{methods: [cam, puzzle_cam, hide_and_seek, acol, gradcam, sec]}' --cores 2

    python -m wsss_steps.compare --dataset JSON --rows JSON --json comparison.json --table comparison.md

Each method runs as ``results/<run_name>-<method>/`` (the run's settings with the method's on top:
``wsss_steps.lib.runs.comparison_methods``); a stage whose settings, and those of every stage before it, a run shares
with an earlier one (the config's own run first, then the methods in order) is computed once, in the earlier
run's folder, and read from there (Grad-CAM, which only changes how CAMs are read, trains no classifier of its
own; ``ae_round3`` makes only round 3). Written: ``comparison.md`` and ``comparison.json`` in
``results/<run_name>-compare/`` with, per method, CAM, CAM+RW, segmentation and + CRF mIoU, CAM IoU per class, the
confusion ratios the dataset declares, the health warnings and the wall time of each stage; the ``compare`` rule
then draws the mIoU bars (``comparison.png``) and writes the table as HTML for Snakemake's report.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .lib.config import load_params
from .lib.files import atomic_path
from .lib.runs import STAGES
from .lib.runtime import base_parser, run_stage, start

STAGE = "compare"
STAGE_TIME = re.compile(r"stage took ([0-9.]+) s")


def stage_seconds(log: Path) -> float | None:
    """The wall time a stage's log ends with ("stage took N s"), or None."""
    if not log.is_file():
        return None
    times = STAGE_TIME.findall(log.read_text(errors="replace"))
    return float(times[-1]) if times else None


def method_rows(rows: list[dict], results: Path = Path("results")) -> list[dict]:
    """Each method's figures from its evaluation's summary.json and its stages' logs, in the folders of the runs
    that hold them (``rows``: method, run, {stage: run}, {round: run}, as the workflow's compare target gives
    them). A stage an earlier method of the table already computed is marked ``= <that method>`` instead of a
    time; the adversarial-erasing rounds count as one more stage (the times of the rounds' jobs, summed)."""
    first = {}  # (stage or round, run holding it) -> the first method of the table that has it
    out = []
    for spec in rows:
        row = {"method": spec["method"], "run": spec["stages"]["evaluate"], "seconds": {}}
        for stage, _ in STAGES:
            holder = spec["stages"][stage]
            earlier = first.setdefault((stage, holder), spec["method"])
            row["seconds"][stage] = (stage_seconds(results / holder / "logs" / f"{stage}.log")
                                     if earlier == spec["method"] else f"= {earlier}")
        if spec.get("rounds"):
            times, shared = [], []
            for r, holder in sorted(spec["rounds"].items(), key=lambda item: int(item[0])):
                earlier = first.setdefault((f"round{r}", holder), spec["method"])
                if earlier != spec["method"]:
                    shared.append(earlier)
                    continue
                jobs = ["mine_regions"] + (["ae_train_classifier", "ae_extract_cams"] if int(r) > 1 else [])
                times += [stage_seconds(results / holder / "logs" / f"{job}_round{r}.log") for job in jobs]
            ran = [t for t in times if t is not None]
            row["seconds"]["adversarial_erasing"] = (sum(ran) if ran else
                                                     (f"= {shared[-1]}" if shared and not times else None))
        summary = json.loads((results / row["run"] / "summary.json").read_text())
        row.update(cam=summary["cam"]["miou"], rw=summary["rw"]["miou"], seg=(summary.get("seg") or {}).get("miou"),
                   seg_crf=(summary.get("seg_crf") or {}).get("miou"),
                   cam_iou=summary["cam"]["iou"], rw_iou=summary["rw"]["iou"],
                   seg_iou=(summary.get("seg") or {}).get("iou"),
                   cooccurrence=summary.get("cooccurrence", []),
                   warnings=[w["message"] for w in summary["health"]["warnings"]])
        out.append(row)
    return out


def markdown(rows: list[dict], classes, dataset: str) -> str:
    """The comparison as Markdown: mIoU and CAM IoU per class, confusion ratios, health, stage times."""
    def cell(value):
        return "-" if value is None else (f"{value:.1f}" if isinstance(value, (int, float)) else str(value))

    fg = list(classes)
    out = [f"# Method comparison on {dataset}", "",
           "| method | CAM (train) | CAM + RW (train) | segmentation (val) | + CRF (val) | "
           + " | ".join(f"CAM {c}" for c in fg) + " |",
           "|---|---|---|---|---|" + "---|" * len(fg)]
    for row in rows:
        if "cam" not in row:
            out.append(f"| {row['method']} | failed (see its log) |" + " |" * (3 + len(fg)))
            continue
        out.append(f"| {row['method']} | {cell(row['cam'])} | {cell(row['rw'])} | {cell(row['seg'])} | "
                   f"{cell(row.get('seg_crf'))} | "
                   + " | ".join(cell(row["cam_iou"].get(c)) for c in fg) + " |")
    pairs = [(p["class"], p["context"]) for row in rows if "cam" in row for p in row["cooccurrence"]]
    if pairs:
        out += ["", "Confusion ratio (EPS; lower is better), CAM / CAM + RW / segmentation:", "",
                "| method | " + " | ".join(f"{c}/{k}" for c, k in dict.fromkeys(pairs)) + " |",
                "|---|" + "---|" * len(dict.fromkeys(pairs))]
        for row in rows:
            if "cam" in row:
                ratios = {(p["class"], p["context"]): p for p in row["cooccurrence"]}
                cells = [" / ".join("-" if ratios[k].get(s) is None else f"{ratios[k][s]:.3f}" for s in ("cam", "rw", "seg"))
                         if k in ratios else "-" for k in dict.fromkeys(pairs)]
                out.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    columns = [s for s, _ in STAGES]
    if any("adversarial_erasing" in row["seconds"] for row in rows):
        columns.insert(2, "adversarial_erasing")  # the rounds run between the CAMs and the affinity labels
    out += ["", "Wall time per stage (s; = <method>: computed once, for that method; adversarial_erasing: its "
            "rounds' jobs, summed):", "",
            "| method | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for row in rows:
        values = [row["seconds"].get(c) for c in columns]
        out.append(f"| {row['method']} | " + " | ".join(
            v if isinstance(v, str) else ("-" if v is None else f"{v:.0f}") for v in values) + " |")
    warned = [(row["method"], w) for row in rows for w in row.get("warnings", [])]
    out += ["", "Health: " + ("every check passed for every method." if not warned else
                              f"{len(warned)} warning(s):"), ""]
    out += [f"- {method}: {message}" for method, message in warned]
    return "\n".join(out) + "\n"




def main(argv=None):
    parser = base_parser(STAGE, __doc__)
    parser.add_argument("--rows", type=json.loads, required=True,
                        help="JSON list: per method, its name, run, and the run holding each stage and round")
    parser.add_argument("--results", default="results", help="the folder of the runs' folders (default: results)")
    parser.add_argument("--json", required=True, help="comparison.json to write")
    parser.add_argument("--table", required=True, help="comparison.md to write")
    args, log, _, _ = start(parser, argv)
    dataset = load_params(args.dataset)
    rows = method_rows(args.rows, Path(args.results))
    classes = dataset["classes"]
    with atomic_path(args.json) as tmp:
        Path(tmp).write_text(json.dumps({"dataset": dataset.get("name"), "classes": classes, "methods": rows},
                                        indent=2) + "\n")
    with atomic_path(args.table) as tmp:
        Path(tmp).write_text(markdown(rows, classes, dataset.get("name", "")))
    log.info("wrote %s and %s (%d methods)", args.json, args.table, len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(run_stage(main))
