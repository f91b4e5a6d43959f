"""Terzaghi's consolidation (VALIDATION.md A12): darcy and mechanics coupled by Biot's terms.

cases/terzaghi.toml as shipped (20 cells over H, P1 pressure, P2 displacement, BDF2 from
T_v = 1e-3 growing x1.25 per step) against the series solution: the degree of consolidation at
the four T_v of A12 and the pore pressure profile at T_v = 0.1, their second-order convergence
in mesh and step, a compressible medium with alpha < 1 nobody tuned the case for, the split
(fixed-point) coupling equal to the monolithic one, and 2 ranks equal to 1.
"""

import math

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.simulation import Simulation
from tests.conftest import CASES, assert_same_by_units, runs_on_ranks

CASE = CASES / "terzaghi.toml"
# The parameter set's clay: load, drained E and nu, k, mu (cases/sets/terzaghi_clay.toml).
LOAD, E, NU, K, MU = 1e4, 1e7, 0.25, 1e-15, 1e-3
M_V = E * (1 - NU) / ((1 + NU) * (1 - 2 * NU))


def consolidation_time(storage: float = 0.0, alpha: float = 1.0) -> float:
    """t_c = H^2/c_v, c_v = k/(mu (S + alpha^2/M_v)), H = 1 m."""
    return MU * (storage + alpha**2 / M_V) / K


def degree_of_consolidation(time_factor: float) -> float:
    """U(T_v) = 1 - sum_m 2/M^2 exp(-M^2 T_v), M = (2m + 1) pi/2."""
    terms = ((2 * m + 1) * math.pi / 2 for m in range(400))
    return 1 - sum(2 / M**2 * math.exp(-(M**2) * time_factor) for M in terms)


def pressure_ratio(depth: ufl.core.expr.Expr, time_factor: float) -> ufl.core.expr.Expr:
    """p/p_0 = sum_m (2/M) sin(M z/H) exp(-M^2 T_v), z the depth below the drained top."""
    terms = ((2 * m + 1) * math.pi / 2 for m in range(30))
    return sum(2 / M * ufl.sin(M * depth) * math.exp(-(M**2) * time_factor) for M in terms)


def profile_error(cells: int, steps: int, time_factor: float = 0.1) -> float:
    """Relative L2 error of the pore pressure at ``time_factor`` (fixed steps)."""
    end = time_factor * consolidation_time()
    overrides = {
        "mesh.cells": [1, cells],
        "time.end": end,
        "time.dt": end / steps,
        "time.adaptive": None,
        "output.times": [],
    }
    p = Simulation.from_case(CASE, overrides=overrides).run().fields["pressure"]
    mesh = p.function_space.mesh
    exact = LOAD * pressure_ratio(1.0 - ufl.SpatialCoordinate(mesh)[1], time_factor)
    dx = ufl.dx(domain=mesh, metadata={"quadrature_degree": 8})
    error, norm = (
        MPI.COMM_WORLD.allreduce(fem.assemble_scalar(fem.form(f * dx)), op=MPI.SUM)
        for f in ((p - exact) ** 2, exact**2)
    )
    return math.sqrt(error / norm)


def slope(sizes: list[float], errors: list[float]) -> float:
    return float(np.polyfit(np.log(sizes), np.log(errors), 1)[0])


@pytest.fixture(scope="module")
def shipped():
    return Simulation.from_case(CASE).run().quantities


@pytest.mark.parametrize(
    ("time_factor", "published"), [(0.05, 0.2523), (0.197, 0.5003), (0.5, 0.7640), (0.848, 0.9)]
)
def test_degree_of_consolidation_at_the_values_of_a12(shipped, time_factor, published):
    """U(T_v) within 1 % of A12's values (measured: 0.35 %, 0.11 %, 0.05 %, 0.03 %)."""
    assert degree_of_consolidation(time_factor) == pytest.approx(published, abs=1e-4)
    time_factors = shipped["time_s"] / consolidation_time()
    (row,) = np.flatnonzero(np.isclose(time_factors, time_factor, rtol=1e-4))
    assert shipped["consolidation_degree"][row] == pytest.approx(published, rel=1e-2)


