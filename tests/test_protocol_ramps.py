"""Ramps in protocols: "Ramp to 400 K at 2 K/min", "Ramp to 300 K for 10 min".

A lumped body (one temperature, tau dT/dt = T_air - T) in air whose temperature a protocol
ramps (the convective boundary's ambient, a constant the protocol sets at every step):

- the body follows the closed form of a linear ramp, T = T_air - r tau (1 - exp(-t/tau)), to
  BDF2's accuracy (second order in dt), and the condition "until temperature > 330 K" ends the
  first ramp at the closed form's crossing time;
- Crank-Nicolson reads the ramp at both ends of each step and stays second order;
- the next ramp starts from the air temperature that ramp reached (not its target) and lands
  on its own target when its time is up; a ramp without a condition ends at its target;
- a run stopped within a ramp and restarted from its checkpoint goes on as the unbroken run;
- the grammar: "to AMOUNT" with a rate or a time; exact messages for what is missing.
"""

import numpy as np
import pytest
from scipy.optimize import brentq

from app.errors import CaseError
from app.protocols import Amount, ProtocolError, parse_step
from app.restart import restart
from app.simulation import Simulation

RHO_C, VOLUME, AREA, H, START = 2e6, 2e-3, 0.05, 200.0, 300.0
TAU = RHO_C * VOLUME / (H * AREA)  # 400 s
RATE = 2.0 / 60  # K/s


def body_in_air(steps: list[str], dt: float = 5.0) -> dict:
    lumped = {"volume": VOLUME, "cross_section": 0.01, "cooling_area": AREA, "h": H}
    heat = {
        "volumetric_heat_capacity": RHO_C,
        "initial": START,
        "lumped": lumped | {"ambient": START},
    }
    control = {"target": "physics.heat.lumped.ambient"}
    case = {
        "mesh": {"type": "interval", "length": [0.1], "cells": [2]},
        "physics": {"heat": heat},
        "protocol": {"steps": steps, "controls": {"Ramp": control}, "tolerance": 1e-6},
        "time": {"scheme": "bdf2", "dt": dt},
        "solver": {"newton": {"rtol": 1e-12, "atol": 1e-10}},
    }
    return case


def ramped(steps: list[str], dt: float = 5.0, scheme: str = "bdf2") -> dict[str, np.ndarray]:
    case = body_in_air(steps, dt)
    case["time"]["scheme"] = scheme
    q = Simulation.from_case(case).run().quantities
    return {key: np.asarray(value) for key, value in q.items()}


def following(t: np.ndarray, air_start: float, rate: float, body_start: float) -> np.ndarray:
    """The body's temperature under air T_air = air_start + rate t from body_start at t = 0."""
    air = air_start + rate * t
    return air - rate * TAU + (body_start - air_start + rate * TAU) * np.exp(-t / TAU)


def test_a_ramp_ended_by_a_condition_and_the_next_one_from_where_it_stopped():
    q = ramped(TWO_RAMPS)
    t, T, step = q["time_s"], q["temperature_K"], q["step"]
    crossing = brentq(lambda s: following(np.array(s), START, RATE, START) - 330.0, 0, 3000)
    first = step == 0
    assert t[first][-1] == pytest.approx(crossing, abs=0.05)  # BDF2's error in the time
    assert np.abs(T[first] - following(t[first], START, RATE, START)).max() < 1e-2
    # the second ramp starts from the air at the crossing and takes 10 minutes to 300 K
    air_then = START + RATE * t[first][-1]
    second = step == 1
    assert t[second][-1] == pytest.approx(t[first][-1] + 600.0, rel=1e-12)
    down = -(air_then - 300.0) / 600.0
    elapsed = t[second] - t[first][-1]
    assert np.abs(T[second] - following(elapsed, air_then, down, T[first][-1])).max() < 1e-2
    # the 330 K crossing of the old ramp would give another slope: the test tells them apart
    assert abs(down - (400.0 - 300.0) / -600.0) > 0.05


def test_a_ramp_ends_at_its_target_and_bdf2_follows_it_to_second_order():
    errors = []
    for dt in (10.0, 5.0):
        q = ramped(["Ramp to 310 K at 2 K/min"], dt=dt)
        assert q["time_s"][-1] == pytest.approx(10.0 / RATE, rel=1e-12)  # 300 s
        exact = following(q["time_s"], START, RATE, START)
        errors.append(np.abs(q["temperature_K"] - exact).max())
    assert errors[0] < 1e-2
    assert errors[0] / errors[1] > 3.5  # the forcing at each step's end: no first-order lag


def test_crank_nicolson_averages_the_ramp_over_each_step_to_second_order():
    # F(u_n, t_n) reads the air at the step's start: with the end value at both levels the
    # error was 0.175 K at dt = 20 s and halved with dt (first order)
    errors = []
    for dt in (20.0, 10.0):
        q = ramped(["Ramp to 310 K at 2 K/min"], dt=dt, scheme="cn")
        errors.append(np.abs(q["temperature_K"] - following(q["time_s"], START, RATE, START)).max())
    assert errors[0] < 2e-3
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.02)


TWO_RAMPS = ["Ramp to 400 K at 2 K/min until temperature > 330 K", "Ramp to 300 K for 10 min"]


@pytest.mark.parametrize("stopped", [1000.0, 1600.0])  # within the first ramp, the second
def test_a_run_restarted_within_a_ramp_continues_it(tmp_path, stopped):
    case = body_in_air(TWO_RAMPS) | {"checkpoint": {"steps": 7}, "output": {"xdmf": False}}
    unbroken = Simulation.from_case(case).run(tmp_path / "unbroken").quantities
    case["time"]["end"] = stopped
    Simulation.from_case(case).run(tmp_path / "stopped")
    continued = restart(tmp_path / "stopped", overrides=["time.end=1e5"]).quantities
    # the ramp goes on from where it stood: the same end and final state (a stop at 1600 s
    # lands a step there, which the unbroken run does not: 1e-6 K apart at the end)
    assert continued["time_s"][-1] == pytest.approx(unbroken["time_s"][-1], rel=1e-12)
    final = continued["temperature_K"][-1] - unbroken["temperature_K"][-1]
    assert abs(final) < (1e-10 if stopped == 1000.0 else 1e-4)


@pytest.mark.parametrize(
    ("text", "to", "rate", "duration"),
    [
        ("Ramp to 180 degC at 2 K/min", Amount(180, "degC"), Amount(2, "K/min"), None),
        ("Ramp to 0 W/m^2 for 10 min", Amount(0, "W/m^2"), None, 600.0),
    ],
)
def test_ramp_steps_parse(text, to, rate, duration):
    step = parse_step(text)
    assert (step.to, step.value, step.duration) == (to, rate, duration)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Ramp to 180 degC", "a ramp ('to AMOUNT') needs its rate ('at 2 K/min') or its time"),
        ("Ramp at 2 K/min to 180 degC", "'to', 'at' and 'for' may each appear once, in that order"),
        ("Ramp to at 2 K/min", "'to' must be followed by an amount"),
    ],
)
def test_malformed_ramps(text, message):
    with pytest.raises(ProtocolError) as info:
        parse_step(text)
    assert message in str(info.value)


def test_a_rate_in_the_wrong_units_is_one_case_error():
    with pytest.raises(CaseError) as info:
        ramped(["Ramp to 400 K at 2 W"])
    message = str(info.value)
    assert "protocol.steps (step 'Ramp to 400 K at 2 W')" in message
    assert "cannot be converted to K/s" in message
