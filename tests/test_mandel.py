"""Mandel's problem: darcy and mechanics in two dimensions, with the Mandel-Cryer overshoot.

A long poroelastic slab of half-width a is squeezed between rigid, frictionless, impermeable
plates by a force 2F per unit length; its sides x = +-a are drained and traction-free. The
quarter x in [0, a], y in [0, b] has rollers on x = 0 and y = 0. A sudden load gives the
undrained pressure p_0 = F B (1 + nu_u)/(3a) everywhere; then the sides drain, the stiffer
drained sides shed load onto the core, and the pressure at the centre first RISES above p_0
(the Mandel-Cryer effect) before it decays: a test no one-dimensional (Terzaghi) check can
make, since the coupling acts through the lateral strain.

Series solution (Abousleiman et al., Geotechnique 46(2), 1996; Cheng & Detournay 1988), with
the roots alpha_n of tan(alpha) = (1 - nu)/(nu_u - nu) alpha and tau = c t/a^2:

    p(x, t) = 2 F B (1 + nu_u)/(3a) sum sin(a_n)/(a_n - sin a_n cos a_n)
                                       (cos(a_n x/a) - cos a_n) exp(-a_n^2 tau)
    u_y(b, t) = b [-F (1 - nu)/(2 G a) + F (1 - nu_u)/(G a) sum sin a_n cos a_n/(a_n - sin a_n
                   cos a_n) exp(-a_n^2 tau)]
    c = (k/mu) M (K + 4G/3)/(K_u + 4G/3)         (Terzaghi's c_v of the same medium)

The rigid plate is imposed by its displacement u_y(b, t) (30 terms; the plate's force is then
2F), switched on at t = 0+; the pressure is checked. cases/terzaghi.toml's clay with alpha =
0.8 and S = 1/M = 1e-7 1/Pa (as tests/test_biot_undrained.py), a = 1 m, b = 0.1 m, 20 x 2
cells (P2 displacement, P1 pressure), BDF2 from tau = 1e-3 growing to 0.01.
"""

import math
import tomllib

import pytest
import tomli_w

from app.simulation import Simulation
from tests.conftest import CASES, assert_same_by_units, runs_on_ranks
from tests.test_biot_undrained import (
    ALPHA,
    BIOT_MODULUS,
    BULK,
    SHEAR,
    SKEMPTON_B,
    STORAGE,
    UNDRAINED_BULK,
    UNDRAINED_NU,
)
from tests.test_terzaghi import MU, NU, K

HALF_WIDTH, HEIGHT, FORCE = 1.0, 0.1, 3e4  # a [m], b [m], F [N/m]
C = K / MU * BIOT_MODULUS * (BULK + 4 * SHEAR / 3) / (UNDRAINED_BULK + 4 * SHEAR / 3)
T_C = HALF_WIDTH**2 / C
P_0 = FORCE * SKEMPTON_B * (1 + UNDRAINED_NU) / (3 * HALF_WIDTH)
TAUS = [0.001, 0.01, 0.05, 0.1, 0.2, 0.5]


def mandel_roots(count: int) -> list[float]:
    """The first roots of tan(a) = (1 - nu)/(nu_u - nu) a, one in each (n pi, n pi + pi/2)."""
    slope, roots = (1 - NU) / (UNDRAINED_NU - NU), []
    for n in range(count):
        low, high = n * math.pi + 1e-12, n * math.pi + math.pi / 2 - 1e-12
        for _ in range(200):  # bisection: tan(a) - slope a changes sign once in the interval
            middle = (low + high) / 2
            low, high = (low, middle) if math.tan(middle) > slope * middle else (middle, high)
        roots.append((low + high) / 2)
    return roots


ROOTS = mandel_roots(400)


def series_pressure(x: float, tau: float) -> float:
    """p(x a, t) from the series, x the position over the half-width."""
    return (
        2
        * P_0
        * sum(
            math.sin(a)
            / (a - math.sin(a) * math.cos(a))
            * (math.cos(a * x) - math.cos(a))
            * math.exp(-a * a * tau)
            for a in ROOTS
        )
    )