def test_undrained_start_and_drained_end(shipped):
    """At t = 0 the water carries the whole load (no settlement, p = load at the base); by
    T_v = 1 the base pressure is the series' and the settlement approaches s_inf = load H/M_v."""
    assert shipped["settlement_m"][0] == pytest.approx(0.0, abs=1e-12 * LOAD / M_V)
    assert shipped["base_pressure_Pa"][0] == pytest.approx(LOAD, rel=1e-12)
    base = LOAD * float(pressure_ratio(1.0, 1.0))
    assert shipped["base_pressure_Pa"][-1] == pytest.approx(base, rel=2e-2)
    settlement = degree_of_consolidation(1.0) * LOAD / M_V
    assert shipped["settlement_m"][-1] == pytest.approx(settlement, rel=1e-2)


def test_squeezed_water_is_the_settlement(shipped):
    """Water leaves only through the drained top, and the fluid content lost equals the
    volume the column lost (S = 0, alpha = 1: zeta = div u), per m of depth."""
    width = 0.1  # H/10
    assert shipped["fluid_stored_m3_per_m"][-1] == pytest.approx(
        -shipped["settlement_m"][-1] * width, rel=1e-10
    )
    assert np.all(shipped["fluid_outflow_top_m3_per_s_per_m"][1:] > 0)
    assert np.all(shipped["fluid_outflow_bottom_m3_per_s_per_m"] == 0)


def test_water_leaves_the_top_at_the_series_flux(shipped):
    """The flow through the drained top (the reaction of the pressure's rows) against
    (k/mu) dp/dz there, p_0/H sum_m 2 exp(-M^2 T_v) per unit area: within 2 % from
    T_v = 0.05 on (1.6 %, then below 1.3 %; 0.1 % at T_v = 0.5)."""
    time_factors = shipped["time_s"] / consolidation_time()
    for time_factor, flow in zip(
        time_factors, shipped["fluid_outflow_top_m3_per_s_per_m"], strict=True
    ):
        if time_factor < 0.05:
            continue
        modes = ((2 * m + 1) * math.pi / 2 for m in range(400))
        flux = K / MU * LOAD * sum(2 * math.exp(-(M**2) * time_factor) for M in modes)
        assert flow == pytest.approx(flux * 0.1, rel=2e-2)  # a column 0.1 m wide


@pytest.mark.parametrize("setting", ["time.scheme=cn", "physics.darcy.degree=2"])
def test_flows_at_an_instant_solve_the_constrained_displacement_too(setting):
    """Crank-Nicolson reports every row's flows from the rates at that instant, BDF the first
    row's: with S = 0 the fluid content's rate alpha div(du/dt) is the displacement's, whose
    rate obeys equilibrium differentiated in time (the rates' system was singular without
    it). Both runs end, and U is within 1 % of A12 from T_v = 0.05 on."""
    key, value = setting.split("=")
    q = Simulation.from_case(CASE, overrides={key: int(value) if value.isdigit() else value})
    q = q.run().quantities
    time_factors = q["time_s"] / consolidation_time()
    for time_factor, degree in zip(time_factors, q["consolidation_degree"], strict=True):
        if time_factor >= 0.05:
            assert degree == pytest.approx(degree_of_consolidation(time_factor), rel=1e-2)


def test_pressure_profile_at_tv_0_1():
    """20 cells and 20 steps: the L2 error of p against the series is below 1 % (0.056 %)."""
    assert profile_error(20, 20) < 1e-2


def test_profile_converges_at_second_order():
    """Mesh and step refined together (10, 20, 40): order 2 (measured 1.96); steps alone on a
    fine mesh (320 cells; 8, 16, 32 steps of BDF2): order 2 (2.27: 2.43, then 2.11)."""
    cells = [10, 20, 40]
    assert slope([1 / n for n in cells], [profile_error(n, n) for n in cells]) > 1.9
    steps = [8, 16, 32]
    assert slope([1 / n for n in steps], [profile_error(320, n) for n in steps]) > 1.8


