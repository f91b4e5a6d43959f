"""Acceleration of fixed-point iterations between groups.

One sweep over the groups is a map x -> G(x) of the coupling data x (the fields a group reads
from a group solved after it). Plain iteration x_{k+1} = x_k + w (G(x_k) - x_k) converges
slowly, or not at all, for strong two-way coupling; these accelerators use the iteration
history:

- Aitken: a dynamic relaxation factor from the last two residuals (Irons & Tuck 1969;
  Kuettler & Wall 2008).
- IQN-ILS: interface quasi-Newton with an inverse Jacobian from least squares on the secant
  differences of the step (Degroote, Bathe & Vierendeels 2009).

Vectors are the owned entries on each rank; dot products are reduced over the communicator,
so every rank takes the same decisions.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI


class Relaxation:
    """Constant under-relaxation (``w = 1``: plain Gauss-Seidel iteration)."""

    def __init__(self, comm: MPI.Comm, relaxation: float):
        self.comm, self.relaxation = comm, relaxation

    def dot(self, a: np.ndarray, b: np.ndarray) -> float:
        return self.comm.allreduce(float(a @ b), op=MPI.SUM)

    def reset(self) -> None:
        """Forget the history (at the start of a time step)."""

    def update(self, x: np.ndarray, gx: np.ndarray) -> np.ndarray:
        """The next iterate from the current one and its image under a sweep."""
        return x + self.relaxation * (gx - x)


class Aitken(Relaxation):
    """Aitken's dynamic relaxation."""

    def reset(self) -> None:
        self._previous: np.ndarray | None = None
        self._omega = self.relaxation

    def update(self, x: np.ndarray, gx: np.ndarray) -> np.ndarray:
        residual = gx - x
        if self._previous is not None:
            change = residual - self._previous
            denominator = self.dot(change, change)
            if denominator > 0:
                self._omega = -self._omega * self.dot(self._previous, change) / denominator
        self._previous = residual
        return x + self._omega * residual


class IQNILS(Relaxation):
    """Interface quasi-Newton, inverse Jacobian by least squares (within each time step)."""

    def reset(self) -> None:
        self._residuals: list[np.ndarray] = []
        self._images: list[np.ndarray] = []

    def update(self, x: np.ndarray, gx: np.ndarray) -> np.ndarray:
        residual = gx - x
        self._residuals.append(residual)
        self._images.append(gx)
        if len(self._residuals) == 1:
            return x + self.relaxation * residual
        V = [self._residuals[-1] - r for r in self._residuals[:-1]]
        W = [self._images[-1] - g for g in self._images[:-1]]
        # Least squares min |V c + r| through the normal equations: the columns are few, and
        # the small matrix is the same on every rank after the reductions.
        gram = np.array([[self.dot(a, b) for b in V] for a in V])
        rhs = -np.array([self.dot(a, residual) for a in V])
        coefficients = np.linalg.lstsq(gram, rhs, rcond=1e-12)[0]
        return gx + sum(c * w for c, w in zip(coefficients, W, strict=True))


def accelerator(name: str, comm: MPI.Comm, relaxation: float) -> Relaxation:
    """The accelerator a case names: "none", "aitken" or "iqn_ils"."""
    kinds = {"none": Relaxation, "aitken": Aitken, "iqn_ils": IQNILS}
    return kinds[name](comm, relaxation)
