"""Flows through fixed-value boundaries mean the flow at the row's time, for every scheme.

A decaying sine mode, u - u_b = A sin(pi x/L) exp(-lambda t) with u = u_b at both ends, gives
the flow leaving each end, D A pi/L exp(-lambda t), and the amount stored, A (2L/pi)
exp(-lambda t), in closed form. The discrete solution is the mode times the scheme's amplification,
so a flow that is the flow at the row's time has the stored amount's relative error at every
row, up to the spatial error (P3). Crank-Nicolson's step residual is the average over the step:
written at the step's end it was off by lambda dt/2 (0.9 % here, first order in dt, against
4e-5 for the stored energy). The rows after the start, after a breakpoint and after a protocol
stage change are checked like the others.
"""

import math
from dataclasses import dataclass

import numpy as np
import pytest

from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks

LENGTH, AMPLITUDE, DT = 1.0, 10.0, 155.0
STEEL = {"conductivity": 45.0, "density": 7850.0, "specific_heat": 470.0}
DIFFUSIVITY = 1e-5  # m^2/s, so lambda dt is about the same as for steel
SPATIAL = 1e-5  # relative error of the P3 flow on 8 cells (measured: 3.9e-6)


@dataclass
class Mode:
    """A decaying mode: the case, its columns and the closed form at t = 0."""

    case: dict
    flow_column: str
    stored_column: str
    rate: float  # lambda
    flow: float
    stored: float
    base_amount: float = 0.0  # stored at the boundary level (not part of the mode)


def heat(restart: str) -> Mode:
    base = 293.15
    boundaries = {side: {"type": "temperature", "value": base} for side in ("left", "right")}
    physics = {
        "heat": {
            "degree": 3,
            **STEEL,
            "reference": base,
            "initial": f"{base} + {AMPLITUDE}*sin(pi*x/{LENGTH})",
            "boundaries": boundaries,
        }
    }
    diffusivity = STEEL["conductivity"] / (STEEL["density"] * STEEL["specific_heat"])
    rho_cp = STEEL["density"] * STEEL["specific_heat"]
    case = mode_case(physics, restart, "physics.heat.boundaries.left.value", base)
    return Mode(
        case,
        "heat_flow_left_W_per_m2",
        "stored_energy_J_per_m2",
        diffusivity * (math.pi / LENGTH) ** 2,
        STEEL["conductivity"] * AMPLITUDE * math.pi / LENGTH,
        rho_cp * AMPLITUDE * 2 * LENGTH / math.pi,
    )


def mass_transport(restart: str) -> Mode:
    base = 2.0
    boundaries = {side: {"type": "concentration", "value": base} for side in ("left", "right")}
    species = {
        "diffusivity": DIFFUSIVITY,
        "initial": f"{base} + {AMPLITUDE}*sin(pi*x/{LENGTH})",
        "boundaries": boundaries,
    }
    physics = {"mass_transport": {"degree": 3, "species": {"c": species}}}
    target = "physics.mass_transport.species.c.boundaries.left.value"
    return Mode(
        mode_case(physics, restart, target, base),
        "outflow_c_left_mol_per_s_per_m2",
        "amount_c_mol_per_m2",
        DIFFUSIVITY * (math.pi / LENGTH) ** 2,
        DIFFUSIVITY * AMPLITUDE * math.pi / LENGTH,
        AMPLITUDE * 2 * LENGTH / math.pi,
        base * LENGTH,
    )


def mode_case(physics: dict, restart: str, target: str, value: float) -> dict:
    """80 steps of DT, restarted halfway by a breakpoint or by a protocol stage change (the
    boundary value set again to what it was)."""
    end, half = 80 * DT, 40 * DT
    case = {
        "mesh": {"type": "interval", "length": [LENGTH], "cells": [8]},
        "physics": physics,
        "time": {"scheme": "cn", "end": end, "dt": DT},
    }
    if restart == "breakpoint":
        case["time"]["breakpoints"] = [half]
    else:
        case["protocol"] = {
            "steps": [f"Hold for {half} s", f"Hold for {half} s"],
            "controls": {"Hold": {"target": target, "value": value}},
        }
    return case


def relative_errors(setup, restart: str, scheme: str = "cn", dt: float = DT):
    """Relative errors of the flow and of the stored amount at every row, and the times."""
    mode = setup(restart)
    mode.case["time"] |= {"scheme": scheme, "dt": dt}
    q = Simulation.from_case(mode.case).run().quantities
    decay = np.exp(-mode.rate * q["time_s"])
    flow = q[mode.flow_column] / (mode.flow * decay) - 1
    stored = (q[mode.stored_column] - mode.base_amount) / (mode.stored * decay) - 1
    return flow, stored, q["time_s"]


@pytest.mark.parametrize("restart", ["breakpoint", "protocol"])
@pytest.mark.parametrize("setup", [heat, mass_transport], ids=["heat", "mass_transport"])
def test_crank_nicolson_flow_is_the_flow_at_the_row_time(setup, restart: str):
    flow, stored, times = relative_errors(setup, restart)
    assert len(times) == 81 and times[41] == pytest.approx(41 * DT)  # the row after the restart
    assert np.abs(stored).max() > 1e-5  # CN's own error, which the flow must share
    np.testing.assert_allclose(flow, stored, rtol=0, atol=SPATIAL)
    assert np.abs(flow).max() < 1e-4


def test_crank_nicolson_flow_is_second_order():
    coarse, _, times = relative_errors(heat, "breakpoint")
    fine, _, fine_times = relative_errors(heat, "breakpoint", dt=DT / 2)
    # The same times: every second row of the fine run, over the first half of the coarse one.
    assert fine_times[2:82:2] == pytest.approx(times[1:41])
    ratio = np.abs(coarse[1:41]).max() / np.abs(fine[2:82:2]).max()
    assert 3.5 < ratio < 4.5, ratio


@pytest.mark.parametrize("scheme", ["bdf1", "bdf2"])
def test_bdf_flows_share_the_stored_amount_error(scheme: str):
    """BDF steps evaluate their rows at the new level: the step's residual is the flow there
    (kept: the discrete balances close with it, tests/test_heat_verification.py); the start row,
    which follows no step, uses the rates at that instant."""
    flow, stored, _ = relative_errors(heat, "breakpoint", scheme)
    np.testing.assert_allclose(flow, stored, rtol=0, atol=SPATIAL)


@pytest.mark.mpi
def test_one_and_two_ranks_agree_on_crank_nicolson_flows(tmp_path):
    """The Joule-heated bar under CN: flows from the rates at each row (heat through the held
    ends), the potential solved before the first row; the same numbers on 1 and 2 ranks."""
    overrides = ("--set", "time.scheme=cn", "--set", "time.end=60", "--set", "output.interval=20")
    serial, parallel = runs_on_ranks("cases/joule_heating.toml", tmp_path, *overrides)
    assert_same_quantities(serial, parallel)
    assert serial["max_potential_V"][0] == pytest.approx(0.05)
