"""Config validation: every bad value stops with a message naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from wsss_steps.lib.config import ConfigError, load_config, validate_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def good():
    return load_config(REPO / "config.yaml")


@pytest.mark.parametrize("path, value, message", [
    (("random_walk", "beta"), 0.5, "'random_walk.beta'"),
    (("random_walk", "t"), "many", "'random_walk.t'"),
    (("affinity_labels", "alpha_low"), 0, "'affinity_labels.alpha_low'"),
    (("affinity_labels", "alpha_high"), -1, "'affinity_labels.alpha_high'"),
    (("random_walk", "alpha"), 0, "'random_walk.alpha'"),
    (("random_walk", "stride"), 16, "'random_walk.stride'"),
    (("affinity", "radius"), 0, "'affinity.radius'"),
    (("classifier", "epochs"), 1.5, "'classifier.epochs'"),
    (("device",), "gpu", "'device'"),
    (("dataset", "classes"), ["background"], "'dataset.classes'"),
])
def test_bad_values_name_the_key(good, path, value, message):
    config = copy.deepcopy(good)
    target = config
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate_config(config)


def test_unknown_key_is_named(good):
    config = copy.deepcopy(good)
    config["affinity"]["raduis"] = 5
    with pytest.raises(ConfigError, match=r"unknown key 'affinity\.raduis'"):
        validate_config(config)


def test_missing_key_is_named(good):
    config = copy.deepcopy(good)
    del config["cams"]["flip"]
    with pytest.raises(ConfigError, match=r"missing key 'cams\.flip'"):
        validate_config(config)


def test_alpha_low_must_be_below_alpha_high(good):
    config = copy.deepcopy(good)
    config["affinity_labels"]["alpha_low"] = 30
    with pytest.raises(ConfigError, match="alpha_low"):
        validate_config(config)


def test_irn_on_a_random_frozen_backbone_is_refused_naming_the_key(good):
    config = copy.deepcopy(good)
    config["backbone"]["weights"] = None
    config["affinity"].update(method="irn", init_from_classifier=False)
    with pytest.raises(ConfigError, match=r"'affinity\.init_from_classifier': IRN freezes its backbone"):
        validate_config(config)
    config["affinity"]["init_from_classifier"] = True
    validate_config(config)


def test_every_schema_property_is_documented():
    schema = yaml.safe_load((REPO / "wsss_steps" / "schemas" / "config.schema.yaml").read_text())

    def walk(node, where):
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{where}{name} has no description"
            walk(prop, f"{where}{name}.")

    walk(schema, "")


def test_default_config_is_valid(good):
    assert good["dataset"]["classes"][0] == "background"


@pytest.mark.parametrize("section", ["classifier", "affinity", "segmentation"])
def test_a_training_section_gives_epochs_or_steps(good, section):
    both = copy.deepcopy(good)
    both[section]["steps"] = 100
    with pytest.raises(ConfigError, match=rf"'{section}\.steps': {section} gives both epochs and steps"):
        validate_config(both)
    neither = copy.deepcopy(good)
    del neither[section]["epochs"]
    with pytest.raises(ConfigError, match=rf"'{section}\.steps': {section} gives neither epochs nor steps"):
        validate_config(neither)
    steps = copy.deepcopy(good)
    del steps[section]["epochs"]
    steps[section]["steps"] = 100
    validate_config(steps)


def test_the_run_name_defaults_to_dataset_and_preset(good):
    config = copy.deepcopy(good)
    del config["run_name"]
    assert validate_config(copy.deepcopy(config))["run_name"] == "synthetic"
    config["preset"] = "cpu_photos"
    assert validate_config(config)["run_name"] == "synthetic-cpu_photos"


def test_class_0_must_be_the_background_by_name():
    from wsss_steps.lib.config import ConfigError, check_background_first, is_background_name

    assert [is_background_name(n) for n in ("background", "_background_", "__background__", "Background", "bg",
                                            "back-ground", "horse", "backdrop")] == [True] * 6 + [False, False]
    check_background_first(["background", "horse"])
    with pytest.raises(ConfigError, match=r"'background' is class 1, .* e\.g\. \[background, horse\]"):
        check_background_first(["horse", "background"])
    with pytest.raises(ConfigError, match=r"starts with 'horse'; put 'background' first, e\.g\. \[background, horse, cat\]"):
        check_background_first(["horse", "cat"])


def test_the_methods_are_listed_once_in_the_schema_and_derived_elsewhere():
    from wsss_steps.lib.config import method_blocks, method_choices
    from wsss_steps.lib.runs import comparison_methods
    from wsss_steps.evaluate import SEG_ROWS
    from wsss_steps.train_classifier import LOSSES as CLASSIFIER_LOSSES
    from wsss_steps.train_segmentation import LOSSES as SEGMENTATION_LOSSES

    choices = method_choices()
    assert choices["classifier"][0] == "cam" and choices["cams"][0] == "cam"  # each list starts with the default
    assert choices["segmentation"][0] == "random_walk" and choices["affinity"][0] == "affinitynet"
    assert set(CLASSIFIER_LOSSES) == set(choices["classifier"])
    assert set(SEGMENTATION_LOSSES) == set(SEG_ROWS) == set(choices["segmentation"])
    assert {m for methods in choices.values() for m in methods[1:]} <= set(comparison_methods())  # but the defaults
    assert method_blocks()["classifier"] == ("hide_and_seek", "puzzle_cam", "acol", "eps")
    assert method_blocks()["affinity"] == ("irn",)


@pytest.mark.parametrize("argument, value, message", [
    ("--backbone", '{"name": "tiny"', "argument --backbone: not valid JSON or YAML"),
    ("--params", "no/such/file.yaml", "argument --params: no/such/file.yaml: parameter file not found."),
    ("--params", '{"alpha": 16,}', "argument --params: not valid JSON or YAML"),
    ("--affinity-params", '{"radius": 3}', "argument --affinity-params: missing key 'head_channels'"),
    ("--params", '{"alpha": 16, "beta": 8}', "argument --params: missing key 't' (the random_walk section"),
])
def test_a_bad_settings_argument_is_one_sentence_naming_it_with_exit_status_2(capsys, argument, value, message):
    from wsss_steps.random_walk import main

    good = {"--dataset": '{"root": "data", "classes": ["background", "cat"]}', "--backbone": '{"name": "tiny"}',
            "--params": '{"alpha": 16, "beta": 8, "t": 256}', "--affinity-params": '{"radius": 3, "head_channels": [1, 1, 1]}',
            "--cams": "c.h5", "--affinity": "a.h5", "--out": "o.h5"}
    good[argument] = value
    with pytest.raises(SystemExit) as stop:
        main([word for pair in good.items() for word in pair])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and "Traceback" not in err


def test_backbone_weights_are_a_file_or_a_name_torchvision_knows(tmp_path):
    from wsss_steps.lib.config import weights_file

    assert weights_file(None) is None and weights_file("IMAGENET1K_V2") is None  # downloaded by the stage
    (tmp_path / "r50.pth").write_bytes(b"state")
    assert weights_file(str(tmp_path / "r50.pth")) == tmp_path / "r50.pth"
    with pytest.raises(ConfigError, match=r"'backbone.weights': IMAGENET1K_V3 is not a torchvision ResNet-50 weights "
                                          r"name \(IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT\)"):
        weights_file("IMAGENET1K_V3")
    with pytest.raises(ConfigError, match=r"'backbone.weights': .*nowhere.pth: file not found"):
        weights_file(str(tmp_path / "nowhere.pth"))
