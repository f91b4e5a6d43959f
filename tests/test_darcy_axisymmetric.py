"""darcy in axisymmetric coordinates (x = r, y = z), alone and carrying mass transport.

- Thiem's steady flow to a well: p logarithmic in r and the flow Q = 2 pi k H dp/(mu ln(R/r_w))
  through both rims, on the (r, z) meridian and on a 1D radial mesh (per metre of height).
- A drained solid cylinder: the centre pressure against the Bessel series of radial diffusion,
  and the fluid balance of the full revolution.
- A tracer injected at the well and carried outward by the Darcy velocity q_r = A/r, steady:
  c = (R^b - r^b)/(R^b - r_w^b) with b = A/D (mass transport's axisymmetric coordinates).
- Biot coupling with axisymmetric mechanics: Terzaghi's column as a cylinder in a rigid ring,
  and a squeezed cylinder whose expelled water is the volume its rim sweeps (the hoop strain
  u_r/r in the fluid content).
- 1 and 2 ranks agree; a 3D mesh is refused at the case path.
"""

import math

import numpy as np
import pytest
import tomli_w
from mpi4py import MPI
from scipy.special import j1, jn_zeros

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks
from tests.test_darcy import MU
from tests.test_terzaghi import CASE as TERZAGHI
from tests.test_terzaghi import consolidation_time

K, WELL, RIM, HEIGHT = 1e-12, 0.1, 1.0, 2.0  # permeability m^2, radii and height m
P_WELL, P_RIM = 0.0, 1e5  # Pa: water flows in toward the well


def thiem_flow() -> float:
    """Volume flow into the well [m^3/s] over the height."""
    return 2 * math.pi * K * HEIGHT * (P_RIM - P_WELL) / (MU * math.log(RIM / WELL))


def thiem_pressure(r: np.ndarray) -> np.ndarray:
    return P_WELL + (P_RIM - P_WELL) * np.log(r / WELL) / math.log(RIM / WELL)


def well_case(dimension: int, darcy: dict | None = None, **sections) -> dict:
    """The annulus r_w <= r <= R (and 0 <= z <= H on the meridian) in axisymmetric darcy."""
    if dimension == 2:
        mesh = {"type": "rectangle", "origin": [WELL, 0], "length": [RIM - WELL, HEIGHT]}
        mesh["cells"] = [18, 4]
    else:
        mesh = {"type": "interval", "origin": [WELL], "length": [RIM - WELL], "cells": [18]}
    flow = {
        "coordinates": "axisymmetric",
        "degree": 2,
        "permeability": K,
        "viscosity": MU,
        "boundaries": {
            "left": {"type": "pressure", "value": P_WELL},
            "right": {"type": "pressure", "value": P_RIM},
        },
    }
    physics = {"darcy": flow | (darcy or {})} | sections.pop("physics", {})
    return {"mesh": mesh, "physics": physics, **sections}


def gathered(function) -> tuple[np.ndarray, np.ndarray]:
    """(dof coordinates, values) of a field from every rank."""
    space = function.function_space
    points = np.concatenate(MPI.COMM_WORLD.allgather(space.tabulate_dof_coordinates()))
    return points, np.concatenate(MPI.COMM_WORLD.allgather(function.x.array))


@pytest.mark.parametrize(("dimension", "pressure_tolerance"), [(2, 2e-3), (1, 2e-4)])
def test_steady_flow_to_a_well_is_thiems(dimension: int, pressure_tolerance: float):
    """P2 on 18 cells across: p within ``pressure_tolerance`` of the drop (measured 9.3e-4 on
    the triangles of the meridian, 7.1e-5 on the 1D mesh; the log is steep at the well), the
    well's and the rim's flows within 1e-4 of Q (measured 3.0e-5 and 3.3e-5, falling to 2e-6
    with 36 cells); a 1D mesh reports the flow per metre of height, in m^3/s/m."""
    result = Simulation.from_case(well_case(dimension)).run()
    points, p = gathered(result.fields["pressure"])
    exact = thiem_pressure(points[:, 0])
    assert np.abs(p - exact).max() < pressure_tolerance * (P_RIM - P_WELL)
    q = result.quantities
    units, flow = ("m3_per_s", thiem_flow()) if dimension == 2 else ("m3_per_s_per_m", None)
    flow = flow or thiem_flow() / HEIGHT
    assert q[f"fluid_outflow_left_{units}"][-1] == pytest.approx(flow, rel=1e-4)
    assert q[f"fluid_outflow_right_{units}"][-1] == pytest.approx(-flow, rel=1e-4)


