"""Coupling between groups: splitting orders, fixed point against monolithic, acceleration.

The test problem is a linear two-way exchange between two fields, each provided by its own
plug-in instance (so they can sit in different groups):

    da/dt = D lap a - k_a a + g_a b,        db/dt = D lap b - k_b b + g_b a.

With uniform initial values and no diffusion it is an ODE system with the exact solution
exp(M t) [a0, b0]; with diffusion the coupling data is a whole field.
"""

import numpy as np
import pytest
import ufl
from pydantic import Field
from scipy.linalg import expm

from app import registry
from app.contracts import FieldSpec, Parameters, Physics, Property, Quantity, quantity
from app.simulation import Simulation
from physics_modules.heat import Heat


class Exchange(Physics):
    """One field of a linear exchange: dc/dt = D lap c - decay c + gain partner."""

    name = "exchange"
    spd = True

    class Parameters(Parameters):
        field: str = Field(description="Name of the field this instance solves for")
        partner: str = Field(description="Name of the field it exchanges with")
        diffusivity: float = Field(0.0, ge=0)
        decay: float = 1.0
        gain: float = 1.0
        initial: Property = quantity("dimensionless", 1.0, "Initial value")

    @property
    def provides(self):
        return [FieldSpec(self.params.field, "scalar", "dimensionless")]

    @property
    def requires(self):
        return [FieldSpec(self.params.partner, "scalar", "dimensionless")]

    def residual(self, ctx):
        p = self.params
        c, v, other = ctx.field(p.field), ctx.test(p.field), ctx.field(p.partner)
        form = (p.decay * c - p.gain * other) * v * ctx.dx()
        if p.diffusivity:
            form += p.diffusivity * ufl.inner(ufl.grad(c), ufl.grad(v)) * ctx.dx()
        return form

    def capacity(self, ctx):
        return {self.params.field: 1.0}

    def initial(self, ctx):
        return {self.params.field: ctx.coefficient(self.params.initial)}

    def quantities(self, ctx):
        c = ctx.field(self.params.field)
        return {f"mean_{self.params.field}": Quantity.integral(c * ctx.dx(), "dimensionless")}


@pytest.fixture(autouse=True)
def exchange_plugin(monkeypatch):
    found = registry.Plugins({"heat": Heat, "exchange": Exchange}, {})
    monkeypatch.setattr(registry, "discover", lambda: found)


RATES = {"a": (1.0, 2.0), "b": (3.0, 1.5)}  # (decay, gain) of each field


def exchange_case(
    dt: float, coupling: dict | None, diffusivity: float = 0.0, scheme: str = "bdf2", **rates
) -> dict:
    decay_gain = RATES | rates
    physics = {
        name: {
            "type": "exchange",
            "field": name,
            "partner": "b" if name == "a" else "a",
            "decay": decay_gain[name][0],
            "gain": decay_gain[name][1],
            "diffusivity": diffusivity,
            "initial": 1.0 if name == "a" else "sin(pi*x)" if diffusivity else 0.0,
        }
        for name in ("a", "b")
    }
    case = {
        "mesh": {"type": "interval", "cells": [16 if diffusivity else 2]},
        "physics": physics,
        "time": {"scheme": scheme, "end": 1.0, "dt": dt},
        "output": {"interval": 1.0},
    }
    if coupling is not None:
        case["coupling"] = coupling
    return case


def exact(t: float) -> np.ndarray:
    (ka, ga), (kb, gb) = RATES["a"], RATES["b"]
    return expm(np.array([[-ka, ga], [gb, -kb]]) * t) @ np.array([1.0, 0.0])


def final_values(result) -> np.ndarray:
    q = result.quantities
    return np.array([q["a_mean_a"][-1], q["b_mean_b"][-1]])


def split(method: str, **iterations) -> dict:
    groups = [{"name": "first", "physics": ["a"]}, {"name": "second", "physics": ["b"]}]
    return {"method": method, "groups": groups, "iterations": iterations}


