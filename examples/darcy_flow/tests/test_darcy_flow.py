"""Verification of the darcy_flow plug-in against closed forms, through the whole framework.

- A linear pressure drop in 1D: the velocity k dp/(mu L) everywhere, in = out.
- Layers in series (2D): the harmonic-mean flux and the interface pressure.
- Layers in parallel (2D): the flow splits in proportion to the permeabilities.
- A uniform source between two open ends (1D): the parabolic pressure, volume balance.
- An inflow boundary: the pressure it takes to push the flux through.
- A slightly compressible column (storage): stored volume + outflow = what entered.
- The conformance kit of ScaleBridge (schema, fields, Jacobian, dimensions, 1 vs 2 ranks).

Cases are built as dicts; the plug-in is found through its entry point, as any user's would be.
"""

import numpy as np
import pytest
import ufl
from app.simulation import Simulation
from app.testing import check_plugin
from dolfinx import fem

from darcy_flow import DarcyFlow

K, MU, DP = 1e-10, 1e-3, 1e4  # m^2, Pa s, Pa


def run(mesh: dict, flow: dict, time: dict | None = None):
    case = {"mesh": mesh, "physics": {"darcy_flow": flow}}
    if time:
        case["time"] = time
    sim = Simulation.from_case(case)
    return sim, sim.run()


def ends(high: float = DP, low: float = 0.0) -> dict:
    return {
        "left": {"type": "pressure", "value": high},
        "right": {"type": "pressure", "value": low},
    }


def last(result, column: str) -> float:
    return float(result.quantities[column][-1])


def test_linear_pressure_drop_1d():
    mesh = {"type": "interval", "length": [2.0], "cells": [10]}
    _, result = run(mesh, {"permeability": K, "viscosity": MU, "boundaries": ends()})
    q = K * DP / (MU * 2.0)
    velocity = result.fields["velocity"].x.array
    assert np.allclose(velocity, q, rtol=1e-10, atol=0)
    pressure = result.fields["pressure"]
    x = pressure.function_space.tabulate_dof_coordinates()[:, 0]
    assert np.allclose(pressure.x.array, DP * (1 - x / 2.0), rtol=0, atol=1e-8 * DP)
    assert last(result, "outflow_right_m3_per_s_per_m2") == pytest.approx(q, rel=1e-10)
    assert last(result, "outflow_left_m3_per_s_per_m2") == pytest.approx(-q, rel=1e-10)


LAYERS = {"type": "rectangle", "length": [1.0, 0.2], "cells": [10, 4]}


def test_layers_in_series_2d():
    """q = dp / (mu (L1/k1 + L2/k2)); the interface pressure divides dp by the resistances."""
    k1, k2, l1, l2 = 4e-10, 1e-10, 0.4, 0.6
    mesh = LAYERS | {"regions": {"inlet_layer": "x < 0.4"}}
    flow = {"permeability": {"inlet_layer": k1, "domain": k2}, "boundaries": ends()}
    _, result = run(mesh, flow)
    q = DP / (MU * (l1 / k1 + l2 / k2))
    velocity = result.fields["velocity"].x.array.reshape(-1, 2)
    assert np.allclose(velocity[:, 0], q, rtol=1e-9) and np.allclose(
        velocity[:, 1], 0, atol=1e-9 * q
    )
    assert last(result, "outflow_right_m3_per_s_per_m") == pytest.approx(q * 0.2, rel=1e-10)
    total = sum(last(result, f"outflow_{side}_m3_per_s_per_m") for side in ("left", "right"))
    assert abs(total) < 1e-12 * q * 0.2  # what enters leaves
    pressure = result.fields["pressure"]
    x = pressure.function_space.tabulate_dof_coordinates()[:, 0]
    interface = DP * (l2 / k2) / (l1 / k1 + l2 / k2)
    assert np.allclose(pressure.x.array[np.isclose(x, l1)], interface, rtol=1e-10)


