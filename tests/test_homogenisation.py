"""The homogenisation plug-in: Eshelby's tensor, the schemes, the bounds, and moduli as fields.

- Eshelby's tensor of a spheroid against its closed-form limits (sphere exactly, a long
  cylinder and a penny crack asymptotically).
- Mori-Tanaka with spheres equals the lower Hashin-Shtrikman bound; every estimate lies within
  the bounds at every fraction, the self-consistent one also between its table points.
- BIOMINERAL_MODEL.md section 3: the effective E of collagen with HA for every scheme and
  fraction of the table, within 1 %.
- Through the framework: a mineral fraction field gives mechanics the tabulated moduli (the
  apparent modulus of a uniform plate in plane stress is E itself), and bad input is one
  case error at its path. (The conformance kit checks the plug-in in tests/test_conformance.py.)
"""

import numpy as np
import pytest

from app.errors import CaseError
from app.simulation import Simulation
from physics_modules import homogenisation as h

COLLAGEN = (1.5e9 / (3 * (1 - 2 * 0.28)), 1.5e9 / (2 * 1.28))  # E = 1.5 GPa, nu = 0.28
HA = (82.6e9, 44.9e9)

# BIOMINERAL_MODEL.md section 3: E (GPa) at phi_m = 0.1 ... 0.5, per scheme (aspect ratio)
TABLE = {
    ("voigt", 1.0): [12.8, 24.0, 35.3, 46.5, 57.8],
    ("reuss", 1.0): [1.66, 1.87, 2.13, 2.48, 2.96],
    ("hashin_shtrikman_lower", 1.0): [1.83, 2.23, 2.75, 3.43, 4.37],
    ("mori_tanaka", 1.0): [1.83, 2.23, 2.75, 3.43, 4.37],
    ("hashin_shtrikman_upper", 1.0): [7.5, 14.1, 21.5, 29.9, 39.3],
    ("mori_tanaka", 20.0): [2.70, 4.16, 5.98, 8.32, 11.4],
    ("mori_tanaka", 0.05): [2.62, 3.99, 5.69, 7.87, 10.8],
    ("self_consistent", 20.0): [2.83, 4.78, 7.80, 12.7, 20.8],
}


def component(S: np.ndarray, i: int, j: int) -> float:
    """S_iijj for normal pairs; S_ijij (shear) read from the Mandel diagonal."""
    return S[i, j]


@pytest.mark.parametrize("nu", [0.0, 0.28, 0.45])
def test_eshelby_sphere_cylinder_and_penny(nu):
    c = 1 - nu
    sphere = h.eshelby(1.0, nu)
    assert sphere[0, 0] == pytest.approx((7 - 5 * nu) / (15 * c))
    assert sphere[0, 1] == pytest.approx((5 * nu - 1) / (15 * c))
    assert sphere[5, 5] / 2 == pytest.approx((4 - 5 * nu) / (15 * c))
    near = h.eshelby(1 + 1e-3, nu)  # the spheroid formulas next to the sphere: continuous
    assert np.abs(near - sphere).max() < 1e-3
    cylinder = h.eshelby(1e4, nu)  # axis 3 along the fibre
    expected = {
        (0, 0): (5 - 4 * nu) / (8 * c),
        (0, 1): (4 * nu - 1) / (8 * c),
        (0, 2): nu / (2 * c),
        (2, 2): 0.0,
        (2, 0): 0.0,
    }
    for (i, j), value in expected.items():
        assert cylinder[i, j] == pytest.approx(value, abs=1e-3), (i, j)
    assert cylinder[5, 5] / 2 == pytest.approx((3 - 4 * nu) / (8 * c), abs=1e-3)
    assert cylinder[3, 3] / 2 == pytest.approx(0.25, abs=1e-3)
    penny = h.eshelby(1e-4, nu)
    assert penny[2, 2] == pytest.approx(1.0, abs=1e-3)
    assert penny[2, 0] == pytest.approx(nu / c, abs=1e-3)
    assert penny[3, 3] / 2 == pytest.approx(0.5, abs=1e-3)
    assert abs(penny[0, 0]) < 1e-3 and abs(penny[0, 1]) < 1e-3


def test_isotropic_projection_of_an_isotropic_tensor_is_itself():
    K, G = 3.0, 1.0
    assert h.isotropic_parts(h.stiffness(K, G)) == pytest.approx((3 * K, 2 * G))


def test_mori_tanaka_spheres_is_the_lower_bound():
    f = np.linspace(0, 1, 11)
    mt = h.mori_tanaka(f, COLLAGEN, HA, 1.0)
    lower = h.hashin_shtrikman(f, COLLAGEN, HA, upper=False)
    for a, b in zip(mt, lower, strict=True):
        assert np.allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize(("scheme", "aspect"), list(TABLE))
def test_section_3_table(scheme, aspect):
    f = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    E = h.youngs(*h.moduli(f, scheme, COLLAGEN, HA, aspect)) / 1e9
    assert pytest.approx(TABLE[scheme, aspect], rel=0.01) == E


