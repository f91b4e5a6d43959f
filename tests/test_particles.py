"""Spherical particles of a size per region on one pseudo-2D (x, r) mesh (``particle_radius``).

Each layer holds particles of its own radius R (a species living on the layer), filled through
their surface (the layer's part of the top boundary) at a constant flux q from a uniform c0.
The amount per unit x then grows as 4 pi R^2 q t from 4/3 pi R^3 c0, and once the start has
decayed (t >> R^2/D) the profile keeps its shape while it rises:

    c(R) - c_mean = q R / (5 D)

(Crank, The Mathematics of Diffusion, 6.3.2), which checks the radius in the volume measure
(R^3), in the surface measure (R^2) and in the gradient (1/R).
"""

import numpy as np
import pytest

from app.simulation import Simulation

RADII = {"small": 2e-6, "large": 5e-6}
THICKNESS = 1e-5
D, Q, C0 = 1e-14, 1e-5, 1000.0


def particles_case() -> dict:
    return {
        "mesh": {
            "type": "pseudo2d",
            "layers": [
                {"name": name, "thickness": THICKNESS, "cells": 6} for name in ("small", "large")
            ],
            "radial_cells": 16,
        },
        "physics": {
            "particles": {
                "type": "mass_transport",
                "coordinates": "spherical",
                "radial_axis": 1,
                "particle_radius": RADII,
                "species": {
                    f"c_{name}": {
                        "region": name,
                        "diffusivity": D,
                        "initial": C0,
                        "boundaries": {"top": {"type": "flux", "value": Q}},
                    }
                    for name in RADII
                },
            }
        },
        "time": {"scheme": "bdf2", "dt": 1.0, "end": 8000.0, "adaptive": {"dt_max": 200.0}},
        "output": {
            "times": [8000.0],
            "probes": {
                f"{name}_surface": [(0.5 + index) * THICKNESS, 1.0]
                for index, name in enumerate(RADII)
            },
        },
    }


def test_particles_of_two_sizes_fill_as_spheres_of_their_radius():
    result = Simulation.from_case(particles_case()).run()
    q = {k: v[-1] for k, v in result.quantities.items()}
    q0 = {k: v[0] for k, v in result.quantities.items()}
    for name, R in RADII.items():
        amount = f"particles_amount_c_{name}_mol_m"
        assert q[f"particles_outflow_c_{name}_top_mol_m_per_s"] == pytest.approx(
            -4 * np.pi * R**2 * Q * THICKNESS, rel=1e-12
        )
        assert q0[amount] == pytest.approx(4 / 3 * np.pi * R**3 * C0 * THICKNESS, rel=1e-12)
        filled = 4 * np.pi * R**2 * Q * THICKNESS * 8000.0
        assert q[amount] - q0[amount] == pytest.approx(filled, rel=1e-10)
        mean = q[amount] / (4 / 3 * np.pi * R**3 * THICKNESS)
        rise = q[f"{name}_surface_c_{name}_mol_per_m3"] - mean
        assert rise == pytest.approx(Q * R / (5 * D), rel=5e-3), name
