"""Compare localisation methods: run each through the whole workflow on one dataset and tabulate the results.

    python -m wsss_steps.compare --configfile configs/presets/cpu_photos.yaml configs/datasets/pets_horses.yaml \
        --methods cam puzzle_cam hide_and_seek acol gradcam sec --cores 2

Each method runs as its own Snakemake run, ``results/<run_name>-<method>/``, from the given config files plus
the method's settings (METHODS; written to ``results/<run_name>-compare/configs/<method>.yaml``). The first
method is the baseline: a later method reuses, as hard links, the artifacts of every stage whose settings it
does not change, from the earlier run that shares the most stages with it (Grad-CAM, which only changes how CAMs
are read, reuses the baseline's trained classifier; ``ae_psl`` everything up to the walk of ``ae_round3``), and
the adversarial-erasing rounds an earlier run already made with the same settings (``ae_round3`` reuses rounds 1
and 2 of ``ae_round2``), and only when the run does not have them yet; each linked file takes over its source's
Snakemake record (``adopt_record``). The plain run of the same config files (``results/<run_name>/``, what
``snakemake --configfile ...`` made before) counts as such an earlier run when Snakemake finds it complete and up to date for them (a dry run with nothing to do and every output's settings
on record), so a comparison started after the plain run does not train the baseline again. Nothing is ever
overwritten. A method that
fails is reported as failed in the table; the others still run. Written: ``comparison.md`` and ``comparison.json`` in
``results/<run_name>-compare/`` with, per method, CAM, CAM+RW and segmentation mIoU, CAM IoU per class, the
confusion ratios the dataset declares, the health warnings and the wall time of each stage; then the
workflow's ``comparison`` rule draws the mIoU bars (``comparison.png``) and writes the table as HTML, and
Snakemake's report of them is ``report.html`` there.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .config import ConfigError, method_choices, validate_config
from .log import command_parser, setup_logging

# Each method's settings on top of the config files: the sections they change. One per non-default value of a
# section's ``method`` (from the schema, where each list starts with the plain default: the list of methods is
# written once), plus adversarial erasing's rounds.
METHODS = {"cam": {}, **{method: {section: {"method": method}}
                         for section, methods in method_choices().items() for method in methods[1:]},
           # AE-PSL: the union of the rounds' mined regions as the localisation, one row per number of rounds
           "ae_round2": {"adversarial_erasing": {"rounds": 2}},
           "ae_round3": {"adversarial_erasing": {"rounds": 3}},
           "ae_psl": {"adversarial_erasing": {"rounds": 3}, "segmentation": {"method": "psl"}}}

# The workflow's stages in order, the config sections each one reads (on top of those of the stages before
# it) and the artifacts it writes (``{train}`` is the train split).
STAGES = [
    ("train_classifier", ("seed", "dataset", "backbone", "classifier"), ["classifier.weights.h5"]),
    ("extract_cams", ("cams",), ["cams_{train}.h5"]),
    ("make_affinity_labels", ("adversarial_erasing", "affinity_labels"), ["affinity_labels_{train}.h5"]),
    ("train_affinity", ("affinity",), ["affinity.weights.h5"]),
    ("random_walk", ("random_walk",), ["pseudo_labels_{train}.h5", "pseudo_labels_{train}"]),
    ("train_segmentation", ("segmentation",), ["segmentation.weights.h5", "segmentation_predictions.h5"]),
    ("evaluate", ("evaluate",), ["summary.json", "summary.md", "examples.png"]),
]
STAGE_TIME = re.compile(r"stage took ([0-9.]+) s")
# An adversarial-erasing round's artifacts (``adversarial_erasing/<name>_round<r>.h5``; round 1 has only regions)
# and the sections every round reads besides ``adversarial_erasing`` (whose ``rounds`` no round reads).
AE_ROUND_FILES = ("classifier", "cams", "regions")
AE_ROUND_SECTIONS = ("seed", "dataset", "backbone", "classifier", "cams")


def merged(base: dict, overlay: dict) -> dict:
    """``base`` updated by ``overlay`` recursively (as Snakemake merges config files)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def reusable_stages(baseline: dict, variant: dict) -> list[str]:
    """The leading stages whose settings (their sections and those of every stage before) agree in both configs."""
    stages = []
    for stage, sections, _ in STAGES:
        if any(baseline.get(s) != variant.get(s) for s in sections):
            break
        stages.append(stage)
    return stages


