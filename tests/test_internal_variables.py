"""Internal variables as a framework feature: stored, advanced only on accepted steps, written,
probed, restarted, refused where they cannot work.

A small plug-in with memory (tests/peak_plugin.py: the highest temperature each cell or
quadrature point has seen) and the plastic bar of cases/cyclic_bar.toml exercise it.
"""

import json
import math
import re
import tomllib

import numpy as np
import pytest

from app.errors import CaseError
from app.simulation import Simulation
from app.testing import registered
from tests.conftest import CASES, assert_same_by_units, scalebridge
from tests.peak_plugin import PeakTemperature
from tests.test_plasticity import AREA, H_KIN, LENGTH, SIGMA_Y, E, march, uniaxial


def heating(at: str = "cell", **extra) -> dict:
    """A 1D rod whose prescribed temperature rises until t = 5 s and falls back by t = 10 s,
    hottest at x = 1: T = 300 + 50 sin(pi t/10) (1 + x)."""
    return {
        "title": "peak temperature",
        "mesh": {"type": "interval", "length": [1.0], "cells": [4]},
        "physics": {
            "oven": {
                "type": "prescribed",
                "fields": {"temperature": {"units": "K", "value": "300 + 50*sin(pi*t/10)*(1 + x)"}},
            },
            "peak_temperature": {"at": at},
        },
        "time": {"end": 10.0, "dt": 1.0},
    } | extra


def run_peak(case: dict, folder=None):
    with registered(PeakTemperature):
        sim = Simulation.from_case(case)
    return sim, sim.run(folder)


def bar(**time) -> dict:
    case = tomllib.loads((CASES / "cyclic_bar.toml").read_text())
    case["time"] |= time
    return case


# The memory itself -------------------------------------------------------------------------------
@pytest.mark.parametrize("at", ["cell", "quadrature"])
def test_an_internal_variable_remembers_after_the_cause_is_gone(at):
    """At t = 10 s the rod is back at 300 K, but each place remembers its peak, reached at
    t = 5 s: 300 + 50 (1 + x) at the cell midpoints (the cell means of the quadrature values:
    linear in x, so the same)."""
    case = heating(at, output={"probes": {"end": [0.9], "middle": [0.3]}})
    sim, result = run_peak(case)
    q = result.quantities
    assert q["end_peak_temperature_K"][-1] == pytest.approx(300 + 50 * 1.875, rel=1e-12)
    assert q["middle_peak_temperature_K"][-1] == pytest.approx(300 + 50 * 1.375, rel=1e-12)
    assert q["end_temperature_K"][-1] == pytest.approx(300, abs=1e-9)
    rising = q["time_s"] <= 5
    assert q["hottest_ever_K"][rising] == pytest.approx(q["end_peak_temperature_K"][rising], abs=30)
    assert np.all(np.diff(q["hottest_ever_K"]) >= 0)
    stored = sim.store["peak_temperature"]
    assert stored.pointwise == (at == "quadrature")
    assert stored.history[0].x.array == pytest.approx(stored.function.x.array, abs=0)


def test_a_rejected_step_leaves_the_memory_untouched():
    """An event locates T = 340 K at x = 1 by rejecting the steps that overshoot and retrying
    shorter ones; the peak it keeps is the temperature of the accepted state, not the
    overshoot of a rejected attempt."""
    case = heating("cell", events=[{"when": "hottest_ever_K > 340"}])
    with registered(PeakTemperature):
        sim = Simulation.from_case(case)
    rejected = []
    rollback = sim.rollback
    sim.rollback = lambda: (
        rejected.append(sim.store["peak_temperature"].function.x.array.max()),
        rollback(),
    )
    result = sim.run()
    assert len(rejected) >= 2 and max(rejected) > 350  # the first attempt went to 355 K
    assert result.event == "hottest_ever_K > 340"
    q = result.quantities
    t = q["time_s"][-1]
    peak_of_last_cell = 300 + 50 * math.sin(math.pi * t / 10) * 1.875
    assert q["hottest_ever_K"][-1] == pytest.approx(peak_of_last_cell, rel=1e-12)
    assert 340 < q["hottest_ever_K"][-1] < 340.01


