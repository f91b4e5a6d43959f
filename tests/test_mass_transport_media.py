"""Mass transport in media: the electrolyte of a Li|Li cell (VALIDATION.md A7: drop, limiting
current, Sand time), advection (Ogata-Banks, outflow, SUPG), migration to Boltzmann equilibrium,
positivity under consumption, porous media (effective diffusivity, changing porosity, a
spherical particle under a constant flux: A11's profile), regions and instances side by side,
and parameter errors. The manufactured-solution rates and analytic transients are in
tests/test_mass_transport.py.
"""

import math

import numpy as np
import pytest
from mpi4py import MPI

from app.errors import CaseError
from app.simulation import Simulation
from tests.mass_transport_cases import FARADAY, GAS_CONSTANT, bdf_rates, case, dirichlet, nodal

# --------------------------------------------------------------------------------------------
# A7: Li|Li symmetric cell (salt transport + electrolyte potential)
# --------------------------------------------------------------------------------------------
D_SALT, T_PLUS, GAP, C0 = 1.7694e-10, 0.2594, 100e-6, 1000.0
DIFFUSION_POTENTIAL = 2 * (1 - T_PLUS) * GAS_CONSTANT * 298.15 / FARADAY  # V


def limiting_current() -> float:
    return 2 * FARADAY * D_SALT * C0 / ((1 - T_PLUS) * GAP)


def cell_overrides(current: float) -> dict:
    salt = "physics.electrolyte.species.c_e.boundaries"
    return {
        f"{salt}.left.value": current,
        f"{salt}.right.value": -current,
        "physics.electrostatics.boundaries.right.value": -current,
    }


def test_symmetric_cell_concentration_drop(cases):
    """Steady dc = (1 - t+) i L/(F D); the potential drops by i L/kappa + k ln(c(0)/c(L));
    salt is conserved and the current is continuous."""
    current = 10.0
    q = Simulation.from_case(cases / "symmetric_cell.toml").run().quantities
    high, low = q["electrolyte_max_c_e_mol_per_m3"][-1], q["electrolyte_min_c_e_mol_per_m3"][-1]
    drop = (1 - T_PLUS) * current * GAP / (FARADAY * D_SALT)
    assert drop == pytest.approx(43.38, abs=0.01)
    assert high - low == pytest.approx(drop, rel=1e-2)
    assert (high + low) / 2 == pytest.approx(C0, rel=1e-9)  # linear profile about the mean
    assert q["electrolyte_amount_c_e_mol_per_m2"][-1] == pytest.approx(C0 * GAP, rel=1e-12)
    flux = (1 - T_PLUS) * current / FARADAY
    assert q["electrolyte_outflow_c_e_left_mol_per_s_per_m2"][-1] == pytest.approx(-flux)
    assert q["electrolyte_outflow_c_e_right_mol_per_s_per_m2"][-1] == pytest.approx(flux)
    phi = -current * GAP / 1.0 - DIFFUSION_POTENTIAL * math.log(high / low)
    assert q["min_potential_V"][-1] == pytest.approx(phi, rel=1e-3)
    assert q["current_left_A_per_m2"][-1] == pytest.approx(-current, rel=1e-9)  # enters


def test_symmetric_cell_limiting_current(cases):
    """i_lim = 2 F D c0/((1 - t+) L) = 461.0 A/m^2: at 0.99 i_lim the salt at the cathode
    falls to 1 % of c0 (c(L)/c0 = 1 - i/i_lim, so this pins i_lim to ~1e-4)."""
    i_lim = limiting_current()
    assert i_lim == pytest.approx(461.0, rel=1e-3)
    overrides = cell_overrides(0.99 * i_lim)
    q = Simulation.from_case(cases / "symmetric_cell.toml", overrides=overrides).run().quantities
    low, high = q["electrolyte_min_c_e_mol_per_m3"][-1], q["electrolyte_max_c_e_mol_per_m3"][-1]
    assert low / C0 == pytest.approx(0.01, abs=1e-3)
    assert high / C0 == pytest.approx(1.99, abs=1e-3)
    measured = 2 * C0 * 0.99 * i_lim / (high - low)  # the current that empties the cathode side
    assert measured == pytest.approx(i_lim, rel=1e-2)
    overpotential = DIFFUSION_POTENTIAL * math.log(high / low)  # diverges as i -> i_lim
    assert -q["min_potential_V"][-1] > overpotential > 0.19


