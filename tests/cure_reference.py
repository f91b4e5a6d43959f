"""An independent method-of-lines solution of the laminate cure (cases/laminate_cure.toml).

The same 1D equations as the case, written out here without ScaleBridge or DOLFINx:

    rho c_p dT/dt = d/dx(k dT/dx) + H d(alpha)/dt,    d(alpha)/dt = k(T) alpha^m (1 - alpha)^n
    dT/dx = 0 at x = 0 (mid-plane),  -k dT/dx = h_air (T - T_air(t)) at x = h/2 (surface)

discretised by vertex-centred finite volumes (half volumes at the ends, the cure ODE at every
node) and integrated by scipy's BDF with tight tolerances. Run it to print the overshoot::

    .venv/bin/python tests/cure_reference.py 0.0254
"""

import sys
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.integrate import solve_ivp

GAS_CONSTANT = 8.31446261815324


@dataclass(frozen=True)
class Laminate:
    """Bogetti & Gillespie's E-glass/polyester, as in cases/laminate_cure.toml."""

    thickness: float = 0.0254
    density: float = 1890.0
    specific_heat: float = 1260.0
    conductivity: float = 0.2163
    heat_release: float = (1890.0 - 0.54 * 2540.0) * 77.5e3
    pre_exponential: float = 6.167e20
    activation_energy: float = 167.4e3
    m: float = 0.524
    n: float = 1.476
    initial_cure: float = 0.01
    initial_temperature: float = 298.15
    air_h: float = 500.0

    def air(self, t: float) -> float:
        """The cure cycle: 1 K/min ramps, dwells at 78, 90 and 126 degC."""
        minutes = t / 60
        return (
            298.15
            + min(minutes, 53)
            + min(max(minutes - 100, 0), 12)
            + min(max(minutes - 150, 0), 36)
        )

    def cure_rate(self, alpha: np.ndarray, T: np.ndarray) -> np.ndarray:
        k = self.pre_exponential * np.exp(-self.activation_energy / (GAS_CONSTANT * T))
        alpha = np.clip(alpha, 0.0, 1.0)
        return k * alpha**self.m * (1 - alpha) ** self.n


def solve(laminate: Laminate, nodes: int, times: np.ndarray) -> dict[str, np.ndarray]:
    """Centre and surface temperature and degree of cure at ``times``."""
    x = np.linspace(0.0, laminate.thickness / 2, nodes)
    dx = x[1] - x[0]
    volume = np.full(nodes, dx)
    volume[[0, -1]] = dx / 2
    capacity = laminate.density * laminate.specific_heat * volume

    def rhs(t, y):
        T, alpha = y[:nodes], y[nodes:]
        rate = laminate.cure_rate(alpha, T)
        flux = -laminate.conductivity * np.diff(T) / dx  # between neighbouring nodes
        heat = laminate.heat_release * rate * volume
        heat[:-1] -= flux
        heat[1:] += flux
        heat[-1] -= laminate.air_h * (T[-1] - laminate.air(t))
        return np.concatenate([heat / capacity, rate])

    y0 = np.concatenate(
        [np.full(nodes, laminate.initial_temperature), np.full(nodes, laminate.initial_cure)]
    )
    # which unknowns each right-hand side reads: neighbouring temperatures, the node's cure
    conduction = sparse.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(nodes, nodes))
    local = sparse.identity(nodes)
    sparsity = sparse.bmat([[conduction, local], [local, local]])
    solution = solve_ivp(
        rhs,
        (0.0, times[-1]),
        y0,
        "BDF",
        times,
        rtol=1e-8,
        atol=1e-10,
        max_step=30.0,
        jac_sparsity=sparsity,
    )
    T, alpha = solution.y[:nodes], solution.y[nodes:]
    return {
        "centre_temperature": T[0],
        "surface_temperature": T[-1],
        "centre_degree_of_cure": alpha[0],
        "surface_degree_of_cure": alpha[-1],
    }


def first_time(times: np.ndarray, values: np.ndarray, level: float) -> float:
    """When ``values`` first reaches ``level`` (linear interpolation between samples)."""
    i = int(np.argmax(values >= level))
    if values[i] < level:
        return float("nan")
    if i == 0:
        return float(times[0])
    fraction = (level - values[i - 1]) / (values[i] - values[i - 1])
    return float(times[i - 1] + fraction * (times[i] - times[i - 1]))


if __name__ == "__main__":
    thickness = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0254
    times = np.arange(0.0, 300 * 60 + 1, 30.0)
    result = solve(Laminate(thickness=thickness), 201, times)
    Tc, Ts = result["centre_temperature"], result["surface_temperature"]
    peak = int(np.argmax(Tc))
    print(f"thickness {thickness * 100:g} cm: peak centre {Tc[peak] - 273.15:.2f} degC at ")
    print(f"{times[peak] / 60:.1f} min; max T_centre - T_surface {np.max(Tc - Ts):.2f} K")
    for level in (0.5, 0.95):
        centre = first_time(times, result["centre_degree_of_cure"], level)
        surface = first_time(times, result["surface_degree_of_cure"], level)
        print(f"t(alpha = {level}) centre {centre / 60:.1f} min, surface {surface / 60:.1f} min")
