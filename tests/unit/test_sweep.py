"""The walk sweep (the paper's Fig. 8): point names and settings, and the sweep_walk target on the tiny run,
which reruns only the walk, caches each point and writes a CSV and a plot.

The tests here run no workflow; those that do are in tests/workflow/test_sweep_run.py.
"""


import pytest

from wsss_steps.lib.sweep_points import SweepError, point_names, point_settings

WALK = {"alpha": 16, "beta": 8, "t": 256, "stride": 8, "background": "threshold", "bg_threshold": 0.5}


def test_points_name_the_grid_then_the_alphas_and_set_only_what_they_vary():
    assert point_names({"beta": [2, 8.0], "t": [16, 64], "alpha": [4, 24]}) == [
        "beta2_t16", "beta2_t64", "beta8_t16", "beta8_t64", "alpha4", "alpha24"]
    assert point_settings("beta4_t64", WALK) == {**WALK, "beta": 4.0, "t": 64}  # background kept: the run's own
    assert point_settings("alpha24", WALK) == {**WALK, "background": "power", "alpha": 24.0}  # psa's background
    with pytest.raises(SweepError, match="beta8t256"):
        point_settings("beta8t256", WALK)


def test_cam_points_name_the_scale_sets_and_set_only_the_scales():
    from wsss_steps.lib.sweep_points import cam_point_names, cam_point_settings

    assert cam_point_names({"cam_scales": [[1.0], [0.5, 1, 1.5, 2.0]]}) == ["scales1", "scales0.5_1_1.5_2"]
    cams = {"scales": [1.0], "flip": True}
    assert cam_point_settings("scales0.5_1_1.5_2", cams) == {"scales": [0.5, 1.0, 1.5, 2.0], "flip": True}
    with pytest.raises(SweepError, match="scales1-2"):
        cam_point_settings("scales1-2", cams)
