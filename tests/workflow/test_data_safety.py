"""The workflow never deletes or overwrites a dataset it did not write.

Regression tests for a data-loss bug: `snakemake --configfile <the VOC 2012 config>`, run from the
repository root, merged the user's config over the built-in demo's config.yaml, the demo's
`dataset.generate` block survived the merge, and with `train_aug.txt` missing (or with `-F`) the
generator replaced the user's VOC tree with synthetic images. These tests run the README's commands
from the repository root, where that merge happened, and compare every byte of the tree before and after.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY, planned_jobs
from fake_voc import VOC_CLASSES, write_fake_voc
from wsss_steps.data.synthetic import MARKER, NotOurs, generate


def tree_digest(root: Path) -> dict:
    """Every path under ``root`` with the SHA-256 of its bytes (folders as 'dir')."""
    out = {}
    for path in sorted(Path(root).rglob("*")):
        out[str(path.relative_to(root))] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def from_repo_root(*args, configfiles):
    """`snakemake <args> --configfile <files>` with the repository root as working directory, as the README says."""
    cmd = [sys.executable, "-m", "snakemake", *args, "--configfile", *map(str, configfiles)]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900)


def voc_config(tmp_path, root) -> Path:
    """configs/presets/voc12_gpu.yaml with configs/datasets/voc12.yaml as shipped, pointed at ``root``, with a run
    name no other test uses."""
    config = {**yaml.safe_load((REPO / "configs" / "presets" / "voc12_gpu.yaml").read_text()),
              **yaml.safe_load((REPO / "configs" / "datasets" / "voc12.yaml").read_text())}
    config["dataset"]["root"] = str(root)
    config["run_name"] = f"data-safety-{tmp_path.name}"
    config["device"] = "auto"  # the preset's device: cuda would stop planning on a machine without a GPU
    path = tmp_path / "voc.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def plain_config(tmp_path, root, **dataset) -> Path:
    """The tiny config on a dataset on disk (no generate block), as a user writes it for their own data."""
    config = yaml.safe_load(TINY.read_text())
    config["dataset"] = {"name": "mine", "root": str(root), "classes": list(VOC_CLASSES), "ignore_index": 255,
                         "train_split": "train", "val_split": "val", **dataset}
    config["run_name"] = f"data-safety-{tmp_path.name}"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def voc_tree(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    write_fake_voc(root)
    return root


@pytest.mark.parametrize("extra", [[], ["-F"]], ids=["plain", "forceall"])
def test_voc_command_with_train_aug_missing_leaves_the_tree_alone(tmp_path, voc_tree, extra):
    (voc_tree / "ImageSets/Segmentation/train_aug.txt").unlink()
    before = tree_digest(voc_tree.parent)
    proc = from_repo_root("--cores", "2", *extra, configfiles=[voc_config(tmp_path, voc_tree)])
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert f"{voc_tree}/ImageSets/Segmentation/train_aug.txt: split list not found" in proc.stdout, proc.stdout[-3000:]
    assert "make_dataset" not in proc.stdout
    assert tree_digest(voc_tree.parent) == before
    assert not (voc_tree.parent / ".VOC2012.tmp").exists()


def test_own_dataset_with_val_list_missing_leaves_the_tree_alone(tmp_path, voc_tree):
    (voc_tree / "ImageSets/Segmentation/val.txt").unlink()
    before = tree_digest(voc_tree.parent)
    proc = from_repo_root("--cores", "2", configfiles=[plain_config(tmp_path, voc_tree)])
    assert proc.returncode != 0
    assert f"{voc_tree}/ImageSets/Segmentation/val.txt: split list not found" in proc.stdout, proc.stdout[-3000:]
    assert tree_digest(voc_tree.parent) == before


def test_forceall_on_a_complete_voc_tree_plans_no_dataset_job(tmp_path, voc_tree):
    before = tree_digest(voc_tree.parent)
    proc = from_repo_root("-n", "-F", configfiles=[voc_config(tmp_path, voc_tree)])
    assert proc.returncode == 0, proc.stdout[-3000:]
    jobs = planned_jobs(proc.stdout)
    assert "make_dataset" not in jobs and jobs.get("train_classifier") == 1, jobs
    assert tree_digest(voc_tree.parent) == before


@pytest.mark.parametrize("extra", [[], ["-F"]], ids=["plain", "forceall"])
def test_generate_block_pointing_at_a_user_tree_stops_at_planning(tmp_path, voc_tree, extra):
    (voc_tree / "ImageSets/Segmentation/val.txt").unlink()  # without -F, make_dataset would be due
    config = plain_config(tmp_path, voc_tree, generate={"image_size": 64, "train_images": 4, "val_images": 2,
                                                        "seed": 0})
    before = tree_digest(voc_tree.parent)
    proc = from_repo_root("--cores", "2", *extra, configfiles=[config])
    assert proc.returncode != 0
    assert f"{voc_tree}: this folder was not written by the built-in dataset generator" in proc.stdout, \
        proc.stdout[-3000:]
    assert tree_digest(voc_tree.parent) == before


def test_a_users_config_file_does_not_inherit_the_demo_config(tmp_path, voc_tree):
    """The demo's config.yaml is read only when no --configfile is given (its keys would fill the gaps)."""
    config = yaml.safe_load(voc_config(tmp_path, voc_tree).read_text())
    del config["evaluate"]
    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump(config))
    proc = from_repo_root("-n", configfiles=[partial])
    assert proc.returncode != 0 and "missing key 'evaluate'" in proc.stdout, proc.stdout[-3000:]


# The generator itself (make_dataset.generate).

def test_generator_refuses_a_folder_it_did_not_write(tmp_path):
    root = tmp_path / "mine"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "notes.txt").write_text("keep me")
    with pytest.raises(NotOurs, match="was not written by the built-in dataset generator"):
        generate(root, ["background", "a"], 32, 2, 1, seed=0)
    assert (root / "sub" / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / ".mine.tmp").exists()


def test_generator_replaces_its_own_tree_and_fills_empty_folders(tmp_path):
    root = tmp_path / "gen"
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)  # what Snakemake makes before the job runs
    generate(root, ["background", "a"], 32, 2, 1, seed=0)
    assert (root / MARKER).is_file()
    first = tree_digest(root)
    generate(root, ["background", "a"], 32, 2, 1, seed=0)
    assert tree_digest(root) == first


def test_make_dataset_command_refuses_with_one_line(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "train.txt").write_text("a\n")
    proc = subprocess.run([sys.executable, "-m", "wsss_steps.make_dataset", "--dataset",
                           f'{{"root": "{root}", "classes": ["background", "a"], '
                           f'"generate": {{"image_size": 32, "train_images": 2, "val_images": 1, "seed": 0}}}}'],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "ERROR" in proc.stderr and "was not written by the built-in dataset generator" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert [p.name for p in root.iterdir()] == ["train.txt"]


def test_a_dataset_with_list_dir_set_is_planned_from_that_folder(tmp_path, voc_tree):
    """Regression: the rules built the split-list path as root/ImageSets/Segmentation, ignoring dataset.list_dir."""
    (voc_tree / "ImageSets" / "Segmentation").rename(voc_tree / "lists")
    proc = from_repo_root("-n", configfiles=[plain_config(tmp_path, voc_tree, list_dir="lists")])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert planned_jobs(proc.stdout).get("train_classifier") == 1
