"""profiles/default applies to every run by itself; profiles/slurm plans every job for sbatch.

The tests here run no workflow; those that do are in tests/workflow/test_profiles_run.py.
"""


import yaml

from conftest import REPO

GPU_RULES = ["train_classifier", "extract_cams", "train_affinity", "random_walk", "train_segmentation"]
ALL_JOBS = {"make_dataset": 1, "train_classifier": 1, "extract_cams": 1, "make_affinity_labels": 1,
            "train_affinity": 1, "random_walk": 1, "train_segmentation": 1, "evaluate": 1, "figures": 1, "all": 1}


def test_default_profile_only_sets_flags_that_are_safe_under_slurm():
    profile = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert profile["resources"] == {"gpu": 2} and profile["keep-going"] is False
    assert "executor" not in profile and "jobs" not in profile and "default-resources" not in profile
