"""The thick laminate cure case (cases/laminate_cure.toml) against an independent solution.

- Heat + reaction_kinetics conversions (Kamal-Sourour, Bogetti & Gillespie's polyester) + the
  cure cycle (protocol ramps and dwells) on a convective boundary, through the thickness: the
  air follows the cycle's closed form; the centre and surface temperatures, the peak overshoot
  and peak centre temperature agree with tests/cure_reference.py (vertex-centred finite
  volumes, scipy BDF) within 0.5 K, the case's times to 50 % and 95 % cure at centre and
  surface within a minute; the run stops at the event "min(degree_of_cure) > 0.95".
- The thickness is set by one override (--set parameters.thickness=...), the case gives the
  same numbers on 1 and 2 MPI ranks, and a 2D strip of the cross-section agrees with 1D.
"""

import tomllib

import numpy as np

from app.simulation import Simulation
from tests.conftest import CASES, assert_same_by_units, read_quantities, runs_on_ranks, scalebridge
from tests.cure_reference import Laminate, first_time, solve

CASE = CASES / "laminate_cure.toml"


def compare_with_method_of_lines(q: dict, thickness: float) -> None:
    times = np.asarray(q["time_s"])
    laminate = Laminate(thickness=thickness)
    # on 20 minutes past the run's end, which the event ends as the last point passes 95 %
    later = times[-1] + 60.0 * np.arange(1, 21)
    extended = solve(laminate, 201, np.concatenate([times, later]))
    reference = {key: value[: len(times)] for key, value in extended.items()}
    # the protocol's ramps and dwells drive the air through the cure cycle's closed form
    air = np.array([laminate.air(t) for t in times])
    assert np.max(np.abs(np.asarray(q["surface_air_temperature_K"]) - air)) < 1e-8
    for where in ("centre", "surface"):
        ours = np.asarray(q[f"{where}_temperature_K"])
        theirs = reference[f"{where}_temperature"]
        assert np.max(np.abs(ours - theirs)) < 0.5, where  # measured 0.014 K (2.54 cm)
    # the case's own figures: the peak overshoot, the peak centre temperature (running maxima)
    overshoot = q["peak_overshoot_K"][-1]
    expected = np.max(reference["centre_temperature"] - reference["surface_temperature"])
    assert abs(overshoot - expected) < 0.5, (overshoot, expected)
    peak = np.max(reference["centre_temperature"])
    assert abs(q["peak_centre_temperature_K"][-1] - peak) < 0.5
    # the probes sit on nodes of the 1 mm cells (the cell mean of alpha there differs from the
    # node's value by O(h)): times to 50 % and 95 % cure (first crossings) within a minute
    for where in ("centre", "surface"):
        for level, name in ((0.5, "half_cured"), (0.95, "cured_95")):
            theirs = first_time(
                np.concatenate([times, later]), extended[f"{where}_degree_of_cure"], level
            )
            ours = q[f"{where}_{name}_min"][-1] * 60
            assert abs(ours - theirs) < 60.0, (where, level, ours, theirs)


def test_laminate_matches_method_of_lines_on_one_and_two_ranks(tmp_path):
    serial, parallel = runs_on_ranks(CASE, tmp_path)
    compare_with_method_of_lines(serial, 0.0254)
    # the event ended the run once the least cured point passed 95 %
    assert serial["cure_min_degree_of_cure"][-1] > 0.95 > serial["cure_min_degree_of_cure"][-2]
    assert serial["time_s"][-1] < 300 * 60
    # the heat the cure releases is the heat source heat integrates (lumped = false)
    released = np.asarray(serial["cure_conversion_heat_W_per_m2"])
    assert np.allclose(serial["heat_generated_W_per_m2"], released, rtol=1e-10, atol=0)
    assert_same_by_units(serial, parallel, rtol=1e-8)


def test_thickness_from_the_command_line(tmp_path):
    """1.38 cm by one override: the half-thickness mesh and the surface probe follow it."""
    process = scalebridge(
        "run", CASE, "-o", tmp_path / "thin", "-q", "--set", "parameters.thickness=1.38 cm"
    )
    assert process.returncode == 0, process.stderr
    compare_with_method_of_lines(read_quantities(tmp_path / "thin"), 0.0138)


def test_two_dimensional_strip_agrees_with_the_through_thickness_run():
    """A strip of the cross-section (x through the half thickness, y along the laminate, its
    cut sides insulated) on triangles: the 1D answer, to 0.05 K, 1e-3 in the centre's degree of
    cure and half a minute in the times to 50 % and 95 % cure (measured 0.009 K, 8e-5,
    0.1 min)."""
    case = tomllib.loads(CASE.read_text())
    one = Simulation.from_case(case, base_dir=CASES).run().quantities
    case["mesh"] = {"type": "rectangle", "length": ["thickness/2", "thickness/4"], "cells": [24, 3]}
    probes = case["output"]["probes"]
    probes["centre"]["at"] = [0.0, "thickness/8"]
    probes["surface"]["at"] = ["thickness/2", "thickness/8"]
    two = Simulation.from_case(case, base_dir=CASES).run().quantities
    rows = min(len(one["time_s"]), len(two["time_s"]))  # the event may land a step apart
    assert abs(rows - len(one["time_s"])) <= 1
    for column, tolerance in (
        ("centre_temperature_K", 0.05),
        ("surface_temperature_K", 0.05),
        ("centre_degree_of_cure", 1e-3),
        # the cellwise cure read in the cell at the probe: a triangle's and an interval's
        # centres lie at other depths below the surface (measured 3e-3)
        ("surface_degree_of_cure", 1e-2),
    ):
        gap = np.abs(np.asarray(one[column][:rows]) - np.asarray(two[column][:rows]))
        assert gap.max() < tolerance, column
    for column in ("centre_half_cured_min", "surface_half_cured_min", "centre_cured_95_min"):
        assert abs(one[column][-1] - two[column][-1]) < 0.5, column
    assert abs(one["peak_overshoot_K"][-1] - two["peak_overshoot_K"][-1]) < 0.05
