"""The darcy plug-in alone and with its partners, against closed forms.

- Steady flow through a layered column: the flux of resistances in series, the pressure at
  the interface, the flow leaving equal to the flow entering.
- Gravity: a column drained at its top settles to the hydrostatic pressure, with no flow.
- Kozeny-Carman: the permeability of a porosity field against k0 (phi/phi0)^3
  ((1 - phi0)/(1 - phi))^2, and the flux through the column it makes.
- Storage: the fluid balance d(stored)/dt = injected - outflows closes to round-off.
- mass_transport reads the Darcy velocity: a tracer front moves at q/phi.
- Mechanics loaded one way by a prescribed pore pressure (effective stress closed form).
- Bad input: one message at the case path, exit code 2.
"""

import math

import numpy as np
import pytest
from mpi4py import MPI

from app.cli import main
from app.simulation import Simulation
from tests.test_bad_input import error_of, write

MU = 1e-3  # Pa s


def column(cells: int, darcy: dict, length: float = 1.0, **sections) -> dict:
    """A 1D column [0, length] with a darcy instance (and other sections)."""
    mesh = {"type": "interval", "length": [length], "cells": [cells]}
    physics = {"darcy": {"viscosity": MU} | darcy} | sections.pop("physics", {})
    return {"mesh": mesh, "physics": physics, **sections}


def drop(inlet: float, outlet: float = 0.0) -> dict:
    return {
        "left": {"type": "pressure", "value": inlet},
        "right": {"type": "pressure", "value": outlet},
    }


def nodal(function, x: float) -> float:
    """A 1D field's value at the node x, from the rank that holds it."""
    points = function.function_space.tabulate_dof_coordinates()[:, 0]
    hit = np.isclose(points, x)
    local = float(function.x.array[hit][0]) if hit.any() else -math.inf
    return MPI.COMM_WORLD.allreduce(local, op=MPI.MAX)


def velocities(result, name: str = "darcy_velocity") -> np.ndarray:
    values = result.fields[name].x.array
    return np.concatenate(MPI.COMM_WORLD.allgather(values))


def test_layered_column_is_resistances_in_series():
    """Sand (k = 1e-11, 0.3 m) over clay (k = 1e-14, 0.7 m) under 1 bar: q = dp / (mu sum L/k)
    in both layers, the interface pressure dp - q mu L_sand/k_sand, the outflow q."""
    darcy = {
        "permeability": {"sand": 1e-11, "clay": 1e-14},
        "boundaries": drop(1e5),
    }
    case = column(10, darcy)
    case["mesh"]["regions"] = {"sand": "x < 0.3", "clay": "x > 0.3"}
    result = Simulation.from_case(case).run()
    q = 1e5 / (MU * (0.3 / 1e-11 + 0.7 / 1e-14))
    np.testing.assert_allclose(velocities(result), q, rtol=1e-10)
    interface = 1e5 - q * MU * 0.3 / 1e-11
    assert nodal(result.fields["pressure"], 0.3) == pytest.approx(interface, rel=1e-10)
    flows = result.quantities
    assert flows["fluid_outflow_right_m3_per_s_per_m2"][-1] == pytest.approx(q, rel=1e-10)
    assert flows["fluid_outflow_left_m3_per_s_per_m2"][-1] == pytest.approx(-q, rel=1e-10)


def test_gravity_drained_column_is_hydrostatic():
    """A vertical 2D column drained at its top (p = 0) under gravity settles to
    p = rho_f g (H - y): no flow, the base at rho_f g H."""
    darcy = {
        "permeability": 1e-12,
        "viscosity": MU,
        "fluid_density": 1000.0,
        "gravity": [0, -9.81],
        "boundaries": {"top": {"type": "pressure", "value": 0}},
    }
    case = {
        "mesh": {"type": "rectangle", "length": [0.2, 2.0], "cells": [1, 8]},
        "physics": {"darcy": darcy},
        "output": {"probes": {"base": {"at": [0.1, 0.0], "fields": ["pressure"]}}},
    }
    result = Simulation.from_case(case).run()
    assert result.quantities["base_pressure_Pa"][-1] == pytest.approx(1000 * 9.81 * 2, rel=1e-10)
    assert np.abs(velocities(result)).max() < 1e-12 * 1e-12 / MU * 1000 * 9.81


