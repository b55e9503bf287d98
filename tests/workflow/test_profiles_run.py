"""profiles/default applies to every run by itself; profiles/slurm plans every job for sbatch.

The tests here run the workflow; those that do not are in tests/unit/test_profiles.py.
"""

import re


from conftest import REPO, planned_jobs, snakemake

GPU_RULES = ["train_classifier", "extract_cams", "train_affinity", "random_walk", "train_segmentation"]
ALL_JOBS = {"make_dataset": 1, "train_classifier": 1, "extract_cams": 1, "make_affinity_labels": 1,
            "train_affinity": 1, "random_walk": 1, "train_segmentation": 1, "evaluate": 1, "figures": 1, "all": 1}


def job_resources(output: str) -> dict:
    """{rule: resources line} from a dry run's job listing."""
    found, rule = {}, None
    for line in output.splitlines():
        if line.startswith("rule ") and line.rstrip().endswith(":"):
            rule = line[5:].strip(" :")
        elif rule and line.strip().startswith("resources:"):
            found[rule] = line.strip()
    return found


def test_default_profile_is_applied_by_itself_and_can_be_switched_off(tmp_path):
    used = snakemake(tmp_path, "-n")
    assert re.search(r"workflow specific profile \S*profiles/default", used.stdout), used.stdout[:500]
    assert "Shell command:" in used.stdout  # printshellcmds
    assert planned_jobs(used.stdout) == ALL_JOBS
    off = snakemake(tmp_path, "-n", "--workflow-profile", "none")
    assert "profiles/default" not in off.stdout and "Shell command:" not in off.stdout


def test_slurm_profile_dry_run_plans_every_job_with_its_gpu(tmp_path):
    proc = snakemake(tmp_path, "-n", "--profile", str(REPO / "profiles" / "slurm"))
    assert planned_jobs(proc.stdout) == ALL_JOBS
    resources = job_resources(proc.stdout)
    for rule in GPU_RULES:
        assert "gpu=1" in resources[rule] and "cpus_per_task=2" in resources[rule], (rule, resources[rule])
    assert "gpu=" not in resources["make_dataset"] and "runtime=60" in resources["make_dataset"]
    assert "python3 -m wsss_steps.gpu_slot -- python3 -m wsss_steps.train_affinity" in proc.stdout