def test_sand_time(cases):
    """A7: under a constant current the salt at the electrode that consumes it falls as
    c0 - 2 (1 - t+) i/F sqrt(t/(pi D)) (a semi-infinite electrolyte: the cell widened to 10 mm,
    5 diffusion lengths at the end), reaching zero at the Sand time
    t_s = pi D (F c0)^2/(4 ((1 - t+) i)^2) = 23,587 s at 10 A/m^2. At t_s/4 it is c0/2, at
    0.81 t_s c0/10: both within 1e-3 c0 (measured 2.7e-5 and 7.7e-5); the other electrode
    gains what this one loses."""
    current = 10.0
    sand = math.pi * D_SALT * (FARADAY * C0) ** 2 / (4 * ((1 - T_PLUS) * current) ** 2)
    assert sand == pytest.approx(23587, abs=1)  # VALIDATION.md A7
    overrides = {
        "mesh.length": ["10 mm"],
        "mesh.cells": [200],
        "time.end": 0.81 * sand,
        "time.dt": 50.0,
        "output.times": [sand / 4, 0.81 * sand],
        "output.interval": 0.81 * sand,
    }
    q = Simulation.from_case(cases / "symmetric_cell.toml", overrides=overrides).run().quantities
    assert list(q["time_s"]) == pytest.approx([0, sand / 4, 0.81 * sand])
    low, high = q["electrolyte_min_c_e_mol_per_m3"], q["electrolyte_max_c_e_mol_per_m3"]
    assert low[1:] / C0 == pytest.approx([0.5, 0.1], abs=1e-3)
    assert high[1:] / C0 == pytest.approx(2 - low[1:] / C0, abs=1e-9)