@pytest.mark.parametrize(("method", "order"), [("lie", 1), ("strang", 2)])
def test_splitting_order(method: str, order: int):
    steps = [0.1, 0.05, 0.025, 0.0125]
    errors = []
    for dt in steps:
        # Splitting needs a one-step integrator: Crank-Nicolson inside each group.
        result = Simulation.from_case(exchange_case(dt, split(method), scheme="cn")).run()
        errors.append(np.abs(final_values(result) - exact(1.0)).max())
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.15, (slope, errors)


def test_monolithic_group_is_second_order():
    """The reference the fixed point must reproduce: one group, BDF2."""
    errors = [
        np.abs(final_values(Simulation.from_case(exchange_case(dt, None)).run()) - exact(1.0)).max()
        for dt in (0.05, 0.025)
    ]
    assert np.log2(errors[0] / errors[1]) == pytest.approx(2.0, abs=0.15)


@pytest.mark.parametrize("acceleration", ["none", "aitken", "iqn_ils"])
def test_fixed_point_reproduces_the_monolithic_solution(acceleration: str):
    monolithic = final_values(Simulation.from_case(exchange_case(0.05, None, 0.1)).run())
    coupling = split("fixed_point", tolerance=1e-12, acceleration=acceleration, max_iterations=60)
    partitioned = final_values(Simulation.from_case(exchange_case(0.05, coupling, 0.1)).run())
    assert partitioned == pytest.approx(monolithic, rel=1e-8)


def iterations_needed(acceleration: str) -> float:
    """Mean fixed-point sweeps per step on a strongly coupled exchange: with BDF1 a sweep
    multiplies the error by (g dt / (1 + k dt))^2 = (5.7*0.2/1.2)^2 = 0.90 for the slowest mode."""
    coupling = split("fixed_point", tolerance=1e-10, acceleration=acceleration, max_iterations=400)
    case = exchange_case(0.2, coupling, 0.01, "bdf1", a=(1.0, 5.7), b=(1.0, 5.7)) | {
        "output": {"interval": 0.2}
    }
    sim = Simulation.from_case(case)
    result = sim.run()
    return float(result.quantities["coupling_iterations"][1:].mean())


def test_acceleration_needs_fewer_iterations():
    plain, aitken, iqn = (iterations_needed(a) for a in ("none", "aitken", "iqn_ils"))
    print(f"mean sweeps per step: plain {plain:.1f}, Aitken {aitken:.1f}, IQN-ILS {iqn:.1f}")
    assert aitken < plain / 3
    assert iqn < plain / 3
    assert plain > 20  # the case really is strongly coupled


def test_non_converging_fixed_point_is_reported():
    coupling = split("fixed_point", tolerance=1e-12, acceleration="none", max_iterations=3)
    with pytest.raises(Exception, match="fixed-point iterations between groups did not converge"):
        Simulation.from_case(exchange_case(0.1, coupling, 0.05)).run()


def test_subcycling_takes_substeps():
    coupling = split("lie")
    coupling["groups"][1]["subcycles"] = 4
    sim = Simulation.from_case(exchange_case(0.1, coupling))
    sim.run()
    fast = sim.groups[1]
    assert fast.scheme.accepted_steps == 40  # 10 steps x 4 substeps
    assert sim.groups[0].scheme.accepted_steps == 10


def test_group_errors_point_at_the_case():
    from app.errors import CaseError

    bad = split("lie")
    bad["groups"][1]["physics"] = ["c"]
    with pytest.raises(CaseError, match=r"coupling.groups\[1\].physics\[0\]: unknown physics"):
        Simulation.from_case(exchange_case(0.1, bad)).build()
    missing = split("lie")
    missing["groups"] = missing["groups"][:1]
    with pytest.raises(CaseError, match="b is in no group"):
        Simulation.from_case(exchange_case(0.1, missing)).build()