def test_step_and_rollback_restore_every_level_bitwise():
    """A plastic step evaluates the internal variables; rolling it back restores their latest
    and accepted values bit for bit, and the retried step gives the same state again."""
    sim = Simulation.from_case(bar())
    march(sim, 0.1, 0.025)  # into the plastic range
    internals = sim.store.internals()
    before = [[level.x.array.copy() for level in (f.function, *f.history)] for f in internals]
    assert sim.step(0.1, 0.025).converged
    first = [f.function.x.array.copy() for f in internals]
    assert any(not np.array_equal(a, b[0]) for a, b in zip(first, before, strict=True))
    sim.rollback()
    for field, saved in zip(internals, before, strict=True):
        for level, array in zip((field.function, *field.history), saved, strict=True):
            assert np.array_equal(level.x.array, array), field.spec.name
    assert sim.step(0.1, 0.025).converged
    for field, array in zip(internals, first, strict=True):
        assert np.array_equal(field.function.x.array, array), field.spec.name


def test_an_event_in_the_plastic_range_keeps_the_closed_form():
    """Locating "stress > 230 MPa" rejects plastic steps after they were evaluated; had a
    rejected attempt's plastic strain survived, the retried steps would start from it."""
    case = bar(end=0.25)
    case["events"] = [{"when": f"reaction_top_y_N > {230e6 * AREA}"}]
    sim = Simulation.from_case(case)
    rejected = []
    rollback = sim.rollback
    sim.rollback = lambda: (rejected.append(sim.evaluate_quantities()), rollback())
    result = sim.run()
    assert rejected and max(q["max_equivalent_plastic_strain"] for q in rejected) > 0
    q = result.quantities
    strain = q["displacement_top_y_m"] / LENGTH
    stress = q["reaction_top_y_N"] / AREA
    assert np.abs(stress - uniaxial(strain, E, SIGMA_Y, H_KIN)).max() < 1e-8 * SIGMA_Y
    assert stress[-1] == pytest.approx(230e6, rel=1e-5)


# Checkpoint state -----------------------------------------------------------------------------
def test_internal_state_restarts_a_run_exactly():
    """The store's internal state (plus the displacement) taken mid-cycle and restored into a
    fresh simulation continues exactly like the uninterrupted run; rows given in another order
    (another partition's) are matched by their original cell numbers."""
    whole = Simulation.from_case(bar())
    march(whole, 0.4, 0.025)
    state = whole.store.internal_state()
    displacement = whole.store["displacement"].function.x.array.copy()
    _, uninterrupted = march(whole, 0.7, 0.025, start=0.4)  # through a reversal

    restarted = Simulation.from_case(bar())
    restarted.compile()
    shuffled = {}
    for name, levels in state.items():
        order = np.random.default_rng(1).permutation(len(levels["cells"]))
        shuffled[name] = {key: rows[order] for key, rows in levels.items()}
    restarted.store.restore_internal_state(shuffled)
    restarted.store["displacement"].function.x.array[:] = displacement
    _, restart = march(restarted, 0.7, 0.025, start=0.4)
    assert max(restart["max_equivalent_plastic_strain"]) > 0
    assert_same_by_units(
        {k: list(v) for k, v in restart.items()},
        {k: list(v) for k, v in uninterrupted.items()},
        rtol=1e-10,
    )


def test_internal_state_refuses_a_mesh_it_does_not_cover():
    sim = Simulation.from_case(bar())
    sim.compile()
    state = sim.store.internal_state()
    state["plastic_strain"] = {key: rows[:-1] for key, rows in state["plastic_strain"].items()}
    with pytest.raises(ValueError, match="misses cells"):
        sim.store.restore_internal_state(state)


# Output ---------------------------------------------------------------------------------------
def test_internal_variables_in_the_field_files_and_plots(tmp_path):
    """Written as cell means (cellwise constants ParaView shows as cell data), with units in
    fields.json, plotted by scalebridge plot."""
    run_peak(heating("quadrature"), tmp_path / "run")
    xdmf = (tmp_path / "run" / "fields.xdmf").read_text()
    attribute = re.search(r'<Attribute Name="peak_temperature"[^>]*>', xdmf).group(0)
    assert 'Center="Cell"' in attribute
    fields = json.loads((tmp_path / "run" / "fields.json").read_text())
    assert fields["peak_temperature"] == {"units": "K", "rank": "scalar"}
    with registered(PeakTemperature):
        process = scalebridge(
            "plot", tmp_path / "run", "--fields", "peak_temperature", "--times", "10"
        )
    assert process.returncode == 0, process.stderr
    assert list((tmp_path / "run" / "plots").glob("peak_temperature*.png"))