def plate_displacement(terms: int = 30) -> str:
    """u_y(b, t) of the rigid plate as a case expression of t (0 before the load)."""
    modes = " + ".join(
        f"{math.sin(a) * math.cos(a) / (a - math.sin(a) * math.cos(a)):.12g}"
        f"*exp(-{a * a / T_C:.12g}*t)"
        for a in ROOTS[:terms]
    )
    drained = FORCE * (1 - NU) / (2 * SHEAR * HALF_WIDTH)
    undrained = FORCE * (1 - UNDRAINED_NU) / (SHEAR * HALF_WIDTH)
    return f"({undrained:.12g}*({modes}) - {drained:.12g})*{HEIGHT} if t > 0 else 0"


def mandel_case(end: float = 0.5) -> dict:
    """cases/terzaghi.toml turned into Mandel's quarter slab, to tau = ``end``."""
    case = tomllib.loads((CASES / "terzaghi.toml").read_text())
    case["parameters"] = {"set": str(CASES / "sets" / "terzaghi_clay.toml")}
    case["parameters"] |= {"S": STORAGE, "alpha": ALPHA}
    case["mesh"] |= {"length": [HALF_WIDTH, HEIGHT], "cells": [20, 2]}
    case["physics"]["darcy"] |= {
        "initial": 0,
        "boundaries": {"right": {"type": "pressure", "value": 0}},
    }
    case["physics"]["mechanics"]["boundaries"] = {
        "left": {"type": "displacement", "x": 0},
        "bottom": {"type": "displacement", "y": 0},
        "top": {"type": "displacement", "y": plate_displacement()},
    }
    case["time"] |= {"end": end * T_C, "dt": 1e-3 * T_C}
    case["time"]["adaptive"]["dt_max"] = 0.01 * T_C
    case["output"] = {
        "xdmf": False,
        "times": [tau * T_C for tau in TAUS if tau < end],
        "probes": {
            "centre": {"at": [0, HEIGHT / 2], "fields": ["pressure"]},
            "middle": {"at": [HALF_WIDTH / 2, HEIGHT / 2], "fields": ["pressure"]},
        },
    }
    return case


@pytest.fixture(scope="module")
def squeezed():
    q = Simulation.from_case(mandel_case()).run(progress=False).quantities
    rows = {tau: [math.isclose(t / T_C, tau) for t in q["time_s"]].index(True) for tau in TAUS}
    return q, rows


def test_consolidation_coefficient_is_terzaghis():
    """Mandel's c and Terzaghi's c_v = k/(mu (1/M + alpha^2/(K + 4G/3))) are one coefficient."""
    c_v = K / (MU * (STORAGE + ALPHA**2 / (BULK + 4 * SHEAR / 3)))
    assert c_v == pytest.approx(C, rel=1e-12)


def test_pressure_follows_the_series_at_the_centre_and_half_way(squeezed):
    """At the centre and at x = a/2 the pressure is the series' within 0.005 p_0 from tau =
    1e-3 to 0.5 (measured at most 0.0023 p_0, at x = a/2 and tau = 0.05)."""
    q, rows = squeezed
    for tau, row in rows.items():
        for probe, x in (("centre", 0.0), ("middle", 0.5)):
            pressure = q[f"{probe}_pressure_Pa"][row] / P_0
            assert pressure == pytest.approx(series_pressure(x, tau) / P_0, abs=5e-3), (probe, tau)


def test_the_centre_pressure_overshoots_the_undrained_value(squeezed):
    """Mandel-Cryer: the centre pressure starts at p_0 = F B (1 + nu_u)/(3a) (tau = 1e-3: within
    1 %, the rise has begun: series 1.0053, measured 1.0053) and rises above it by 3.5 % at tau =
    0.05 (series 1.0353, measured 1.0352)."""
    q, rows = squeezed
    centre = q["centre_pressure_Pa"]
    assert centre[rows[0.001]] == pytest.approx(P_0, rel=1e-2)
    assert series_pressure(0.0, 0.05) / P_0 == pytest.approx(1.0353, abs=1e-4)
    assert centre[rows[0.05]] / P_0 - 1 == pytest.approx(0.0353, abs=2e-3)
    assert centre[rows[0.05]] > centre[rows[0.01]] > centre[rows[0.001]]


@pytest.mark.mpi
def test_the_same_on_two_ranks(tmp_path):
    """To tau = 0.05: every column equal to 1e-8 on 1 and 2 ranks."""
    path = tmp_path / "mandel.toml"
    path.write_text(tomli_w.dumps(mandel_case(end=0.05)))
    serial, parallel = runs_on_ranks(path, tmp_path)
    assert_same_by_units(serial, parallel, rtol=1e-8)