def cylinder_series(fourier: float, terms: int = 60) -> float:
    """Centre of a cylinder drained at r = a from p0 = 1: sum 2 exp(-a_n^2 Fo)/(a_n J1(a_n))
    (J0(0) = 1), a_n the zeros of J0, Fo = c t/a^2."""
    zeros = jn_zeros(0, terms)
    return float(np.sum(2 * np.exp(-(zeros**2) * fourier) / (zeros * j1(zeros))))


def test_drained_cylinder_follows_the_bessel_series():
    """A solid cylinder of radius 1 m (1D, r from the axis), S = 1e-9 1/Pa, c = k/(mu S) = 1e-2
    m^2/s, p0 = 1 kPa drained at its rim: the centre pressure within 0.5 % of the series at
    Fo = 0.05, 0.1, 0.2 (measured 0.09 %, 0.04 %, 0.15 %: BDF1 with 400 steps)."""
    mesh = {"type": "interval", "length": [1.0], "cells": [40]}
    flow = {
        "coordinates": "axisymmetric",
        "degree": 2,
        "permeability": 1e-14,
        "viscosity": MU,
        "storage": 1e-9,
        "initial": 1e3,
        "boundaries": {"right": {"type": "pressure", "value": 0.0}},
    }
    case = {
        "mesh": mesh,
        "physics": {"darcy": flow},
        "time": {"scheme": "bdf1", "end": 20.0, "dt": 0.05},
        "output": {"times": [5.0, 10.0, 20.0], "probes": {"centre": [0.0]}},
    }
    q = Simulation.from_case(case).run().quantities
    diffusivity = 1e-14 / (MU * 1e-9)
    for t in (5.0, 10.0, 20.0):
        row = int(np.flatnonzero(np.isclose(q["time_s"], t))[0])
        centre = q["centre_pressure_Pa"][row] / 1e3
        assert centre == pytest.approx(cylinder_series(diffusivity * t), rel=5e-3), t


def test_drained_cylinder_balance_of_the_full_revolution():
    """Every BDF1 step: (stored_n - stored_n-1)/dt = -outflow_n, to 1e-9 of the flow; the first
    stored volume is S p0 pi a^2 per metre of height."""
    mesh = {"type": "interval", "length": [1.0], "cells": [20]}
    flow = {
        "coordinates": "axisymmetric",
        "permeability": 1e-14,
        "viscosity": MU,
        "storage": 1e-9,
        "initial": 1e3,
        "boundaries": {"right": {"type": "pressure", "value": 0.0}},
    }
    case = {"mesh": mesh, "physics": {"darcy": flow}, "time": {"scheme": "bdf1", "end": 2.0}}
    case["time"]["dt"] = 0.1
    q = Simulation.from_case(case).run().quantities
    stored = q["fluid_stored_m3_per_m"]
    outflow = q["fluid_outflow_right_m3_per_s_per_m"]
    assert stored[0] == pytest.approx(1e-9 * 1e3 * math.pi, rel=1e-12)
    rate = np.diff(stored) / 0.1
    assert np.abs(rate + outflow[1:]).max() < 1e-9 * np.abs(outflow[1:]).max()
    assert np.all(outflow[1:] > 0)


def test_tracer_carried_out_of_a_well():
    """Injection: p_w = 1e5 Pa at the well, 0 at the rim, so q_r = A/r outward with
    A = k dp/(mu ln(R/r_w)) = 4.34e-5 m^2/s; D = 2e-5 m^2/s (b = A/D = 2.17). Steady
    c = (R^b - r^b)/(R^b - r_w^b) within 1e-3 (P2, measured 6e-5); both instances in axisymmetric
    coordinates, the velocity read from darcy."""
    darcy = {
        "boundaries": {
            "left": {"type": "pressure", "value": P_RIM},
            "right": {"type": "pressure", "value": P_WELL},
        }
    }
    tracer = {
        "type": "mass_transport",
        "coordinates": "axisymmetric",
        "degree": 2,
        "velocity": "darcy_velocity",
        "effective_diffusivity": "none",
        "species": {
            "dye": {
                "diffusivity": 2e-5,
                "boundaries": {
                    "left": {"type": "concentration", "value": 1.0},
                    "right": {"type": "concentration", "value": 0.0},
                },
            }
        },
    }
    result = Simulation.from_case(well_case(2, darcy, physics={"tracer": tracer})).run()
    spread = K * (P_RIM - P_WELL) / (MU * math.log(RIM / WELL))
    power = spread / 2e-5
    points, c = gathered(result.fields["dye"])
    r = points[:, 0]
    exact = (RIM**power - r**power) / (RIM**power - WELL**power)
    assert np.abs(c - exact).max() < 1e-3