def test_a_derived_field_reads_an_internal_variable_as_its_cell_mean():
    """A prescribed cellwise field computed from the peak kept at quadrature points (the field
    has no quadrature points of its own) reads its cell means: 0.5 (1 + x) at the midpoints."""
    case = heating("quadrature")
    damage = {"value": "(peak_temperature - 300)/100", "degree": 0}
    case["physics"]["oven"]["fields"]["damage"] = damage
    _, result = run_peak(case)
    field = result.fields["damage"]
    midpoints = field.function_space.tabulate_dof_coordinates()[:, 0]
    assert field.x.array == pytest.approx(0.5 * (1 + midpoints), rel=1e-12)


# Refused ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        ({"formulation": "plane_stress"}, "physics.mechanics", "full 3D stress"),
        ({"viscoelasticity": {"shear": [{"modulus": 1e9, "relaxation_time": 1}]}}, "", "one of"),
        ({"large_deformation": True}, "physics.mechanics", "small strain only"),
        ({"orthotropic": {"domain": {"E": [1e9] * 3, "nu": [0.3] * 3, "G": [4e8] * 3}}}, "", "iso"),
    ],
)
def test_material_laws_that_do_not_combine_are_refused(change, where, words):
    case = bar()
    mechanics = case["physics"]["mechanics"]
    mechanics |= change
    if change.get("formulation") == "plane_stress":
        case["mesh"] = {"type": "rectangle", "length": [0.01, 0.1], "cells": [2, 2]}
        del mechanics["boundaries"]["back"]
    with pytest.raises(CaseError) as error:
        Simulation.from_case(case).build()
    assert words in str(error.value)
    assert str(error.value).startswith(where or "physics.mechanics")


def test_crank_nicolson_is_refused_with_the_reason(tmp_path):
    case = tmp_path / "cn.toml"
    text = (CASES / "cyclic_bar.toml").read_text().replace("[time]", '[time]\nscheme = "cn"')
    case.write_text(text.replace('file = "', f'file = "{CASES}/'))
    process = scalebridge("check", case)
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert "time.scheme" in process.stderr and "internal variables" in process.stderr


def test_a_shift_needs_a_temperature():
    case = tomllib.loads((CASES / "viscoelastic_relaxation.toml").read_text())
    case["physics"]["mechanics"]["viscoelasticity"]["shift"] = {
        "type": "arrhenius",
        "reference_temperature": 300,
        "activation_energy": 1e5,
    }
    with pytest.raises(CaseError, match="requires field 'temperature'"):
        Simulation.from_case(case)


def test_failed_newton_attempts_are_retried_from_the_accepted_state():
    """Voce hardening with Newton allowed 3 iterations (to 1e-12): the first plastic steps of
    0.25 s need 4, fail and are retried with smaller ones ([time.adaptive]); the accepted path
    still lies on the closed-form curve, so no failed attempt left its plastic strain behind."""
    H, Q, b = 2e9, 150e6, 300.0
    case = bar(end=1.0, dt=0.25, adaptive={"dt_max": 0.25, "easy_iterations": 2})
    mechanics = case["physics"]["mechanics"]
    mechanics["plasticity"] = {
        "yield_stress": SIGMA_Y,
        "isotropic_modulus": H,
        "saturation_stress": Q,
        "saturation_rate": b,
    }
    mechanics["boundaries"]["top"]["y"] = "2e-3*t"
    case["solver"]["newton"] = {"rtol": 1e-12, "atol": 1e-10, "max_iterations": 3}
    result = Simulation.from_case(case).run()
    assert result.rejected > 0
    q = result.quantities
    strain = q["displacement_top_y_m"] / LENGTH
    stress = q["reaction_top_y_N"] / AREA
    hardening = lambda p: H * p + Q * (1 - math.exp(-b * p))  # noqa: E731
    exact = uniaxial(strain, E, SIGMA_Y, hardening=hardening)
    assert np.abs(stress - exact).max() < 1e-8 * SIGMA_Y
    assert strain[-1] == pytest.approx(0.02)
