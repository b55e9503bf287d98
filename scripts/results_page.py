"""The results page, docs/results.md, generated from recorded runs: every published figure comes from here.

A finished run is recorded once with the command that made it; its record, ``docs/runs/<run>.json``, holds the
run's ``summary.json`` and where it came from (command, commit, date, machine, device and precision, stage times).
The page is built from the records alone, so a figure is written by this script only, never typed twice:

    python scripts/results_page.py record results/synthetic --command "snakemake --cores 2" --wall-seconds 539
    python scripts/results_page.py build            # writes docs/results.md
    python scripts/results_page.py build --check    # exit 1 when docs/results.md is not what the records give
    python scripts/results_page.py examples results/synthetic   # the recorded run's examples.png, for the README

A record made on code that changed since is rerun (record again) or deleted; the page says at which commit each
figure was measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "docs" / "runs"
PAGE = REPO / "docs" / "results.md"
ROWS = (("cam", "CAM"), ("rw", "CAM + RW"), ("seg", "segmentation"), ("seg_crf", "segmentation + CRF"))
STAGE_TIME = re.compile(r"stage took ([0-9.]+) s")


def git(*args) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def cpu_model() -> str:
    """The processor's model name (Linux), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def stage_seconds(run_dir: Path) -> dict:
    """{job: seconds} from the last 'stage took N s' line of each job's log in the run's logs/.

    Every job the run's folder holds counts, not only the seven stages: make_saliency (EPS) and the
    adversarial-erasing rounds (ae_train_classifier_round2, ae_extract_cams_round2, mine_regions_round1, ...).
    """
    out = {}
    for log in sorted((run_dir / "logs").glob("*.log")):
        found = STAGE_TIME.findall(log.read_text(errors="replace"))
        if found:
            out[log.stem] = float(found[-1])
    return out


def computed_in(run_dir: Path) -> dict:
    """The device and precision the network stages recorded in their artifacts ({stage: 'cpu float32'})."""
    import h5py

    out = {}
    rounds = sorted(run_dir.glob("adversarial_erasing/classifier_round*.h5"))
    for stage, name in (("train_classifier", "classifier.weights.h5"),
                        *((f"ae_train_classifier_{path.stem.split('_')[-1]}", path.relative_to(run_dir))
                          for path in rounds),
                        ("train_affinity", "affinity.weights.h5"), ("train_segmentation", "segmentation.weights.h5")):
        path = run_dir / name
        if path.is_file():
            with h5py.File(path, "r") as store:
                out[stage] = f"{store.attrs.get('device', '?')} {store.attrs.get('amp', '?')}"
    return out