def kozeny_carman(phi: np.ndarray, k0: float, phi0: float) -> np.ndarray:
    return k0 * (phi / phi0) ** 3 * ((1 - phi0) / (1 - phi)) ** 2


def kozeny_carman_flux(cells: int, k0: float, phi0: float) -> tuple[float, float]:
    """Flux through the column of phi = 0.2 + 0.3 x under 1e4 Pa, and the largest difference
    of the permeability field from the law at the cells' midpoints."""
    darcy = {
        "permeability": k0,
        "kozeny_carman": {"porosity": "porosity", "reference_porosity": phi0},
        "boundaries": drop(1e4),
    }
    porosity = {"type": "prescribed", "fields": {"porosity": {"value": "0.2 + 0.3*x"}}}
    result = Simulation.from_case(column(cells, darcy, physics={"rock": porosity})).run()
    k = result.fields["permeability"]
    midpoints = k.function_space.tabulate_dof_coordinates()[:, 0]
    local = np.abs(k.x.array - kozeny_carman(0.2 + 0.3 * midpoints, k0, phi0))
    flows = result.quantities
    q = flows["fluid_outflow_right_m3_per_s_per_m2"][-1]
    assert -flows["fluid_outflow_left_m3_per_s_per_m2"][-1] == pytest.approx(q, rel=1e-10)
    return q, MPI.COMM_WORLD.allreduce(local.max(initial=0.0), op=MPI.MAX)


def test_kozeny_carman_permeability_of_a_porosity_field():
    """phi = 0.2 + 0.3 x from a prescribed field, phi0 = 0.35: the permeability of each cell is
    the law's closed form at its midpoint; the flux through the column converges to
    dp / (mu int dx/k) at second order (20, 40, 80 cells; 0.1 % at 40)."""
    k0, phi0 = 1e-12, 0.35
    x = np.linspace(0, 1, 200001)
    exact = 1e4 / np.trapezoid(MU / kozeny_carman(0.2 + 0.3 * x, k0, phi0), x)
    cells, errors = [20, 40, 80], []
    for n in cells:
        q, largest = kozeny_carman_flux(n, k0, phi0)
        assert largest <= 1e-12 * k0
        errors.append(abs(q / exact - 1))
    assert errors[1] < 2e-3
    assert np.polyfit(np.log(cells), np.log(errors), 1)[0] < -1.9


def test_kozeny_carman_passes_nothing_where_the_pores_are_closed():
    """A porosity field that falls below 0 (a clogging mineral overshoots) gives k = 0 there,
    not the negative k of phi^3 that would drive water up the pressure gradient."""
    k0, phi0 = 1e-12, 0.3
    darcy = {
        "permeability": k0,
        "kozeny_carman": {"porosity": "porosity", "reference_porosity": phi0},
        "storage": 1e-9,
        "boundaries": drop(1e4),
    }
    porosity = {"type": "prescribed", "fields": {"porosity": {"value": "0.2 - 0.4*x"}}}
    time = {"scheme": "bdf1", "end": 1.0, "dt": 1.0}
    case = column(10, darcy, physics={"rock": porosity}, time=time)
    k = Simulation.from_case(case).run().fields["permeability"]
    midpoints = k.function_space.tabulate_dof_coordinates()[:, 0]
    expected = kozeny_carman(np.maximum(0.2 - 0.4 * midpoints, 0), k0, phi0)
    assert np.abs(k.x.array - expected).max(initial=0.0) <= 1e-12 * k0
    assert np.all(k.x.array[midpoints > 0.5] == 0)


def test_fluid_balance_closes_with_storage():
    """S = 1e-9 1/Pa, water pumped in at the left (flux) and drained at the right: every step
    the stored fluid grows by injected - outflows (BDF1: exactly, to round-off)."""
    darcy = {
        "permeability": 1e-13,
        "storage": 1e-9,
        "source": "1e-6*x",
        "initial": 2e4,
        "boundaries": {
            "left": {"type": "flux", "value": 1e-7},
            "right": {"type": "pressure", "value": 0},
        },
    }
    time = {"scheme": "bdf1", "end": 50.0, "dt": 5.0}
    q = Simulation.from_case(column(20, darcy, time=time)).run().quantities
    rate = np.diff(q["fluid_stored_m3_per_m2"]) / q["dt_s"][1:]
    net = (
        q["fluid_injected_m3_per_s_per_m2"]
        - q["fluid_outflow_left_m3_per_s_per_m2"]
        - q["fluid_outflow_right_m3_per_s_per_m2"]
    )[1:]
    assert q["fluid_outflow_left_m3_per_s_per_m2"][-1] == pytest.approx(-1e-7, rel=1e-12)
    np.testing.assert_allclose(rate, net, rtol=1e-9, atol=1e-12 * np.abs(net).max())
    assert q["max_pressure_Pa"][-1] < 2e4  # the column drains