def reusable_rounds(source: dict, variant: dict) -> int:
    """How many adversarial-erasing rounds of ``source`` the variant may reuse: the smaller ``rounds`` of the two
    where both erase and every setting a round reads agrees (``rounds`` aside), else 0."""
    a, b = source.get("adversarial_erasing"), variant.get("adversarial_erasing")
    if not a or not b or any(source.get(s) != variant.get(s) for s in AE_ROUND_SECTIONS):
        return 0
    if {k: v for k, v in a.items() if k != "rounds"} != {k: v for k, v in b.items() if k != "rounds"}:
        return 0
    return min(a["rounds"], b["rounds"])


def round_artifacts(rounds: int) -> list[str]:
    """The artifact names of adversarial-erasing rounds 1..rounds."""
    return [f"adversarial_erasing/{name}_round{r}.h5" for r in range(1, rounds + 1) for name in AE_ROUND_FILES]


def best_source(runs: list[tuple[dict, Path]], variant: dict):
    """The earlier run (config, folder) a variant reuses most from, its reusable stages and rounds; the first on ties."""
    best, stages, rounds = None, [], 0
    for run in runs:
        s, r = reusable_stages(run[0], variant), reusable_rounds(run[0], variant)
        if best is None or (len(s), r) > (len(stages), rounds):
            best, stages, rounds = run, s, r
    return best, stages, rounds


def artifact_files(src: Path) -> list[Path]:
    """The files of an artifact: itself, or those under it for a folder."""
    return [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())


def same_artifact(src: Path, dst: Path) -> bool:
    """Whether ``dst`` is a hard link of the artifact ``src`` (a file, or a folder file by file)."""
    try:
        return all(os.path.samefile(f, dst if src.is_file() else dst / f.relative_to(src)) for f in artifact_files(src))
    except OSError:
        return False


def snakemake_record(workdir: Path, path: Path) -> Path:
    """Where Snakemake keeps the record of the output ``path`` of the runs in ``workdir``: its path relative to
    ``workdir``, URL-safe base64, in parts of at most 254 characters (each but the last a folder named ``@part``)."""
    b64 = base64.urlsafe_b64encode(os.path.relpath(path, workdir).encode()).decode()
    parts = [b64[i:i + 254] for i in range(0, len(b64), 254)]
    return workdir.joinpath(".snakemake", "metadata", *["@" + s for s in parts[:-1]], parts[-1])


def adopt_record(workdir: Path, source: Path, target: Path, name: str) -> None:
    """Give the linked artifact ``target/name`` the Snakemake record of ``source/name``, the source run's folder
    replaced by the target's (in paths, and a parameter that is the run's name): the settings and input checksums
    it was made with. Without it Snakemake judges the link by modification times alone and trains the stage again
    once an input file (a dataset's split list) is newer, or, where an earlier run of that name left a record, by
    that stale record. A source with no record leaves none (only records under .snakemake/metadata are written)."""
    src, dst = snakemake_record(workdir, source / name), snakemake_record(workdir, target / name)
    old, new = os.path.relpath(source, workdir) + "/", os.path.relpath(target, workdir) + "/"

    def moved(value):
        if isinstance(value, str):
            return repr(target.name) if value == repr(source.name) else value.replace(old, new)
        if isinstance(value, list):
            return [moved(v) for v in value]
        if isinstance(value, dict):
            return {moved(k): moved(v) for k, v in value.items()}
        return value

    dst.unlink(missing_ok=True)  # a record of Snakemake's, under workdir/.snakemake/metadata: never a user's file
    if src.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(json.dumps(moved(json.loads(src.read_text()))))


def link_artifacts(source: Path, target: Path, names, workdir: Path | None = None) -> list[str]:
    """Hard-link (copy where linking fails) each artifact of ``source`` that ``target`` does not have yet; the names
    linked, and those an earlier comparison already linked (so a rerun still reports them as reused). With
    ``workdir`` (the runs' Snakemake working directory) each of them takes over its source's Snakemake record
    (``adopt_record``)."""
    done = []
    for name in names:
        src, dst = source / name, target / name
        if not src.exists():
            continue
        if dst.exists():
            if same_artifact(src, dst):
                done.append(name)
            continue
        for path in artifact_files(src):
            out = dst if src.is_file() else dst / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, out)
            except OSError:
                shutil.copy2(path, out)
        done.append(name)
    if workdir is not None:
        for name in done:
            adopt_record(workdir, source, target, name)
    return done


def stage_seconds(log: Path) -> float | None:
    """The wall time a stage's log ends with ("stage took N s"), or None."""
    if not log.is_file():
        return None
    times = STAGE_TIME.findall(log.read_text(errors="replace"))
    return float(times[-1]) if times else None


