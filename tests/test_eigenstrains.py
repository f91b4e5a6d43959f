"""Eigenstrains other plug-ins provide (mechanics' ``eigenstrains``), given here by `prescribed`.

- A fully restrained body (every side fixed, so u = 0 and eps_el = -eps*): an isotropic strain
  e gives the hydrostatic sigma = -E e/(1 - 2 nu) I (sigma_zz too, plane strain); a tensor
  eps* gives sigma = -(lambda tr(eps*) I + 2 mu eps*) in plane with sigma_zz = -lambda tr(eps*);
  two providers and the thermal strain add up.
- A free body (held on two symmetry planes) takes its eigenstrain without stress: u = eps* x
  in small strain, and F = I + eps* in large deformation (the multiplicative split).
- Fields of the wrong rank or units are refused with the plug-ins named.
"""

import numpy as np
import pytest

from app.errors import CaseError
from app.simulation import Simulation

E, NU = 200e9, 0.3
LAMBDA, MU = E * NU / ((1 + NU) * (1 - 2 * NU)), E / (2 * (1 + NU))
TENSOR = [[-2e-3, 5e-4], [5e-4, 1e-3]]
FIXED = {side: {"type": "fixed"} for side in ("left", "right", "bottom", "top")}
SYMMETRY = {"left": {"type": "displacement", "x": 0}, "bottom": {"type": "displacement", "y": 0}}


def case(fields: dict, boundaries: dict, **mechanics) -> dict:
    """Plane strain on a 2 x 1 rectangle; ``fields`` are the prescribed eigenstrains."""
    prescribed = {name: {"value": value} for name, value in fields.items()}
    return {
        "mesh": {"type": "rectangle", "length": [2.0, 1.0], "cells": [4, 2]},
        "physics": {
            "given": {"type": "prescribed", "fields": prescribed},
            "mechanics": {
                "youngs_modulus": E,
                "poisson_ratio": NU,
                "eigenstrains": list(fields),
                "boundaries": boundaries,
            }
            | mechanics,
        },
    }


def stresses(sim: Simulation) -> tuple[np.ndarray, np.ndarray]:
    """The in-plane stress (cells x 2 x 2) and sigma_zz of a finished run."""
    result = sim.run()
    sigma = result.fields["stress"].x.array.reshape(-1, 2, 2)
    return sigma, result.fields["out_of_plane_stress"].x.array


def restrained(eigenstrain: np.ndarray) -> tuple[np.ndarray, float]:
    """In-plane stress and sigma_zz of a body held everywhere, for a 3x3 eigenstrain."""
    sigma = -(LAMBDA * np.trace(eigenstrain) * np.eye(3) + 2 * MU * eigenstrain)
    return sigma[:2, :2], sigma[2, 2]


def test_isotropic_strain_in_a_restrained_body_is_hydrostatic():
    strain = 1e-3
    sigma, zz = stresses(Simulation.from_case(case({"moisture_strain": strain}, FIXED)))
    hydrostatic = -E * strain / (1 - 2 * NU)
    assert np.allclose(sigma, hydrostatic * np.eye(2), rtol=1e-10, atol=1e-6)
    assert np.allclose(zz, hydrostatic, rtol=1e-10)


def test_tensor_strain_in_a_restrained_body():
    sigma, zz = stresses(Simulation.from_case(case({"cure_strain": TENSOR}, FIXED)))
    expected, expected_zz = restrained(np.pad(np.array(TENSOR), (0, 1)))  # no eps*_zz
    assert np.allclose(sigma, expected, rtol=1e-10, atol=1e-6)
    assert np.allclose(zz, expected_zz, rtol=1e-10)


def test_providers_and_thermal_strain_add_up():
    """A scalar and a tensor field, and alpha (T - T_ref) from a prescribed temperature."""
    fields = {"moisture_strain": 1e-3, "cure_strain": TENSOR}
    sim_case = case(fields, FIXED, thermal_expansion=1e-5, reference_temperature=300.0)
    sim_case["physics"]["given"]["fields"]["temperature"] = {"units": "K", "value": 350.0}
    sigma, zz = stresses(Simulation.from_case(sim_case))
    eigenstrain = (1e-3 + 1e-5 * 50.0) * np.eye(3) + np.pad(np.array(TENSOR), (0, 1))
    expected, expected_zz = restrained(eigenstrain)
    assert np.allclose(sigma, expected, rtol=1e-10, atol=1e-6)
    assert np.allclose(zz, expected_zz, rtol=1e-10)


@pytest.mark.parametrize("large", [False, True])
def test_a_free_body_takes_its_eigenstrain_without_stress(large):
    """u = eps* x (F = I + eps*): exact on P1, with no stress left (to the solver's accuracy)."""
    strain = [[2e-3, 0], [0, -1e-3]]
    sim = Simulation.from_case(case({"cure_strain": strain}, SYMMETRY, large_deformation=large))
    result = sim.run()
    u = result.fields["displacement"]
    x = u.function_space.tabulate_dof_coordinates()[:, :2]
    assert np.allclose(u.x.array.reshape(-1, 2), x @ np.array(strain).T, rtol=0, atol=1e-14)
    assert np.abs(result.fields["stress"].x.array).max() < 1e-6 * E * 2e-3


@pytest.mark.parametrize(
    ("value", "units", "message"),
    [
        (
            ["1e-3", "0"],
            "dimensionless",
            "as a scalar or tensor but 'given' (prescribed) provides a vector",
        ),
        ("1e-3", "K", "requires 'swell' in dimensionless"),
    ],
)
def test_wrong_rank_or_units(value, units, message):
    bad = case({"swell": 0.0}, FIXED)
    bad["physics"]["given"]["fields"]["swell"] = {"value": value, "units": units}
    with pytest.raises(CaseError, match=r"^physics\.mechanics") as error:
        Simulation.from_case(bad)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([["1e-3", "0"], ["0"]], "a tensor value is a square list of rows"),
        ([["1e-3", "0", "0"], ["0", "1e-3", "0"], ["0", "0", "1e-3"]], "needs 2 rows, got 3"),
    ],
)
def test_bad_prescribed_tensor(value, message):
    bad = case({"swell": value}, FIXED)
    with pytest.raises(CaseError, match=r"^physics\.given") as error:
        Simulation.from_case(bad).run()
    assert message in str(error.value)