def test_volumetric_electrode_current_with_porosity():
    """A uniform reaction current a j (A/m^3) in a closed pore space: eps dc/dt = (1 - t+) a j/F,
    so the mean concentration grows linearly (the DFN electrolyte source)."""
    a_j, eps, hours = 2e4, 0.4, 1.0
    species = {"diffusivity": 1e-10, "transference": T_PLUS, "current_source": "a_j"}
    physics = {
        "electrolyte": {"type": "mass_transport", "porosity": eps, "species": {"c_e": species}},
        "kinetics": {"type": "prescribed", "fields": {"a_j": {"units": "A/m^3", "value": a_j}}},
    }
    physics["electrolyte"]["species"]["c_e"]["initial"] = C0
    sim = Simulation.from_case(
        case(
            {"type": "interval", "length": [1e-4], "cells": [4]},
            physics,
            time={"scheme": "bdf1", "end": 3600 * hours, "dt": 900.0},
        )
    )
    q = sim.run().quantities
    grown = (1 - T_PLUS) * a_j * 3600 * hours / (eps * FARADAY)
    assert q["electrolyte_max_c_e_mol_per_m3"][-1] == pytest.approx(C0 + grown, rel=1e-10)
    assert q["electrolyte_min_c_e_mol_per_m3"][-1] == pytest.approx(C0 + grown, rel=1e-10)
    rate = (1 - T_PLUS) * a_j * 1e-4 / FARADAY
    assert q["electrolyte_generated_c_e_mol_per_s_per_m2"][-1] == pytest.approx(rate, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Advection: Ogata-Banks, free outflow, SUPG
# --------------------------------------------------------------------------------------------
def column_case(end: float, dt: float, diffusivity: float = 0.02, **params) -> dict:
    species = {
        "diffusivity": diffusivity,
        "boundaries": {
            "left": {"type": "concentration", "value": 1.0},
            "right": {"type": "outflow"},
        },
    }
    return case(
        {"type": "interval", "length": [2.0], "cells": [100]},
        {
            "mass_transport": {"velocity": "velocity", "species": {"c": species}, **params},
            "flow": {
                "type": "prescribed",
                "fields": {"velocity": {"units": "m/s", "value": ["1"]}},
            },
        },
        time={"scheme": "bdf2", "end": end, "dt": dt},
    )


def ogata_banks(x: np.ndarray, t: float, v: float, D: float) -> np.ndarray:
    from scipy.special import erfc

    s = 2 * np.sqrt(D * t)
    return 0.5 * (erfc((x - v * t) / s) + np.exp(v * x / D) * erfc((x + v * t) / s))


def test_ogata_banks_advection_dispersion():
    """A step at the inlet of a column (v = 1, D = 0.02): the profile when the front is halfway
    matches Ogata-Banks to 0.5 % of the step."""
    sim = Simulation.from_case(column_case(1.0, 0.01))
    c = sim.run().fields["c"]
    x = c.function_space.tabulate_dof_coordinates()[:, 0]
    error = np.abs(c.x.array - ogata_banks(x, 1.0, 1.0, 0.02)).max(initial=0.0)
    assert MPI.COMM_WORLD.allreduce(error, op=MPI.MAX) < 5e-3


def test_outflow_boundary_flushes_the_column():
    """After the front has left, the column is full (c = 1) and carries q c = 1 out; the mass
    balance with the advective outflow closes every step."""
    q = Simulation.from_case(column_case(3.0, 0.02)).run().quantities
    assert q["min_c_mol_per_m3"][-1] > 0.99
    assert q["outflow_c_right_mol_per_s_per_m2"][-1] == pytest.approx(1.0, abs=1e-2)
    net = -q["outflow_c_left_mol_per_s_per_m2"] - q["outflow_c_right_mol_per_s_per_m2"]
    rates = bdf_rates(q["amount_c_mol_per_m2"], q["dt_s"], "bdf2")
    assert max(abs(r - n) for r, n in zip(rates, net[1:], strict=True)) < 1e-10


@pytest.mark.parametrize("stabilization", ["none", "supg"])
def test_supg_at_high_peclet(stabilization: str):
    """Steady advection-diffusion at a cell Péclet number of 25: Galerkin oscillates, SUPG is
    monotone and nodally accurate outside the outlet layer."""
    species = {
        "diffusivity": 1e-3,
        "boundaries": dirichlet("1", "left") | dirichlet("0", "right"),
    }
    sim = Simulation.from_case(
        case(
            {"type": "interval", "cells": [20]},
            {
                "mass_transport": {
                    "velocity": "velocity",
                    "stabilization": stabilization,
                    "species": {"c": species},
                },
                "flow": {
                    "type": "prescribed",
                    "fields": {"velocity": {"units": "m/s", "value": ["1"]}},
                },
            },
        )
    )
    q = sim.run().quantities
    if stabilization == "none":
        assert q["max_c_mol_per_m3"][-1] > 1.5  # the wiggles SUPG removes
        return
    assert q["max_c_mol_per_m3"][-1] <= 1 + 1e-9
    assert q["min_c_mol_per_m3"][-1] >= -1e-12
    interior = nodal(sim, "c", 0.5)
    assert math.isnan(interior) or interior == pytest.approx(1.0, abs=1e-6)


def test_migration_reaches_boltzmann_equilibrium():
    """A cation (z = 1) in a closed box under a fixed potential phi = 0.05 x V at a temperature
    read from a field: at equilibrium diffusion balances migration, c(1)/c(0) =
    exp(-z F 0.05/(R T)), and the amount is conserved."""
    species = {"diffusivity": 1.0, "charge": 1, "initial": 1.0}
    physics = {
        "mass_transport": {
            "potential": "phi",
            "temperature": "temperature",
            "species": {"c": species},
        },
        "given": {
            "type": "prescribed",
            "fields": {
                "phi": {"units": "V", "value": "0.05*x"},
                "temperature": {"units": "K", "value": 298.15},
            },
        },
    }
    sim = Simulation.from_case(
        case(
            {"type": "interval", "cells": [40]},
            physics,
            time={"scheme": "bdf2", "end": 10.0, "dt": 0.25},
        )
    )
    q = sim.run().quantities
    ratio = q["min_c_mol_per_m3"][-1] / q["max_c_mol_per_m3"][-1]
    assert ratio == pytest.approx(math.exp(-FARADAY * 0.05 / (GAS_CONSTANT * 298.15)), rel=2e-3)
    assert nodal(sim, "c", 1.0) == pytest.approx(q["min_c_mol_per_m3"][-1])  # cations go left
    assert q["amount_c_mol_per_m2"] == pytest.approx(1.0, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Positivity under strong consumption
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reaction", "lumped"),
    [("-1e4*c", True), ("-1e3*c/(1e-3 + c)", True), ("-1e4*c", False)],
)
def test_consumption_keeps_concentration_non_negative(reaction: str, lumped: bool):
    """A species fed at x = 0 and consumed fast (first order, k h^2/D = 25, or Michaelis-Menten)
    in a reaction layer thinner than a cell: nodal (lumped) sources keep c >= 0; consistent
    ones undershoot (and Michaelis-Menten then meets its pole at c = -K: Newton fails), which
    is why lumping is the default for degree 1."""
    species = {"diffusivity": 1.0, "source": reaction, "boundaries": dirichlet("1", "left")}
    sim = Simulation.from_case(
        case(
            {"type": "interval", "cells": [20]},
            {"mass_transport": {"lumped_sources": lumped, "species": {"c": species}}},
            time={"scheme": "bdf1", "end": 0.05, "dt": 5e-3},
        )
    )
    lowest = sim.run().quantities["min_c_mol_per_m3"]
    if lumped:
        assert lowest.min() >= -1e-12, lowest.min()
    else:
        assert lowest.min() < -1e-3  # the test can see an undershoot


# --------------------------------------------------------------------------------------------
# Porosity, effective diffusivity, spherical particle, two instances side by side
# --------------------------------------------------------------------------------------------
def two_instances(law: str, particle_species: str = "li") -> dict:
    electrolyte = {
        "type": "mass_transport",
        "porosity": "porosity",  # a field another plug-in provides
        "effective_diffusivity": law,
        "species": {
            "salt": {
                "diffusivity": 2.0,
                "initial": 1.0,
                "boundaries": {
                    "left": {"type": "flux", "value": 0.5},
                    "right": {"type": "concentration", "value": 1.0},
                },
            }
        },
    }
    particle = {
        "type": "mass_transport",
        "coordinates": "spherical",
        "species": {
            particle_species: {
                "diffusivity": 1.0,
                "initial": 2.0,
                "boundaries": {"right": {"type": "flux", "value": 0.3}},
            }
        },
    }
    matrix = {"type": "prescribed", "fields": {"porosity": {"value": 0.25}}}
    return case(
        {"type": "interval", "cells": [40]},
        {"electrolyte": electrolyte, "particle": particle, "matrix": matrix},
        time={"scheme": "bdf2", "end": 10.0, "dt": 0.2},
    )


@pytest.mark.parametrize(("law", "factor"), [("bruggeman", 0.25**1.5), ("archie", 0.25**2)])
def test_porous_electrolyte_beside_a_spherical_particle(law: str, factor: float):
    """Electrolyte (porosity from a field, D_eff = eps^b D): steady c(0) = 1 + g L/D_eff and the
    amount int eps c. Particle (spherical, flux J = 0.3 in at r = R = 1): the amount grows by
    4 pi R^2 J t exactly, and the profile settles to c(R) - c(0) = J R/(2 D) (VALIDATION A11)."""
    sim = Simulation.from_case(two_instances(law))
    q = sim.run().quantities
    d_eff = 2.0 * factor
    assert q["electrolyte_max_salt_mol_per_m3"][-1] == pytest.approx(1 + 0.5 / d_eff, rel=1e-4)
    steady = 0.25 * (1 + 0.5 / d_eff / 2)  # int eps (1 + g (1 - x)/D_eff) dx
    assert q["electrolyte_amount_salt_mol_per_m2"][-1] == pytest.approx(steady, rel=1e-4)
    assert q["electrolyte_outflow_salt_right_mol_per_s_per_m2"][-1] == pytest.approx(0.5, rel=1e-4)
    amount = q["particle_amount_li_mol"]
    expected = 2.0 * 4 * math.pi / 3 + 4 * math.pi * 0.3 * q["time_s"]
    assert amount == pytest.approx(expected, rel=1e-10)
    assert q["particle_outflow_li_right_mol_per_s"][-1] == pytest.approx(-4 * math.pi * 0.3)
    surface_minus_centre = q["particle_max_li_mol_per_m3"][-1] - q["particle_min_li_mol_per_m3"][-1]
    assert surface_minus_centre == pytest.approx(0.3 / 2, rel=2e-3)


def test_species_names_must_differ_between_instances():
    with pytest.raises(CaseError, match="'salt' is provided by both"):
        Simulation.from_case(two_instances("bruggeman", particle_species="salt"))


def test_region_table_and_amount_per_region():
    """D by region (1 on x < 0.5, 4 beyond): steady flux g through the two layers,
    c(0) = g (0.5/1 + 0.5/4); amounts reported per region."""
    species = {
        "diffusivity": {"inner": 1.0, "outer": 4.0},
        "boundaries": {
            "left": {"type": "flux", "value": 2.0},
            "right": {"type": "concentration", "value": 0.0},
        },
    }
    sim = Simulation.from_case(
        case(
            {
                "type": "interval",
                "cells": [20],
                "regions": {"inner": "x < 0.5", "outer": "x > 0.5"},
            },
            {"mass_transport": {"species": {"c": species}}},
        )
    )
    q = sim.run().quantities
    assert q["max_c_mol_per_m3"][-1] == pytest.approx(2.0 * (0.5 + 0.125), rel=1e-10)
    inner, outer = q["amount_c_inner_mol_per_m2"][-1], q["amount_c_outer_mol_per_m2"][-1]
    assert inner == pytest.approx(0.5 * (1.25 + 0.25) / 2, rel=1e-10)  # trapezoid: exact
    assert outer == pytest.approx(0.5 * 0.25 / 2, rel=1e-10)
    assert inner + outer == pytest.approx(q["amount_c_mol_per_m2"][-1], rel=1e-12)


@pytest.mark.parametrize(
    ("setup", "column", "amount"),
    [
        ("axisymmetric", "amount_c_mol", 2 * math.pi),  # 2 * (pi R^2 H)
        ("cylinder", "amount_c_mol_per_m", 2 * math.pi),  # 1D axisymmetric: per m of length
        ("spherical", "amount_c_mol", 2 * 4 * math.pi / 3),
        ("pseudo2d", "amount_c_mol_m", 2 * 4 * math.pi / 3),  # per particle, times 1 m of x
    ],
)
def test_amounts_carry_the_coordinate_measure(setup: str, column: str, amount: float):
    params = {"coordinates": setup, "species": {"c": {"diffusivity": 1.0, "initial": 2.0}}}
    mesh = {"type": "rectangle"}
    if setup in ("spherical", "cylinder"):
        mesh = {"type": "interval", "cells": [8]}
        params["coordinates"] = "axisymmetric" if setup == "cylinder" else setup
    if setup == "pseudo2d":
        params |= {"coordinates": "spherical", "radial_axis": 1}
        mesh |= {"cell": "quadrilateral", "cells": [4, 8]}
    sim = Simulation.from_case(
        case(mesh, {"mass_transport": params}, time={"scheme": "bdf1", "end": 0.1, "dt": 0.1})
    )
    q = sim.run().quantities
    assert q[column][-1] == pytest.approx(amount, rel=1e-3)  # polygonal r-integrals, P1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"species": {"c": {"diffusivity": 1, "charge": 2}}}, "migration needs the potential"),
        ({"species": {"x": {"diffusivity": 1}}}, "species name 'x'"),
        (
            {"species": {"c": {"diffusivity": 1}, "c_source": {"diffusivity": 1}}},
            "clashes with the field 'c_source'",
        ),
        (
            {"species": {"c": {"diffusivity": 1, "boundaries": {"right": {"type": "outflow"}}}}},
            "needs advection",
        ),
        ({"radial_axis": 1, "species": {"c": {"diffusivity": 1}}}, "only read with"),
    ],
)
def test_bad_parameters_are_case_errors(params: dict, message: str):
    with pytest.raises(CaseError, match=message):
        Simulation.from_case(case({"type": "interval"}, {"mass_transport": params}))


