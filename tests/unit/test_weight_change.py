"""scripts/weight_change.py: the relative change of a backbone's convolution weights, worked out by hand."""

import h5py
import pytest
import torch

from conftest import load_script
from wsss_steps.lib.artifacts import write_state_dict


def _states():
    reference = {"conv1.weight": torch.ones(1, 1, 1, 4), "layer1.0.conv1.weight": torch.ones(1, 1, 2, 2),
                 "bn1.weight": torch.ones(4), "fc.weight": torch.ones(2, 4)}
    trained = {"backbone.net.conv1.weight": torch.tensor([[[[2.0, 1.0, 1.0, 1.0]]]]),
               "backbone.net.layer1.0.conv1.weight": torch.ones(1, 1, 2, 2),
               "backbone.net.bn1.weight": torch.full((4,), 9.0), "classifier.weight": torch.ones(3, 4, 1, 1)}
    return trained, reference


def test_relative_change_is_the_norm_of_the_difference_over_the_norm_of_the_start():
    trained, reference = _states()
    change = load_script("weight_change").relative_change(trained, reference)
    # conv1: ||(1, 0, 0, 0)|| / ||(1, 1, 1, 1)|| = 1 / 2; layer1 unchanged; BatchNorm and the head are not counted.
    assert change == pytest.approx({"conv1": 0.5, "layer1": 0.0})


def test_the_command_reads_a_weights_file_and_a_state_dict(tmp_path, capsys):
    trained, reference = _states()
    with h5py.File(tmp_path / "w.h5", "w") as store:
        write_state_dict(store.create_group("state_dict"), trained)
    torch.save(reference, tmp_path / "ref.pth")
    assert load_script("weight_change").main([str(tmp_path / "w.h5"), str(tmp_path / "ref.pth")]) == 0
    assert capsys.readouterr().out.split() == ["conv1", "0.50000", "layer1", "0.00000"]


def test_a_network_without_the_reference_layers_is_refused():
    with pytest.raises(ValueError, match="no convolution weight"):
        load_script("weight_change").relative_change({"x": torch.ones(1)}, {"conv1.weight": torch.ones(1, 1, 1, 1)})
