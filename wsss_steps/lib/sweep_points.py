"""The names of sweep points and the settings each stands for (rules/sweep.smk plans with these; no PyTorch here,
so planning a workflow does not import it). The stage that scores the points is ``wsss_steps.sweep``."""

from __future__ import annotations

import re

POINT = re.compile(r"^(?:beta(?P<beta>[0-9.]+)_t(?P<t>[0-9]+)|alpha(?P<alpha>[0-9.]+))$")
CAM_POINT = re.compile(r"^scales(?P<scales>[0-9.]+(?:_[0-9.]+)*)$")


class SweepError(ValueError):
    """A point name that is neither beta<b>_t<t> nor alpha<a>."""


def point_settings(point: str, walk: dict) -> dict:
    """The random_walk settings of a sweep point: ``walk`` with beta and t, or psa's power background with alpha, set."""
    match = POINT.match(point)
    if match is None:
        raise SweepError(f"sweep point '{point}': expected beta<b>_t<t> (e.g. beta8_t256) or alpha<a> (e.g. alpha16).")
    if match["alpha"] is not None:
        return {**walk, "background": "power", "alpha": float(match["alpha"])}
    return {**walk, "beta": float(match["beta"]), "t": int(match["t"])}


def point_names(sweep: dict) -> list[str]:
    """Every point of a ``sweep`` section: the beta x t grid, then the alpha list."""
    number = lambda v: f"{v:g}"  # noqa: E731 - 8.0 and 8 name the same point
    return ([f"beta{number(b)}_t{t}" for b in sweep["beta"] for t in sweep["t"]]
            + [f"alpha{number(a)}" for a in sweep["alpha"]])


def cam_point_names(sweep: dict) -> list[str]:
    """Every CAM point of a ``sweep`` section: one per scale set of cam_scales."""
    return ["scales" + "_".join(f"{v:g}" for v in scales) for scales in sweep["cam_scales"]]


def cam_point_settings(point: str, cams: dict) -> dict:
    """The extract_cams settings of a CAM point: ``cams`` with its scales set."""
    match = CAM_POINT.match(point)
    if match is None:
        raise SweepError(f"CAM sweep point '{point}': expected scales<s1>_<s2>... (e.g. scales0.5_1_1.5_2).")
    return {**cams, "scales": [float(v) for v in match["scales"].split("_")]}