def test_spherical_coordinates_need_a_1d_or_2d_mesh():
    params = {"coordinates": "spherical", "species": {"c": {"diffusivity": 1}}}
    sim = Simulation.from_case(
        case({"type": "box", "cells": [2, 2, 2]}, {"mass_transport": params})
    )
    with pytest.raises(CaseError, match="need a 1D or 2D mesh"):
        sim.build()


@pytest.mark.parametrize("scheme", ["bdf1", "bdf2"])
def test_changing_porosity_conserves_the_amount(scheme):
    """A closed column whose pore space grows, eps = 0.5 + 0.3 t: the amount eps c is stored,
    so it stays 0.5 exactly and c = 0.5/eps(t) to round-off (a capacity eps dc/dt would not)."""
    case = {
        "mesh": {"type": "interval", "cells": [10]},
        "physics": {
            "mass_transport": {
                "porosity": "0.5 + 0.3*t",
                "species": {"c": {"diffusivity": 1.0, "initial": 1.0}},
            }
        },
        "time": {"scheme": scheme, "end": 1.0, "dt": 0.05},
        "output": {"interval": 0.25},
    }
    q = Simulation.from_case(case).run().quantities
    t = q["time_s"]
    np.testing.assert_allclose(q["amount_c_mol_per_m2"], 0.5, rtol=1e-12)
    np.testing.assert_allclose(q["max_c_mol_per_m3"], 0.5 / (0.5 + 0.3 * t), rtol=1e-12)
    np.testing.assert_allclose(q["min_c_mol_per_m3"], 0.5 / (0.5 + 0.3 * t), rtol=1e-12)