def test_compressible_medium_with_alpha_below_one():
    """S = 2e-8 1/Pa and alpha = 0.8: the undrained pressure p_0 = alpha load/(alpha^2 + S M_v),
    the instantaneous settlement s_0 and c_v all change; U still follows the series in the
    T_v of the generalised c_v (what the set's derived constants give the case's columns and
    output times)."""
    storage, alpha = 2e-8, 0.8
    overrides = {"parameters.S": storage, "parameters.alpha": alpha}
    q = Simulation.from_case(CASE, overrides=overrides).run().quantities
    undrained = alpha * LOAD / (alpha**2 + storage * M_V)
    assert q["base_pressure_Pa"][0] == pytest.approx(undrained, rel=1e-10)
    assert q["settlement_m"][0] == pytest.approx((LOAD - alpha * undrained) / M_V, rel=1e-10)
    time_factors = q["time_s"] / consolidation_time(storage, alpha)
    # output.times and the end are written in t_c, so the rows follow the set's new c_v
    listed = [0, 0.01, 0.05, 0.1, 0.197, 0.5, 0.848, 1]
    np.testing.assert_allclose(time_factors, listed, rtol=1e-9)
    for time_factor, degree in zip(time_factors[1:], q["consolidation_degree"][1:], strict=True):
        assert degree == pytest.approx(degree_of_consolidation(time_factor), rel=1e-2)


def test_split_coupling_reproduces_the_monolithic_solve():
    """Darcy and mechanics in two groups iterated to convergence (fixed point) give the one
    Newton solve's settlement: the fluid content reads the other group's displacement at the
    step's start."""
    end = 0.2 * consolidation_time()
    base = {"time.end": end, "time.dt": end / 10, "time.adaptive": None, "output.times": []}
    groups = [{"name": "flow", "physics": ["darcy"]}, {"name": "solid", "physics": ["mechanics"]}]
    split = {
        "coupling": {
            "method": "fixed_point",
            "groups": groups,
            "iterations": {"tolerance": 1e-12, "max_iterations": 100},
        }
    }
    monolithic = Simulation.from_case(CASE, overrides=base).run().quantities
    iterated = Simulation.from_case(CASE, overrides=base | split).run().quantities
    np.testing.assert_allclose(
        iterated["consolidation_degree"], monolithic["consolidation_degree"], atol=1e-9
    )


@pytest.mark.mpi
def test_one_and_two_ranks_agree(tmp_path):
    """Every column equal to 1e-8, a zero by symmetry (the base's sliding) to round-off of the
    settlement."""
    assert_same_by_units(*runs_on_ranks(CASE, tmp_path), rtol=1e-8)


def test_thin_3d_column_consolidates_as_the_2d_one():
    """The same layer as a 3D column (box, rollers on its four sides, along y): its degree of
    consolidation at T_v = 0.2 is the series' (P1/P1, 10 cells, 10 BDF2 steps)."""
    end = 0.2 * consolidation_time()
    sides = ("left", "right", "back", "front")
    rollers = {side: {"type": "displacement", "xxzz"[i]: 0} for i, side in enumerate(sides)}
    boundaries = rollers | {
        "bottom": {"type": "displacement", "y": 0},
        "top": {"type": "pressure", "value": "load"},
    }
    overrides = {
        "mesh.type": "box",
        "mesh.length": ["H/10", "H", "H/10"],
        "mesh.cells": [1, 10, 1],
        "output.probes.base.at": ["H/20", 0, "H/20"],
        "physics.mechanics.degree": 1,
        "physics.mechanics.boundaries": boundaries,
        "time.end": end,
        "time.dt": end / 10,
        "time.adaptive": None,
        "output.times": [],
    }
    q = Simulation.from_case(CASE, overrides=overrides).run().quantities
    assert q["consolidation_degree"][-1] == pytest.approx(degree_of_consolidation(0.2), rel=1e-2)
