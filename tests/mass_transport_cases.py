"""Case builders and constants shared by the mass transport tests."""

import math

import numpy as np

from app.simulation import Simulation

FARADAY = 96485.33212331001
GAS_CONSTANT = 8.31446261815324


def nodal(sim: Simulation, field: str, x: float) -> float:
    """The value of a field at the node x (1D; this rank's copy, NaN if it has none)."""
    u = sim.store[field].function
    points = u.function_space.tabulate_dof_coordinates()[:, 0]
    hit = np.isclose(points, x)
    return float(u.x.array[hit][0]) if hit.any() else math.nan


def case(mesh: dict, physics: dict, **sections) -> dict:
    return {"mesh": mesh, "physics": physics, **sections}


def dirichlet(value: str, *sides: str) -> dict:
    return {side: {"type": "concentration", "value": value} for side in sides}


def bdf_rates(values: np.ndarray, dt: np.ndarray, scheme: str) -> list[float]:
    """d/dt of an output series with the weights the scheme applied (first step BDF1)."""
    rates = []
    for n in range(1, len(values)):
        if scheme == "bdf1" or n == 1:
            rates.append((values[n] - values[n - 1]) / dt[n])
        else:
            w = dt[n] / dt[n - 1]
            rates.append(
                (
                    (1 + 2 * w) / (1 + w) * values[n]
                    - (1 + w) * values[n - 1]
                    + w**2 / (1 + w) * values[n - 2]
                )
                / dt[n]
            )
    return rates