@pytest.mark.parametrize(
    ("scheme", "aspect"),
    [
        ("mori_tanaka", 20.0),
        ("mori_tanaka", 0.05),
        ("self_consistent", 20.0),
        ("self_consistent", 0.05),
    ],
)
def test_estimates_lie_within_the_bounds(scheme, aspect):
    f = np.linspace(0, 1, 201)
    K, G = h.moduli(f, scheme, COLLAGEN, HA, aspect)
    (K_lo, G_lo), (K_hi, G_hi) = (
        h.hashin_shtrikman(f, COLLAGEN, HA, upper=False),
        h.hashin_shtrikman(f, COLLAGEN, HA, upper=True),
    )
    slack = 1e-9
    assert np.all(K_lo * (1 - slack) <= K) and np.all(K_hi * (1 + slack) >= K)
    assert np.all(G_lo * (1 - slack) <= G) and np.all(G_hi * (1 + slack) >= G)
    assert np.all(G[1:-1] > G_lo[1:-1] * (1 + 1e-6))  # strictly inside: not a bound itself


def plate(scheme: str, fraction: str, stiffness: dict | None = None) -> dict:
    """A plate in plane stress with a prescribed mineral fraction, pulled at its right end."""
    return {
        "mesh": {
            "type": "rectangle",
            "cells": [8, 4],
            "length": [1e-3, 2e-4],
            "points": {"anchor": "x == 0 and y == 0"},
        },
        "physics": {
            "mineral": {"type": "prescribed", "fields": {"phi": {"value": fraction, "degree": 0}}},
            "stiffness": {
                "type": "homogenisation",
                "fraction": "phi",
                "scheme": scheme,
                "aspect_ratio": 20,
                "matrix": {"youngs_modulus": "1.5 GPa", "poisson_ratio": 0.28},
                "inclusions": {"bulk_modulus": "82.6 GPa", "shear_modulus": "44.9 GPa"},
            }
            | (stiffness or {}),
            "mechanics": {
                "youngs_modulus": "youngs_modulus",
                "poisson_ratio": "poisson_ratio",
                "formulation": "plane_stress",
                "boundaries": {
                    "left": {"type": "displacement", "x": 0},
                    "anchor": {"type": "displacement", "y": 0},
                    "right": {"type": "traction", "value": ["10 MPa", 0]},
                },
            },
        },
        "output": {
            "xdmf": False,
            "quantities": {"apparent": {"value": "stress_xx", "per": "strain_xx", "units": "Pa"}},
        },
    }


@pytest.mark.parametrize("scheme", ["self_consistent", "mori_tanaka", "voigt"])
def test_moduli_reach_mechanics_through_expressions(scheme):
    """A uniform fraction 0.3: the plate's apparent modulus is the scheme's E (tabulated and
    interpolated for self-consistent: within the interpolation error, 5e-4)."""
    q = Simulation.from_case(plate(scheme, "0.3")).run().quantities
    K, G = h.moduli(np.array([0.3]), scheme, COLLAGEN, HA, 20.0)
    assert q["apparent_Pa"][-1] == pytest.approx(h.youngs(K, G)[0], rel=5e-4)
    assert q["stiffness_max_youngs_modulus_Pa"][-1] == pytest.approx(h.youngs(K, G)[0], rel=5e-4)
    violation = q["stiffness_bound_violation"][-1]
    assert (violation > 0.1) if scheme == "voigt" else (violation < 1e-12)  # Voigt: outside HS


def test_a_coarse_table_stays_within_the_bounds():
    """Five table points over [0, 1]: near f = 1, where the estimate runs along the upper bound,
    the chord of the table crosses it; the moduli stay within the bounds in every cell."""
    spec = plate("self_consistent", "x/1e-3", {"table_points": 5})
    spec["mesh"]["cells"] = [32, 2]
    q = Simulation.from_case(spec).run().quantities
    assert q["stiffness_bound_violation"][-1] < 1e-12


def test_fraction_outside_zero_one_is_clamped():
    q = Simulation.from_case(plate("mori_tanaka", "1.2 - 1.4*x/1e-3")).run().quantities
    assert q["stiffness_max_youngs_modulus_Pa"][-1] == pytest.approx(h.youngs(*HA), rel=1e-12)
    assert q["stiffness_min_youngs_modulus_Pa"][-1] == pytest.approx(1.5e9, rel=1e-12)


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"scheme": "hashin"}, "physics.stiffness.scheme", "voigt"),
        (
            {"matrix": {"youngs_modulus": 1e9}},
            "physics.stiffness.matrix",
            "give youngs_modulus and poisson_ratio, or bulk_modulus and shear_modulus",
        ),
        (
            {"matrix": {"youngs_modulus": 1e9, "poisson_ratio": 0.3, "bulk_modulus": 1e9}},
            "physics.stiffness.matrix",
            "give youngs_modulus and poisson_ratio, or bulk_modulus and shear_modulus",
        ),
        ({"aspect_ratio": 0}, "physics.stiffness.aspect_ratio", "greater than 0"),
        (
            {"fields": {"youngs_modulus": "phi"}},
            "physics.stiffness",
            "name the four moduli and the fraction differently",
        ),
    ],
)
def test_bad_input_is_one_case_error_at_its_path(change, path, message):
    with pytest.raises(CaseError) as error:
        Simulation.from_case(plate("mori_tanaka", "0.3", change)).build()
    assert error.value.path.startswith(path), error.value.path
    assert message in str(error.value)
