"""Same config and seed, same arrays; a second working directory takes the expensive stages from the cache."""

import os

from conftest import arrays, snakemake, write_config

ARRAY_ARTIFACTS = ["cams_train.h5", "affinity_labels_train.h5", "pseudo_labels_train.h5",
                   "classifier.weights.h5", "affinity.weights.h5", "segmentation.weights.h5",
                   "segmentation_predictions.h5"]
CACHED = ["train_classifier", "extract_cams", "make_affinity_labels", "train_affinity", "random_walk",
          "train_segmentation"]


def _cached_run(workdir, cache, **kwargs):
    env_cache = os.environ.get("SNAKEMAKE_OUTPUT_CACHE")
    os.environ["SNAKEMAKE_OUTPUT_CACHE"] = str(cache)
    try:
        return snakemake(workdir, "--cores", "2", "--cache", **kwargs)
    finally:
        if env_cache is None:
            os.environ.pop("SNAKEMAKE_OUTPUT_CACHE")
        else:
            os.environ["SNAKEMAKE_OUTPUT_CACHE"] = env_cache


def test_two_runs_identical_arrays_and_the_second_workdir_recomputes_nothing_cacheable(tiny_run, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _cached_run(first, cache)

    # determinism: a second run of the same config gives the same arrays, byte for byte
    reference = tiny_run[0] / "results" / "tiny"
    for name in ARRAY_ARTIFACTS:
        a, b = arrays(reference / name), arrays(first / "results" / "tiny" / name)
        assert a.keys() == b.keys(), name
        for key in a:
            assert a[key].dtype == b[key].dtype and a[key].tobytes() == b[key].tobytes(), f"{name}:{key}"

    proc = _cached_run(second, cache)
    logs = second / "results" / "tiny" / "logs"
    for rule in CACHED:  # Snakemake touches the log of a job it takes from the cache; nothing writes to it
        log = logs / f"{rule}.log"
        assert not log.exists() or log.stat().st_size == 0, f"{rule} ran instead of coming from the cache"
    assert proc.stdout.count("from cache") >= len(CACHED)
    assert (second / "results" / "tiny" / "summary.json").is_file()

    # a changed parameter misses the cache for its stage and what follows, nothing before it; the run's name is not
    # part of the key (regression: the checkpoint path in params held the run folder, so another run name trained
    # the classifier again)
    third = tmp_path / "third"
    third.mkdir()
    config = write_config(tmp_path / "beta.yaml", random_walk={"beta": 6}, run_name="other")
    _cached_run(third, cache, configfiles=(config,))
    ran = {p.stem for p in (third / "results" / "other" / "logs").glob("*.log") if p.stat().st_size > 0}
    assert (third / "results" / "other" / "classifier.weights.h5").is_file()
    assert {"random_walk", "train_segmentation", "evaluate"} <= ran
    assert not ran & {"train_classifier", "extract_cams", "make_affinity_labels", "train_affinity"}
