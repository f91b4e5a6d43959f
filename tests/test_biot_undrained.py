"""Biot's coupling with alpha < 1 and a finite Biot modulus, its undrained response computed.

cases/terzaghi.toml sets the initial pore pressure to the undrained value; here the layer starts
unloaded at p = 0 and the load jumps on at t = 0+ (``"load if t > 0 else 0"``), so the first
step of darcy and mechanics must produce the undrained state themselves. The medium has
alpha = 0.8 and S = 1/M = 1e-7 1/Pa (M = 10 MPa; drained K = 6.67 MPa, G = 4 MPa), a
thermodynamically admissible set (Skempton's B = alpha M/K_u < 1).

Closed forms (Wang, Theory of Linear Poroelasticity, 2000, sections 3.3 and 6.2), written from
the moduli rather than from the case's own p_0 expression:

    K_u = K + alpha^2 M,  B = alpha M/K_u,  nu_u = (3 K_u - 2 G)/(2 (3 K_u + G))
    gamma = B (1 + nu_u)/(3 (1 - nu_u))                 loading efficiency of the oedometer
    p_0 = gamma load,  s_0 = (load - alpha p_0) H/(K + 4G/3)          just after loading
    c_v = k/(mu (1/M + alpha^2/(K + 4G/3)))             then Terzaghi's series in T_v = c_v t/H^2
"""

import math

import numpy as np
import pytest

from app.simulation import Simulation
from tests.conftest import CASES, assert_same_by_units, runs_on_ranks
from tests.test_terzaghi import LOAD, MU, NU, E, K, degree_of_consolidation

CASE = CASES / "terzaghi.toml"
CELL = 1 / 20  # the case's cells over H = 1 m
ALPHA, STORAGE = 0.8, 1e-7
BULK, SHEAR = E / (3 * (1 - 2 * NU)), E / (2 * (1 + NU))
BIOT_MODULUS = 1 / STORAGE
CONSTRAINED = BULK + 4 * SHEAR / 3
UNDRAINED_BULK = BULK + ALPHA**2 * BIOT_MODULUS
SKEMPTON_B = ALPHA * BIOT_MODULUS / UNDRAINED_BULK
UNDRAINED_NU = (3 * UNDRAINED_BULK - 2 * SHEAR) / (2 * (3 * UNDRAINED_BULK + SHEAR))
LOADING_EFFICIENCY = SKEMPTON_B * (1 + UNDRAINED_NU) / (3 * (1 - UNDRAINED_NU))
P_0 = LOADING_EFFICIENCY * LOAD
S_0 = (LOAD - ALPHA * P_0) / CONSTRAINED  # H = 1 m
S_INF = LOAD / CONSTRAINED
C_V = K / (MU * (1 / BIOT_MODULUS + ALPHA**2 / CONSTRAINED))
T_C = 1 / C_V  # H^2/c_v
#: T_v of the rows: just after loading (drainage reaches sqrt(T_v) = 1e-3 H), then A12's
TIME_FACTORS = [1e-6, 0.05, 0.1, 0.197, 0.5, 0.848]
STEP_LOAD = {
    "parameters.S": STORAGE,
    "parameters.alpha": ALPHA,
    "physics.darcy.initial": 0,
    "physics.mechanics.boundaries.top.value": "load if t > 0 else 0",
    "time.dt": 1e-6 * T_C,
    "output.times": [f * T_C for f in TIME_FACTORS],
}


def base_pressure_ratio(time_factor: float) -> float:
    """p/p_0 at the impermeable base: sum_m (2/M) sin(M) exp(-M^2 T_v)."""
    modes = ((2 * m + 1) * math.pi / 2 for m in range(400))
    return sum(2 / M * math.sin(M) * math.exp(-(M**2) * time_factor) for M in modes)


@pytest.fixture(scope="module")
def loaded():
    q = Simulation.from_case(CASE, overrides=STEP_LOAD).run(progress=False).quantities
    rows = {f: int(np.argmin(abs(q["time_s"] / T_C - f))) for f in TIME_FACTORS}
    for factor, row in rows.items():
        assert q["time_s"][row] / T_C == pytest.approx(factor, rel=1e-6)
    return q, rows


def test_the_moduli_are_admissible_and_the_efficiency_is_the_oedometer_formula():
    """B < 1, and Wang's gamma equals alpha/(alpha^2 + S (K + 4G/3)), the form the case's set
    uses: two routes to the same undrained pressure."""
    assert 0 < SKEMPTON_B < 1
    oedometer = ALPHA / (ALPHA**2 + STORAGE * CONSTRAINED)
    assert oedometer == pytest.approx(LOADING_EFFICIENCY, rel=1e-12)


def test_sudden_load_gives_skemptons_undrained_pressure(loaded):
    """Before the load the layer is at rest; just after it (T_v = 1e-6) the base, 1000
    boundary-layer thicknesses below the drained top, carries p_0 = gamma load (measured to
    1e-8), and the skeleton has settled s_0 plus the first drainage, U(1e-6) (s_inf - s_0).
    The top cell (h = H/20) cannot resolve a drained layer 1e-3 H thick: its pressure, a ramp
    from 0 at the top (with the node below overshooting p_0 by half at a step this short,
    c_v dt/h^2 = 4e-4: Taylor-Hood is not monotone for such steps, Rodrigo et al., CMAME 2016),
    misses up to p_0 h/2 of the layer's pressure, hence alpha p_0 h/(2 M_v) of settlement
    (measured 0.5 of that, 0.66 % of s_0; alpha = 1 in mechanics alone would move s_0 by 13 %).
    So the base, not the maximum, checks the pressure."""
    q, rows = loaded
    assert q["base_pressure_Pa"][0] == 0 and q["settlement_m"][0] == 0
    row = rows[1e-6]
    assert q["base_pressure_Pa"][row] == pytest.approx(P_0, rel=1e-6)
    drained = degree_of_consolidation(1e-6) * (S_INF - S_0)
    first_cell = ALPHA * P_0 * CELL / (2 * CONSTRAINED)
    assert q["settlement_m"][row] == pytest.approx(S_0 + drained, abs=first_cell)


def test_consolidation_follows_the_series_in_the_generalised_cv(loaded):
    """From the computed undrained state: the degree of consolidation (settlement) within 1 %
    of the series at A12's T_v and the base pressure within 1 % of p_0 (20 cells, BDF2 steps
    growing to 0.02 t_c, as in test_terzaghi.py). A c_v off by 10 % moves U(0.197) by 4 %."""
    q, rows = loaded
    for factor in TIME_FACTORS[1:]:
        row = rows[factor]
        settled = (q["settlement_m"][row] - S_0) / (S_INF - S_0)
        assert settled == pytest.approx(degree_of_consolidation(factor), rel=1e-2), factor
        pressure = q["base_pressure_Pa"][row] / P_0
        assert pressure == pytest.approx(base_pressure_ratio(factor), abs=1e-2), factor


@pytest.mark.mpi
def test_undrained_start_is_the_same_on_two_ranks(tmp_path):
    """The step load to T_v = 0.05 on 1 and 2 ranks: every column equal to 1e-8."""
    settings = {**STEP_LOAD, "time.end": 0.05 * T_C, "output.times": [1e-6 * T_C]}
    args = []
    for key, value in settings.items():
        text = f'"{value}"' if isinstance(value, str) else value
        args += ["--set", f"{key}={text}"]
    serial, parallel = runs_on_ranks(CASE, tmp_path, *args)
    assert serial["base_pressure_Pa"][1] == pytest.approx(P_0, rel=1e-6)
    assert_same_by_units(serial, parallel, rtol=1e-8)
