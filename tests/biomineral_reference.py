"""An independent solution of biomineral case A: a 1D finite-volume method of lines (scipy).

The collagen block mineralised through its top face, in depth z only (the case is 1D: nothing
varies along the face). Per cell the amounts m_i = phi_f c_i of dissolved Ca and P and the
mineral fraction phi obey

    dm_i/dt = (F_i(z - h/2) - F_i(z + h/2))/h - nu_i R,      dphi/dt = V_m R,
    F_i = -D_i phi_f^2 dc_i/dz   (two-point fluxes, harmonic face means; the surface value
                                  held at z = 0, no flux at the bottom),
    R = k sigma_+^2 (1 - phi/phi_max)_+^(2/3),   sigma = (c_Ca^10 c_P^6 / K')^(1/18) - 1,

with phi_f = 1 - phi_c - phi, integrated by scipy's BDF with a sparse Jacobian. Nothing of
ScaleBridge is used, so it checks the finite-element run of the case (and the expected values
of BIOMINERAL_MODEL.md 5, which came from a run like this over 1 mm).
"""

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.sparse import diags, eye, kron

LOG_K = -19.271  # conditional solubility product, log10 in (mol/m^3)^16
DAY = 86400.0


@dataclass(frozen=True)
class Block:
    """Case A's parameters (SI)."""

    depth: float = 2e-3
    surface: tuple[float, float] = (3.75, 1.5)  # Ca, P held at the top, and the initial fluid
    diffusivity: tuple[float, float] = (1.06e-9, 0.92e-9)
    organic: float = 3 / 7
    rate_constant: float = 1e-6
    phi_max: float = 0.442
    molar_volume: float = 3.183e-4
    stoichiometry: tuple[float, float] = (10.0, 6.0)


def supersaturation(ca: np.ndarray, p: np.ndarray) -> np.ndarray:
    ca, p = np.maximum(ca, 1e-12), np.maximum(p, 1e-12)
    return ca ** (10 / 18) * p ** (6 / 18) * 10 ** (-LOG_K / 18) - 1


def solve(block: Block, cells: int, times: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres (depth below the surface) and the mineral fraction there at ``times``."""
    h = block.depth / cells
    z = (np.arange(cells) + 0.5) * h
    fluid0 = 1 - block.organic
    c0 = np.array(block.surface)

    def rates(y: np.ndarray) -> np.ndarray:
        m, phi = y[: 2 * cells].reshape(2, cells), y[2 * cells :]
        fluid = fluid0 - phi
        c = m / fluid
        reaction = block.rate_constant * np.maximum(supersaturation(*c), 0) ** 2
        reaction *= np.maximum(1 - phi / block.phi_max, 0) ** (2 / 3)
        dm = np.empty_like(m)
        for i, D in enumerate(block.diffusivity):
            De = D * fluid**2
            face = 2 * De[1:] * De[:-1] / (De[1:] + De[:-1])  # harmonic mean between cells
            flux = np.zeros(cells + 1)  # downwards, at faces 0 (surface) .. cells (bottom)
            flux[0] = -De[0] * (c[i, 0] - c0[i]) / (h / 2)
            flux[1:-1] = -face * (c[i, 1:] - c[i, :-1]) / h
            dm[i] = (flux[:-1] - flux[1:]) / h - block.stoichiometry[i] * reaction
        return np.concatenate([dm.ravel(), block.molar_volume * reaction])

    # Fluxes couple an amount to its neighbours' amounts and, through phi_f, mineral fractions.
    neighbours = diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(cells, cells))
    transport = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    sparsity = kron(np.ones((3, 3)), eye(cells)) + kron(transport, neighbours)
    y0 = np.concatenate([fluid0 * np.repeat(c0, cells), np.zeros(cells)])
    solution = solve_ivp(
        lambda t, y: rates(y),
        (0.0, max(times)),
        y0,
        method="BDF",
        t_eval=sorted(times),
        rtol=1e-7,
        atol=1e-10,
        jac_sparsity=sparsity,
    )
    assert solution.success, solution.message
    return z, solution.y[2 * cells :].T


def layer_mean(z: np.ndarray, phi: np.ndarray, top: float, bottom: float) -> float:
    """Mean of a cellwise profile over depths [top, bottom] (cells of equal size)."""
    h = z[1] - z[0]
    edges = np.clip(np.column_stack([z - h / 2, z + h / 2]), top, bottom)
    weights = edges[:, 1] - edges[:, 0]
    return float(weights @ phi / weights.sum())