def test_layers_in_parallel_2d():
    """Side by side along the flow: each layer carries k_i h_i dp/(mu L)."""
    k1, k2 = 3e-10, 1e-10
    mesh = LAYERS | {"regions": {"fast": "y < 0.05"}}
    flow = {"permeability": {"fast": k1, "domain": k2}, "boundaries": ends()}
    _, result = run(mesh, flow)
    expected = (k1 * 0.05 + k2 * 0.15) * DP / (MU * 1.0)
    assert last(result, "outflow_right_m3_per_s_per_m") == pytest.approx(expected, rel=1e-10)


def test_uniform_source_between_open_ends_1d():
    """-(k/mu) p'' = s, p(0) = p(L) = 0: p = s mu x (L - x)/(2 k), nodally exact in 1D."""
    s, length = 1e-4, 1.0
    mesh = {"type": "interval", "length": [length], "cells": [8]}
    flow = {"permeability": K, "source": s, "boundaries": ends(0.0, 0.0)}
    _, result = run(mesh, flow)
    pressure = result.fields["pressure"]
    x = pressure.function_space.tabulate_dof_coordinates()[:, 0]
    assert np.allclose(pressure.x.array, s * MU * x * (length - x) / (2 * K), rtol=1e-10, atol=1)
    assert last(result, "max_pressure_Pa") == pytest.approx(s * MU * length**2 / (8 * K))
    out = last(result, "outflow_left_m3_per_s_per_m2") + last(
        result, "outflow_right_m3_per_s_per_m2"
    )
    assert last(result, "injected_m3_per_s_per_m2") == pytest.approx(s * length, rel=1e-12)
    assert out == pytest.approx(s * length, rel=1e-10)


def test_inflow_boundary_1d():
    """A pumped flux g through an open outlet needs p(0) = g mu L / k."""
    g, length = 2e-4, 0.5
    mesh = {"type": "interval", "length": [length], "cells": [5]}
    boundaries = {"left": {"type": "inflow", "value": g}, "right": {"type": "pressure", "value": 0}}
    _, result = run(mesh, {"permeability": K, "boundaries": boundaries})
    assert last(result, "max_pressure_Pa") == pytest.approx(g * MU * length / K, rel=1e-10)
    assert last(result, "outflow_right_m3_per_s_per_m2") == pytest.approx(g, rel=1e-10)
    assert last(result, "outflow_left_m3_per_s_per_m2") == pytest.approx(-g, rel=1e-12)


def test_storage_balance():
    """S dp/dt + div q = 0: the fluid stored (S p integrated) is what the boundaries let in.

    With BDF1 the rows of the discrete equations sum to S (p - p_n)/dt integrated, and the interior
    rows vanish, so the outflows (reactions at the fixed-pressure ends) times dt, summed over the
    steps, equal minus the stored volume to round-off.
    """
    storage, dt = 1e-9, 10.0
    mesh = {"type": "interval", "length": [1.0], "cells": [20]}
    flow = {"permeability": K, "storage": storage, "boundaries": ends()}
    sim, result = run(mesh, flow, {"scheme": "bdf1", "end": 100.0, "dt": dt})
    q = result.quantities
    out = q["outflow_left_m3_per_s_per_m2"] + q["outflow_right_m3_per_s_per_m2"]
    p = sim.store["pressure"].function
    dx = ufl.dx(domain=p.function_space.mesh)
    stored = fem.assemble_scalar(fem.form(storage * p * dx))
    assert stored > 0.1 * storage * DP  # the column is filling up
    assert stored == pytest.approx(-np.sum(out[1:]) * dt, rel=1e-9)
    assert q["max_pressure_Pa"][1] == pytest.approx(DP)  # the boundary value, every step


def test_conformance():
    case = {
        "mesh": {"type": "rectangle", "length": [1.0, 0.2], "cells": [8, 2]},
        "physics": {
            "flow": {
                "type": "darcy_flow",
                "permeability": "1e-10*(1 + 0.5*x)",
                "storage": 1e-9,
                "boundaries": {
                    "left": {"type": "inflow", "value": "1e-4*t"},
                    "right": {"type": "pressure", "value": 0},
                },
            }
        },
        "time": {"scheme": "bdf2", "end": 2.0, "dt": 1.0},
    }
    print(check_plugin(DarcyFlow, case))
