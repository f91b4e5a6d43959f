"""Diffusion-induced stress in spherical particles (physics_modules/particle_stress.py).

- A single particle (1D spherical mesh) under a constant inward flux J reaches the steady
  galvanostatic profile c - cbar = (J R / D)(x^2/2 - 3/10): the surface hoop stress is
  sigma_t(R) = -Omega E J R / (15 (1 - nu) D) and the centre stress its opposite
  (VALIDATION.md A11), to within 2 % once tau = D t / R^2 > 0.3.
- The radial moments are the running integrals of the discrete c: their sum is the particle
  mean, equal to the amount the mass-transport instance reports divided by the volume.
- One column of a pseudo-2D (x, r) mesh per x: the same stresses at every x.
- 1 and 2 MPI ranks give the same quantities; bad input names the case path.
"""

import math

import pytest
import tomli_w

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import assert_same_quantities, runs_on_ranks

RADIUS, DIFFUSIVITY, FLUX = 5e-6, 1e-14, 2e-5  # m, m^2/s, mol/(m^2 s) into the particle
OMEGA, YOUNG, POISSON = 3.1e-6, 15e9, 0.3
STEADY = OMEGA * YOUNG * FLUX * RADIUS / (15 * (1 - POISSON) * DIFFUSIVITY)  # |sigma_t(R)|


def particle_case(mesh: dict, boundary: str, surface: str, centre: str, tau: float) -> dict:
    end = tau * RADIUS**2 / DIFFUSIVITY
    return {
        "mesh": mesh,
        "physics": {
            "particle": {
                "type": "mass_transport",
                "coordinates": "spherical",
                "species": {
                    "c": {
                        "diffusivity": DIFFUSIVITY,
                        "initial": 20000.0,
                        "boundaries": {boundary: {"type": "flux", "value": FLUX}},
                    }
                },
            },
            "stress": {
                "type": "particle_stress",
                "concentration": "c",
                "partial_molar_volume": OMEGA,
                "young_modulus": YOUNG,
                "poisson_ratio": POISSON,
                "surface": surface,
                "centre": centre,
            },
        },
        "time": {"scheme": "bdf2", "end": end, "dt": end / 60},
    }


def single_particle(cells: int = 40, tau: float = 0.6) -> dict:
    mesh = {"type": "interval", "length": [RADIUS], "cells": [cells]}
    return particle_case(mesh, "right", "right", "left", tau)


def test_surface_hoop_stress_matches_the_steady_galvanostatic_closed_form():
    q = Simulation.from_case(single_particle()).run().quantities
    surface, centre = q["stress_surface_hoop_stress_Pa"][-1], q["stress_centre_stress_Pa"][-1]
    assert surface == pytest.approx(-STEADY, rel=0.02)
    assert centre == pytest.approx(STEADY, rel=0.02)
    # compression at the surface of a filling particle grows from zero toward the steady value
    assert q["stress_surface_hoop_stress_Pa"][0] == pytest.approx(0.0, abs=1e-6 * STEADY)


def test_radial_moments_add_up_to_the_particle_mean():
    sim = Simulation.from_case(single_particle(cells=16, tau=0.2))
    q = sim.run().quantities
    volume = 4 * math.pi * RADIUS**3 / 3
    mean = q["particle_amount_c_mol"][-1] / volume
    average = sim.store["c_average"].function.x.array
    assert average == pytest.approx(mean, rel=1e-10)


def test_every_column_of_a_pseudo2d_mesh_is_one_particle():
    """The r axis of a rectangle normalised to 1, a particle per x: the mean over x of the
    surface and centre stresses is the single particle's (D scaled by 1/R^2: tau unchanged)."""
    mesh = {"type": "rectangle", "length": [1.0, 1.0], "cells": [3, 24]}
    case = particle_case(mesh, "top", "top", "bottom", 0.6)
    species = case["physics"]["particle"]["species"]["c"]
    species["diffusivity"] = DIFFUSIVITY / RADIUS**2
    species["boundaries"]["top"]["value"] = FLUX / RADIUS  # J R / D unchanged
    case["physics"]["particle"]["radial_axis"] = 1
    q = Simulation.from_case(case).run().quantities
    assert q["stress_surface_hoop_stress_Pa"][-1] == pytest.approx(-STEADY, rel=0.02)
    assert q["stress_centre_stress_Pa"][-1] == pytest.approx(STEADY, rel=0.02)


def test_same_stresses_on_two_ranks(tmp_path):
    case = tmp_path / "particle.toml"
    case.write_text(tomli_w.dumps(single_particle(cells=24, tau=0.3)))
    serial, parallel = runs_on_ranks(case, tmp_path)
    assert_same_quantities(serial, parallel, rtol=1e-8, floor=STEADY)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("poisson_ratio", 0.5, "physics.stress.poisson_ratio: must be < 0.5"),
        ("concentration", "q", "requires field 'q'"),
        ("surface", "top", "unknown boundary 'top'"),
    ],
)
def test_bad_input_names_the_case_path(setting: str, value, message: str):
    case = single_particle(cells=8, tau=0.01)
    case["physics"]["stress"][setting] = value
    with pytest.raises(CaseError) as caught:
        Simulation.from_case(case).build()
    assert message in str(caught.value)
    assert "physics.stress" in str(caught.value)