def make_record(run_dir, command: str, wall_seconds: float | None = None, note: str = "") -> dict:
    """A finished run as a record: its summary.json and its provenance."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"run": run_dir.name, "command": command, "commit": git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else ""),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "machine": f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}",
            "computed_in": computed_in(run_dir), "wall_seconds": wall_seconds, "stage_seconds": stage_seconds(run_dir),
            "note": note, "summary": summary, **diagnosis(run_dir)}


def diagnosis(run_dir: Path) -> dict:
    """{"diagnose": the run's diagnose.json} when the run has one (snakemake diagnose), else nothing."""
    path = run_dir / "diagnose.json"
    return {"diagnose": json.loads(path.read_text())} if path.is_file() else {}


def best_cam(summary: dict) -> dict | None:
    """The point of the CAM threshold curve with the highest mIoU ({"threshold", "miou"}), None without a curve."""
    curve = summary.get("cam", {}).get("curve") or []
    return max(curve, key=lambda point: point["miou"]) if curve else None


def extra_lines(summary: dict, diagnose: dict | None) -> list[str]:
    """The CAM at the best threshold of its curve, the walk's health figures, and diagnose's figures when recorded."""
    lines = []
    best = best_cam(summary)
    if best:
        lines.append(f"- CAM at the best threshold of its curve: **{best['miou']:.1f}** at {best['threshold']:g} "
                     f"(the table's CAM row: {summary['cam'].get('threshold', '?')})")
    walk = summary.get("health", {}).get("stages", {}).get("random_walk", {})
    for key, name in (("survival", "survival (images where a CAM class survives the walk)"),
                      ("whole_image_share", "whole-image share (images where the walk covers the whole image)")):
        if walk.get(key):
            lines.append(f"- walk {name}: " + ", ".join(f"{c} {v['rate']:.2f}" for c, v in walk[key].items()))
    if diagnose:
        text = (f"- diagnose ({diagnose['images']} images): pseudo-label mIoU of the walk with the learned affinity "
                f"{diagnose['walk_miou']['learned']:.1f}, with the masks' (oracle) {diagnose['walk_miou']['oracle']:.1f}")
        if "boundary" in diagnose:
            edge = diagnose["boundary"]
            text += (f"; boundary B > {edge['threshold']:g} within {edge['tolerance_px']} px of the masks' boundaries: "
                     f"precision {edge['precision']:.2f}, recall {edge['recall']:.2f}")
        lines.append(text)
    return lines


def iou_table(summary: dict) -> list[str]:
    """The per-class IoU table of one run: a row per scored stage, mIoU last."""
    classes = summary["classes"]
    lines = ["| stage | split | " + " | ".join(classes) + " | mIoU |", "|---|---|" + "---|" * (len(classes) + 1)]
    for key, name in ROWS:
        part = summary.get(key)
        if part is None:
            continue
        cells = ["-" if part["iou"][c] is None else f"{part['iou'][c]:.1f}" for c in classes]
        lines.append(f"| {name} | {part['split']} | " + " | ".join(cells) + f" | **{part['miou']:.1f}** |")
    for key, reason in summary.get("not_scored", {}).items():
        lines.append(f"| {dict(ROWS).get(key, key)} | not scored: {reason} |" + " |" * (len(classes) + 1))
    return lines


def section(record: dict) -> list[str]:
    summary = record["summary"]
    lines = [f"## {record['run']} ({summary['dataset']})", "",
             f"- command: `{record['command']}`",
             f"- measured at commit {record['commit']} on {record['date']}; {record['machine']}"]
    if record["computed_in"]:
        lines.append("- networks ran in: " + ", ".join(f"{k} {v}" for k, v in record["computed_in"].items()))
    if record.get("wall_seconds"):
        seconds = int(round(record["wall_seconds"]))
        lines.append(f"- wall time: {seconds // 60} min {seconds % 60} s")
    if record["stage_seconds"]:
        lines.append("- stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in record["stage_seconds"].items()))
    if record.get("note"):
        lines.append(f"- note: {record['note']}")
    lines += extra_lines(summary, record.get("diagnose"))
    warnings = summary.get("health", {}).get("warnings", [])
    lines.append(f"- health: {len(warnings)} warning(s)" + "".join(f"\n  - {w['message']}" for w in warnings)
                 if warnings else "- health: every check passed")
    return lines + [""] + iou_table(summary) + [""]


def side_by_side(records: list[dict]) -> list[str]:
    """A table per dataset, a row per recorded run: the mIoU of each stage, the best CAM, warnings, wall time, commit."""
    lines = ["## Side by side", "",
             "mIoU of every recorded run of a dataset, one row each (its section below holds the per-class IoU, the",
             "command and what a reader must know about the measurement). \"-\": the run does not score that stage.", ""]
    datasets = sorted({record["summary"]["dataset"] for record in records})
    for dataset in datasets:
        lines += [f"### {dataset}", "",
                  "| run | CAM | CAM at the best threshold | CAM + RW | segmentation | + CRF | health warnings | wall "
                  "| commit |", "|---|---|---|---|---|---|---|---|---|"]
        for record in sorted((r for r in records if r["summary"]["dataset"] == dataset), key=lambda r: r["run"]):
            summary = record["summary"]
            cells = [f"{summary[key]['miou']:.1f}" if summary.get(key) else "-" for key, _ in ROWS]
            best = best_cam(summary)
            cells.insert(1, f"{best['miou']:.1f} ({best['threshold']:g})" if best else "-")
            seconds = record.get("wall_seconds")
            wall = f"{int(round(seconds)) // 60} min" if seconds else "-"
            warnings = len(summary.get("health", {}).get("warnings", []))
            lines.append(f"| {record['run']} | " + " | ".join(cells) + f" | {warnings} | {wall} | {record['commit']} |")
        lines.append("")
    return lines


def build_page(records: list[dict]) -> str:
    """docs/results.md from the records: a side-by-side table per dataset, then each run's section by run name."""
    head = ["# Results", "",
            "Generated by `python scripts/results_page.py build` from the records in `docs/runs/`; do not edit by hand.",
            "Each figure is the mIoU or IoU (0-100) of one recorded run: pseudo-labels (CAM, CAM + RW) on the",
            "training split, the segmentation network on val, every class and the background in the mean.", ""]
    body = [line for record in sorted(records, key=lambda r: r["run"]) for line in section(record)]
    return "\n".join(head + side_by_side(records) + body).rstrip() + "\n"


def copy_examples(run_dir, runs=RUNS) -> Path:
    """The examples figure of a recorded run, ``<runs>/<run>-examples.png``: copied from the run's folder only when
    that folder is the run recorded (its summary.json is the record's), so the picture shows the published figures."""
    run_dir = Path(run_dir)
    record = Path(runs) / f"{run_dir.name}.json"
    if not record.is_file():
        raise SystemExit(f"{record}: {run_dir.name} is not recorded; record the run first.")
    if json.loads(record.read_text())["summary"] != json.loads((run_dir / "summary.json").read_text()):
        raise SystemExit(f"{run_dir / 'summary.json'} is not the summary recorded in {record}; give the recorded run's "
                         "folder, or record this run again.")
    out = Path(runs) / f"{run_dir.name}-examples.png"
    shutil.copyfile(run_dir / "examples.png", out)
    return out


def read_records(folder=RUNS) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(Path(folder).glob("*.json"))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/results_page.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    record = sub.add_parser("record", help="record a finished run (results/<run>) in docs/runs/<run>.json")
    record.add_argument("run_dir")
    record.add_argument("--command", required=True, help="the command that made the run, as it was typed")
    record.add_argument("--wall-seconds", type=float, help="the run's wall time")
    record.add_argument("--note", default="", help="what a reader must know about the measurement (a shared machine)")
    record.add_argument("--runs", default=str(RUNS))
    build = sub.add_parser("build", help="write docs/results.md from the records")
    build.add_argument("--runs", default=str(RUNS))
    build.add_argument("--out", default=str(PAGE))
    build.add_argument("--check", action="store_true", help="only check that the page is what the records give")
    examples = sub.add_parser("examples", help="copy a recorded run's examples.png to docs/runs/<run>-examples.png")
    examples.add_argument("run_dir")
    examples.add_argument("--runs", default=str(RUNS))
    args = parser.parse_args(argv)
    if args.action == "examples":
        print(f"wrote {copy_examples(args.run_dir, args.runs)}")
        return 0
    if args.action == "record":
        made = make_record(args.run_dir, args.command, args.wall_seconds, args.note)
        out = Path(args.runs) / f"{made['run']}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(made, indent=1, sort_keys=True) + "\n")
        print(f"recorded {out}")
        return 0
    page = build_page(read_records(args.runs))
    if args.check:
        current = Path(args.out).read_text() if Path(args.out).is_file() else ""
        if current != page:
            print(f"{args.out} is not what the records in {args.runs} give: run python scripts/results_page.py build")
            return 1
        return 0
    Path(args.out).write_text(page)
    print(f"wrote {args.out} from {len(read_records(args.runs))} record(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