def test_tracer_front_moves_at_darcy_velocity_over_porosity():
    """mass_transport advects a tracer with darcy's velocity: q = k dp/(mu L) = 1e-4 m/s,
    porosity 0.25, so at t = 1000 s the front (c = 1/2) is at q t/phi = 0.4 m (one cell)."""
    darcy = {"permeability": 1e-11, "boundaries": drop(1e4)}
    tracer = {
        "type": "mass_transport",
        "velocity": "darcy_velocity",
        "porosity": 0.25,
        "effective_diffusivity": "none",
        "stabilization": "supg",
        "species": {
            "dye": {
                "diffusivity": 1e-9,
                "boundaries": {
                    "left": {"type": "concentration", "value": 1.0},
                    "right": {"type": "outflow"},
                },
            }
        },
    }
    time = {"scheme": "bdf2", "end": 1000.0, "dt": 10.0}
    case = column(200, darcy, physics={"tracer": tracer}, time=time)
    result = Simulation.from_case(case).run()
    np.testing.assert_allclose(velocities(result), 1e-4, rtol=1e-10)
    dye = result.fields["dye"]
    x = np.concatenate(MPI.COMM_WORLD.allgather(dye.function_space.tabulate_dof_coordinates()))
    c = np.concatenate(MPI.COMM_WORLD.allgather(dye.x.array))
    order = np.argsort(x[:, 0])
    x, c = x[order, 0], c[order]
    front = np.interp(-0.5, -c, x)  # c falls along x
    assert front == pytest.approx(0.4, abs=1 / 200)


LAWS = {
    "elastic": {},
    "plasticity": {"plasticity": {"yield_stress": "1 GPa", "isotropic_modulus": "1 GPa"}},
    "incremental": {"stress_form": "incremental"},
}


@pytest.mark.parametrize("law", list(LAWS))
def test_prescribed_pore_pressure_loads_mechanics_one_way(law):
    """A free plane-strain block on rollers under a uniform pore pressure P (prescribed, no
    flow): the total stress is zero, the effective stress alpha P in-plane, so it expands by
    eps = alpha P / (2 (lambda + mu)) and sigma_zz = lambda 2 eps - alpha P, whichever law
    gives the effective stress (elastic, plasticity below yield, incremental)."""
    E, nu, P, alpha = 1e9, 0.3, 1e6, 0.7
    case = {
        "mesh": {"type": "rectangle", "length": [2.0, 1.0], "cells": [4, 2]},
        "physics": {
            "water": {"type": "prescribed", "fields": {"pressure": {"units": "Pa", "value": P}}},
            "mechanics": {
                "youngs_modulus": E,
                "poisson_ratio": nu,
                "pore_pressure": {"field": "pressure", "biot_coefficient": alpha},
                "boundaries": {
                    "left": {"type": "displacement", "x": 0},
                    "bottom": {"type": "displacement", "y": 0},
                },
            }
            | LAWS[law],
        },
        "output": {"quantities": {"sigma_zz": {"value": "out_of_plane_stress", "units": "Pa"}}},
    }
    result = Simulation.from_case(case).run()
    q = result.quantities
    lam, mu = E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))
    strain = alpha * P / (2 * (lam + mu))
    assert q["displacement_left_y_m"][-1] == pytest.approx(0.5 * strain, rel=1e-10)
    assert q["reaction_left_x_N_per_m"][-1] == pytest.approx(0.0, abs=1e-9 * P)
    assert q["sigma_zz_Pa"][-1] == pytest.approx(lam * 2 * strain - alpha * P, rel=1e-10)
    stress = result.fields["stress"].x.array.reshape(-1, 4)
    assert np.abs(stress).max() < 1e-8 * P  # total stress: the pressure balances sigma'