def method_row(name: str, run_dir: Path, reused: list[str], returncode: int, reused_rounds=()) -> dict:
    """One method's figures from its run's summary.json and logs (the adversarial-erasing rounds' jobs, where it
    ran any, as one more stage: their times summed, ``reused`` where every round was linked)."""
    row = {"method": name, "run": run_dir.name, "ok": returncode == 0, "reused": reused,
           "reused_rounds": list(reused_rounds), "seconds": {}}
    for stage, _, _ in STAGES:
        row["seconds"][stage] = "reused" if stage in reused else stage_seconds(run_dir / "logs" / f"{stage}.log")
    rounds = sorted((run_dir / "adversarial_erasing").glob("regions_round*.h5"))
    if rounds:
        times = [stage_seconds(log) for log in (run_dir / "logs").glob("*_round*.log")]
        ran = [t for t in times if t is not None]
        row["seconds"]["adversarial_erasing"] = sum(ran) if ran else ("reused" if reused_rounds else None)
    summary_path = run_dir / "summary.json"
    if returncode == 0 and summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        row.update(cam=summary["cam"]["miou"], rw=summary["rw"]["miou"], seg=(summary.get("seg") or {}).get("miou"),
                   seg_crf=(summary.get("seg_crf") or {}).get("miou"),
                   cam_iou=summary["cam"]["iou"], rw_iou=summary["rw"]["iou"],
                   seg_iou=(summary.get("seg") or {}).get("iou"),
                   cooccurrence=summary.get("cooccurrence", []),
                   warnings=[w["message"] for w in summary["health"]["warnings"]])
    return row


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
    columns = [s for s, _, _ in STAGES]
    if any("adversarial_erasing" in row["seconds"] for row in rows):
        columns.insert(2, "adversarial_erasing")  # the rounds run between the CAMs and the affinity labels
    out += ["", "Wall time per stage (s; reused = linked from an earlier method's run; adversarial_erasing: its "
            "rounds' jobs that ran, summed):", "",
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


def snakemake_command(args, workdir: Path, *more: str) -> list[str]:
    """The snakemake call of a run of the comparison's config files (plus ``more``: an overlay, flags)."""
    return [sys.executable, "-m", "snakemake", "-s", args.snakefile, "-d", str(workdir), "--cores", str(args.cores),
            "--configfile", *[str(Path(p).resolve()) for p in args.configfile], *more, *args.snakemake_args]


def up_to_date(cmd: list[str], cwd: Path) -> bool:
    """Whether the run of ``cmd`` (a snakemake call) is complete with nothing to redo, each output's settings on
    record: its dry run says "Nothing to be done" and names no rule with missing metadata (a file Snakemake
    did not make there, whose settings it cannot check)."""
    proc = subprocess.run([*cmd, "--dry-run"], cwd=cwd, capture_output=True, text=True)
    said = proc.stdout + proc.stderr
    return proc.returncode == 0 and "Nothing to be done" in said and "missing metadata" not in said


DRY_RUN_FLAGS = {"-n", "--dry-run", "--dryrun"}


def dry_run(args, base: dict, name: str, workdir: Path) -> int:
    """Print each method's plan (Snakemake's job table) and write nothing: no overlay, no link, no table.

    The plans count every stage of every method; a real comparison reuses what methods share."""
    import tempfile

    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for method in dict.fromkeys(args.methods):
            overlay = merged(METHODS[method], {"run_name": f"{name}-{method}"})
            overlay_file = Path(tmp) / f"{method}.yaml"
            overlay_file.write_text(yaml.safe_dump(overlay, sort_keys=True))
            proc = subprocess.run(snakemake_command(args, workdir, str(overlay_file)), cwd=workdir,
                                  capture_output=True, text=True)
            said = proc.stdout + proc.stderr
            table = said[said.find("Job stats:"):].split("\n\n")[0] if "Job stats:" in said else said.strip()[-2000:]
            print(f"== {method} (results/{name}-{method}): {'planned' if proc.returncode == 0 else 'FAILED'}\n{table}\n")
            status |= proc.returncode != 0
    print("dry run: nothing was written; a real comparison reuses the stages the methods share")
    return 1 if status else 0


def main(argv=None) -> int:
    parser = command_parser("compare", __doc__)
    parser.add_argument("--configfile", nargs="+", required=True, help="the config files of the runs (preset, dataset)")
    parser.add_argument("--methods", nargs="+", required=True, choices=sorted(METHODS),
                        help="methods to run, the first is the baseline whose unchanged stages the others reuse")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--snakefile", default=str(Path(__file__).resolve().parent.parent / "Snakefile"))
    parser.add_argument("--directory", default=".", help="the working directory of the runs (default: here)")
    parser.add_argument("--snakemake-args", nargs=argparse.REMAINDER, default=[],
                        help="passed on to every snakemake call, e.g. --resources gpu=1 (must come last)")
    args = parser.parse_args(argv)
    workdir = Path(args.directory).resolve()
    base = {}
    for path in args.configfile:
        if not Path(path).is_file():
            raise SystemExit(f"{path}: config file not found.")
        base = merged(base, yaml.safe_load(Path(path).read_text()) or {})
    try:
        base_config = validate_config(copy.deepcopy(base))
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    name = base_config["run_name"]
    if DRY_RUN_FLAGS & set(args.snakemake_args):
        return dry_run(args, base, name, workdir)
    folder = workdir / "results" / f"{name}-compare"
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    log = setup_logging(folder / "compare.log")
    train = base_config["dataset"]["train_split"]
    rows, finished = [], []  # finished: (config, run folder) of every method that ran, the baseline first
    plain = workdir / "results" / name
    if plain.is_dir() and up_to_date(snakemake_command(args, workdir), workdir):
        log.info("the plain run %s is complete and up to date for these config files: methods reuse from it", plain.name)
        finished.append((base_config, plain))
    for method in dict.fromkeys(args.methods):
        overlay = merged(METHODS[method], {"run_name": f"{name}-{method}"})
        config = validate_config(merged(base, overlay))
        overlay_file = folder / "configs" / f"{method}.yaml"
        overlay_file.write_text(yaml.safe_dump(overlay, sort_keys=True))
        run_dir = workdir / "results" / config["run_name"]
        reused, reused_rounds = [], []
        source, stages, rounds = best_source(finished, config)
        if source is not None:
            names = [n.format(train=train) for stage, _, files in STAGES if stage in stages for n in files]
            linked = link_artifacts(source[1], run_dir, names + round_artifacts(rounds), workdir)
            reused = [stage for stage, _, files in STAGES if stage in stages
                      and all(n.format(train=train) in linked for n in files)]
            reused_rounds = [r for r in range(1, rounds + 1) if f"adversarial_erasing/regions_round{r}.h5" in linked]
            if reused or reused_rounds:
                log.info("%s: reusing %s from %s", method, ", ".join(
                    reused + [f"adversarial-erasing round {r}" for r in reused_rounds]), source[1].name)
        cmd = snakemake_command(args, workdir, str(overlay_file))
        log.info("%s: %s", method, " ".join(cmd))
        with open(folder / f"{method}.snakemake.log", "w") as out:
            returncode = subprocess.run(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT).returncode
        if returncode:
            log.error("%s: the run failed (exit %d); see %s", method, returncode, folder / f"{method}.snakemake.log")
        else:
            finished.append((config, run_dir))
        rows.append(method_row(method, run_dir, reused, returncode, reused_rounds))
    classes = base_config["dataset"]["classes"]
    (folder / "comparison.json").write_text(json.dumps({"dataset": base_config["dataset"].get("name"),
                                                        "classes": classes, "methods": rows}, indent=2) + "\n")
    (folder / "comparison.md").write_text(markdown(rows, classes, base_config["dataset"].get("name", "")))
    log.info("wrote %s", folder / "comparison.md")
    report_ok = comparison_report(args, workdir, folder, log)
    return 0 if all(row["ok"] for row in rows) and report_ok else 1


def comparison_report(args, workdir: Path, folder: Path, log) -> bool:
    """The workflow's ``comparison`` rule (mIoU bars and the table as HTML) and Snakemake's report of it,
    ``report.html`` in the comparison's folder; False (and logged) if either fails."""
    base = [sys.executable, "-m", "snakemake", "-s", args.snakefile, "-d", str(workdir), "--configfile",
            *[str(Path(p).resolve()) for p in args.configfile]]
    report = folder / "report.html"
    for cmd in ([*base, "--cores", "1", *args.snakemake_args, "comparison"], [*base, "--report", str(report), "comparison"]):
        with open(folder / "report.snakemake.log", "a") as out:
            if subprocess.run(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT).returncode:
                log.error("the comparison's report failed; see %s", folder / "report.snakemake.log")
                return False
    log.info("wrote %s", report)
    return True


if __name__ == "__main__":
    sys.exit(main())
