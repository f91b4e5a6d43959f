"""One nonlinear unit cell per macro point, the points shared out over sub-communicators.

A macro problem whose material has a microstructure with a history (an elastic-plastic matrix)
needs one :class:`~app.multiscale.plastic_cell.PlasticCell` per macro (quadrature) point, each
keeping its own history. :class:`CellEnsemble` builds them on the groups of an
:class:`~app.multiscale.batch.RVEPool` (point i on group i mod groups, always the same one, so
a cell's history stays where it was built), solves a step of macro strain increments on every
group side by side and gathers the stresses and tangents to every rank. Accepting or rejecting
the macro step commits or rolls back every cell.

Every call is collective on the pool's communicator, with the same arguments on every rank.
Failures travel with the results (:meth:`RVEPool.map`): a cell's Newton that fails on one group
is the same :class:`~app.errors.SolverError` on every rank, naming the point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from app.errors import SolverError
from app.multiscale.batch import RVEPool
from app.multiscale.plastic_cell import PlasticCell


@dataclass(frozen=True)
class EnsembleResponse:
    """The cells' answers in point order: Mandel stresses (points x m), tangents
    (points x m x m), Newton corrections, wall seconds and (2D cells) the out-of-plane stress
    sigma_zz per point."""

    stress: np.ndarray
    tangent: np.ndarray
    iterations: np.ndarray
    seconds: np.ndarray
    out_of_plane: np.ndarray


class CellEnsemble:
    """The cells of ``points`` macro points on the groups of ``pool``.

    Args:
        pool: The groups of ranks (``RVEPool(comm, ranks_per_rve)``).
        points: How many macro points.
        build: ``build(point, group communicator)`` makes the cell of a point (its mesh on
            that communicator); called once per point, on the point's group.
    """

    def __init__(self, pool: RVEPool, points: int, build: Callable[[int, MPI.Comm], PlasticCell]):
        if points < 1:
            raise ValueError(f"an ensemble needs at least one point, got {points}")
        self.pool, self.points = pool, points
        self._cells: dict[int, PlasticCell] = {}

        def make(point: int, comm: MPI.Comm) -> int:
            self._cells[point] = build(point, comm)
            return len(self._cells[point].strain)

        sizes = set(pool.map(make, range(points)))
        if len(sizes) != 1:
            raise ValueError(f"the points' cells differ in dimension (Mandel sizes {sizes})")
        self.size = sizes.pop()

    def solve(self, increments: np.ndarray) -> EnsembleResponse:
        """Every point's cell at its accepted strain plus its increment (row per point, Mandel),
        from its accepted history; nothing is accepted yet.

        Raises:
            SolverError: A cell failed (on every rank); roll back before the next step.
        """
        increments = np.asarray(increments, dtype=float)
        if increments.shape != (self.points, self.size):
            raise ValueError(
                f"the strain increments of {self.points} points have shape "
                f"({self.points}, {self.size}), got {increments.shape}"
            )

        def solve(point: int, comm: MPI.Comm) -> tuple:
            try:
                response = self._cells[point].solve(increments[point])
            except SolverError as exc:
                raise SolverError(f"macro point {point}: {exc}") from None
            return (
                response.stress,
                response.tangent,
                response.iterations,
                response.seconds,
                response.out_of_plane,
            )

        answers = self.pool.map(solve, range(self.points))
        return EnsembleResponse(*(np.array(part) for part in zip(*answers, strict=True)))

    def commit(self) -> None:
        """Accept every point's last solve (the macro step is accepted)."""
        self.pool.map(lambda point, comm: self._cells[point].commit(), range(self.points))

    def rollback(self) -> None:
        """Discard every point's solves since the last commit (the macro step is rejected)."""
        self.pool.map(lambda point, comm: self._cells[point].rollback(), range(self.points))

    def strains(self) -> np.ndarray:
        """The accepted macro strains (points x m), on every rank."""
        return np.array(
            self.pool.map(lambda point, comm: self._cells[point].strain, range(self.points))
        )

    def averages(self, name: str) -> np.ndarray:
        """An accepted internal variable's cell average per point (see
        :meth:`PlasticCell.average`), on every rank."""
        return np.array(
            self.pool.map(lambda point, comm: self._cells[point].average(name), range(self.points))
        )