# --------------------------------------------------------------------------------------------
# Bad input: one message at the case path, exit code 2
# --------------------------------------------------------------------------------------------
BASE = """
[mesh]
type = "rectangle"
cells = [2, 2]

[physics.darcy]
permeability = "1e-12 m^2"
boundaries.top = { type = "pressure", value = 0 }
"""

COUPLED = """
[physics.mechanics]
youngs_modulus = 1e7
poisson_ratio = 0.3
pore_pressure = { field = "pressure" }
boundaries.bottom = { type = "fixed" }
"""


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("1e-12 m^2", "-1e-12"),
            "physics.darcy.permeability: must be > 0 m^2, got -1e-12 m^2",
        ),
        (
            ("1e-12 m^2", "1e-12 m/s"),
            "physics.darcy.permeability: '1e-12 m/s' has units of m / s but m^2 was expected",
        ),
        (
            ('permeability = "1e-12 m^2"', 'permeability = 1e-12\nviscosity = "1 Pa"'),
            "physics.darcy.viscosity: '1 Pa' has units of Pa but Pa*s was expected",
        ),
        (
            ('permeability = "1e-12 m^2"', "permeability = 1e-12\nbiot_coefficient = 1.2"),
            "physics.darcy.biot_coefficient: a Biot coefficient is at most 1, got 1.2",
        ),
        (
            ('permeability = "1e-12 m^2"', "permeability = 1e-12\nbiot_coefficient = 1"),
            "physics.darcy.displacement: 'darcy' (darcy) requires field 'displacement' (m) but "
            "no plug-in provides it",
        ),
        (
            ('permeability = "1e-12 m^2"', "permeability = 1e-12\ngravity = [0, 0, -9.81]"),
            "physics.darcy.gravity[0]: gravity needs 2 components on a 2D mesh, got 3",
        ),
        (
            (
                'permeability = "1e-12 m^2"',
                "permeability = 1e-12\nkozeny_carman = { porosity = 0.3, reference_porosity = 1 }",
            ),
            "physics.darcy.kozeny_carman.reference_porosity: must be < 1 dimensionless, got 1",
        ),
        (
            ('type = "pressure", value = 0', 'type = "drained", value = 0'),
            "physics.darcy.boundaries.top: unknown type 'drained'; expected one of 'pressure', "
            "'flux'",
        ),
    ],
)
def test_bad_darcy_input(tmp_path, capsys, edit, message):
    text = BASE.replace(*edit)
    assert text != BASE
    assert main(["check", str(write(tmp_path, text))]) == 2
    assert message in error_of(capsys)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('field = "pressure"', 'field = "pore_pressure"'),
            "physics.mechanics.pore_pressure.field: 'mechanics' (mechanics) requires field "
            "'pore_pressure' (Pa) but no plug-in provides it",
        ),
        (
            ('field = "pressure"', 'field = "pressure", biot_coefficient = -0.5'),
            "physics.mechanics.pore_pressure.biot_coefficient: must be >= 0 dimensionless",
        ),
        (
            ("poisson_ratio = 0.3", 'poisson_ratio = 0.3\nformulation = "plane_stress"'),
            "physics.mechanics: pore_pressure needs the out-of-plane strain of plane strain",
        ),
        (
            ("poisson_ratio = 0.3", "poisson_ratio = 0.3\nlarge_deformation = true"),
            "physics.mechanics: pore_pressure is small strain only",
        ),
    ],
)
def test_bad_pore_pressure_input(tmp_path, capsys, edit, message):
    text = (BASE + COUPLED).replace(*edit)
    assert text != BASE + COUPLED
    assert main(["check", str(write(tmp_path, text))]) == 2
    assert message in error_of(capsys)


def test_pressure_field_of_the_wrong_units(tmp_path, capsys):
    """A field named as the pore pressure must be a pressure: a temperature is refused."""
    text = COUPLED.replace('field = "pressure"', 'field = "temperature"')
    text = text + '\n[physics.heat]\nboundaries.top = { type = "temperature", value = 300 }\n'
    mesh = '[mesh]\ntype = "rectangle"\ncells = [2, 2]\n'
    assert main(["check", str(write(tmp_path, mesh + text))]) == 2
    assert (
        "physics.mechanics.pore_pressure.field: 'mechanics' (mechanics) requires 'temperature' "
        "in Pa" in error_of(capsys)
    )