@pytest.mark.mpi
def test_thiem_on_one_and_two_ranks(tmp_path):
    path = tmp_path / "well.toml"
    path.write_text(tomli_w.dumps(well_case(2)))
    assert_same_quantities(*runs_on_ranks(path, tmp_path))


def test_a_3d_mesh_is_refused_at_the_case_path():
    case = well_case(2)
    case["mesh"] = {"type": "box", "cells": [2, 2, 2]}
    with pytest.raises(CaseError) as error:
        Simulation.from_case(case).run()
    assert "physics.darcy.coordinates" in str(error.value)
    assert "axisymmetric coordinates need a 1D or 2D mesh" in str(error.value)


def test_consolidation_of_an_axisymmetric_column_is_terzaghis():
    """cases/terzaghi.toml with mechanics and darcy both axisymmetric (the column's width is
    now a radius, its right side a rigid ring): u_r = 0, so the degree of consolidation is
    A12's, within 1 % (measured within 1.1e-5 of the plane column's)."""
    overrides = {
        "physics.mechanics.formulation": "axisymmetric",
        "physics.darcy.coordinates": "axisymmetric",
    }
    q = Simulation.from_case(TERZAGHI, overrides=overrides).run().quantities
    time_factors = np.asarray(q["time_s"]) / consolidation_time()
    published = ((0.05, 0.2523), (0.197, 0.5003), (0.5, 0.7640), (0.848, 0.9))
    for time_factor, value in published:
        (row,) = np.flatnonzero(np.isclose(time_factors, time_factor, rtol=1e-4))
        assert q["consolidation_degree"][row] == pytest.approx(value, rel=1e-2)


def test_squeezed_cylinder_expels_the_volume_it_loses():
    """A cylinder (r <= 1 m, 0.2 m high, u_z = 0 on both ends) squeezed by 10 kPa on its rim
    from t = 0 and drained there (c_v = 1.35e-2 m^2/s: 87 % consolidated by 30 s); nearly
    incompressible constituents (S = 1e-15 1/Pa: S p is 1e-8 of eps_v; alpha = 1). The fluid
    content int eps_v dV, eps_v = du_r/dr + u_r/r + du_z/dz, equals the volume the rim's
    displacement takes, 2 pi a h u_r(a), at every step to 1e-6 (without the hoop strain u_r/r
    it would miss int u_r 2 pi dr dz, half of it), and the water leaving the rim is its rate
    (BDF1) to 1e-9. The centre's pressure first rises above the undrained 10 kPa as the
    drained rim stiffens (the Mandel-Cryer effect: measured 11.0 kPa at 5 s)."""
    mesh = {"type": "rectangle", "length": [1.0, 0.2], "cells": [8, 2]}
    mechanics = {
        "formulation": "axisymmetric",
        "degree": 2,
        "youngs_modulus": 1e7,
        "poisson_ratio": 0.3,
        "pore_pressure": {"field": "pressure", "biot_coefficient": 1},
        "boundaries": {
            "left": {"type": "displacement", "x": 0},
            "bottom": {"type": "displacement", "y": 0},
            "top": {"type": "displacement", "y": 0},
            "right": {"type": "pressure", "value": 1e4},
        },
    }
    flow = {
        "coordinates": "axisymmetric",
        "permeability": 1e-12,
        "viscosity": MU,
        "biot_coefficient": 1,
        "storage": 1e-15,
        "initial": 1e4,  # undrained: the water carries the squeeze (u = 0 at t = 0)
        "boundaries": {"right": {"type": "pressure", "value": 0.0}},
    }
    rim = {"value": "displacement_x", "over": "right", "units": "m"}
    case = {
        "mesh": mesh,
        "physics": {"darcy": flow, "mechanics": mechanics},
        "time": {"scheme": "bdf1", "end": 30.0, "dt": 1.0},
        "output": {"xdmf": False, "quantities": {"rim": rim}},
    }
    q = Simulation.from_case(case).run().quantities
    stored = np.asarray(q["fluid_stored_m3"])
    swept = 2 * math.pi * 1.0 * 0.2 * np.asarray(q["rim_m"])
    assert np.all(stored[1:] < 0)  # squeezed: water leaves
    assert q["max_pressure_Pa"][0] == pytest.approx(1e4)
    assert np.max(q["max_pressure_Pa"]) > 1.05e4
    assert np.abs(stored - swept).max() < 1e-6 * np.abs(stored).max()
    rate = np.diff(stored) / 1.0
    leaving = np.asarray(q["fluid_outflow_right_m3_per_s"])[1:]
    assert np.abs(rate + leaving).max() < 1e-9 * np.abs(leaving).max()
