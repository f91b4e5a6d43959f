"""A stress computed outside UFL, point by point, and linearised for Newton at every iterate.

Some constitutive laws are not expressions of the unknowns: a nonlinear unit cell solved per
quadrature point (FE2, :mod:`app.multiscale.fe2`), or any other solver that maps a strain to a
stress and its consistent tangent. Such a law (a :class:`PointResponse`) is given the strain of
every quadrature point and answers with the stress and tangent there; the forms read it as

    sigma(u) = S + C : (eps(u) - E)

with S, C and E values at the group's quadrature points (Mandel vectors and matrices of the
in-plane d x d block; on 2D meshes plane strain, with sigma_zz a value of its own). Before each
assembly of the group's residual or Jacobian (app/solvers.py) :meth:`LinearisedStress.refresh`
evaluates E = eps(u) at the points of the current iterate and asks the law for S and C there,
so at every iterate the residual is int S : eps(v) and ``ufl.derivative`` gives the consistent
tangent C : eps(du): Newton converges as the law's tangent allows.

The points are numbered in one global order, independent of the number of ranks: by the
original (input) index of the owning cell, then the quadrature point in the cell, so point k has
the same law state (an RVE and its history) on any partition. The law's history follows the
group's steps (app/group_stepping.py): ``commit`` when a step is accepted, ``rollback`` when it
is rejected or retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import ufl
from dolfinx import fem

from app.multiscale.materials import mandel_basis
from app.pointwise import quadrature_space


@dataclass(frozen=True)
class PointAnswers:
    """A law's answers in global point order: Mandel stresses (points x m), tangents
    (points x m x m) and, on 2D meshes, sigma_zz per point (else None)."""

    stress: np.ndarray
    tangent: np.ndarray
    out_of_plane: np.ndarray | None


class PointResponse(Protocol):
    """What computes the stress of the points (collective calls, same arguments on every rank)."""

    def start(self, points: int, dim: int) -> None:
        """Prepare the laws of ``points`` points of a ``dim``-D mesh (before the first solve)."""

    def solve(self, strains: np.ndarray) -> PointAnswers:
        """Stress and tangent at the total Mandel ``strains`` (points x m), from the accepted
        history; a failure is an :class:`~app.errors.SolverError` on every rank."""

    def commit(self) -> None:
        """The last solve becomes the accepted history."""

    def rollback(self) -> None:
        """The solves since the last commit are discarded."""


class LinearisedStress:
    """The stress of a :class:`PointResponse` at a group's quadrature points (see the module).

    Args:
        strain: The 3x3 strain the law is driven by, in UFL (of the unknowns).
        mesh: The mesh it is integrated on.
        cells: The original (input) index of each local cell of ``mesh`` (the global order).
        degree: The group's quadrature degree.
        response: The law.
    """

    def __init__(
        self, strain: Any, mesh: Any, cells: np.ndarray, degree: int, response: PointResponse
    ):
        self.response, self.mesh = response, mesh
        self.dim = self.mesh.geometry.dim
        self.basis = mandel_basis(self.dim)
        size = len(self.basis)
        self._strain = strain
        self.stress_values = fem.Function(quadrature_space(self.mesh, (size,), degree))
        self.tangent = fem.Function(quadrature_space(self.mesh, (size, size), degree))
        self.strain_values = fem.Function(quadrature_space(self.mesh, (size,), degree))
        self.out_of_plane = fem.Function(quadrature_space(self.mesh, (), degree))
        self._points = self.out_of_plane.function_space.element.interpolation_points
        tdim = self.mesh.topology.dim
        self._owned = np.arange(self.mesh.topology.index_map(tdim).size_local, dtype=np.int32)
        self._dofs = self.out_of_plane.function_space.dofmap.list[self._owned]
        self._order, self._mine = self._global_order(cells)
        self._expression: fem.Expression | None = None
        self._last: np.ndarray | None = None  # the strains of the latest solve (global order)
        self._values = (self.strain_values, self.stress_values, self.tangent, self.out_of_plane)
        self._accepted = [f.x.array.copy() for f in self._values]
        self._trial = False  # the law has solved since the last commit or rollback

    def _global_order(self, original: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sort order of all points by (original cell index, point), and the positions of
        this rank's points in it."""
        comm = self.mesh.comm
        per_cell = self._dofs.shape[1]
        local = (original[self._owned][:, None] * per_cell + np.arange(per_cell)).ravel()
        everyone = np.concatenate(comm.allgather(local))
        order = np.argsort(everyone, kind="stable")
        position = np.empty_like(order)
        position[order] = np.arange(order.size)
        offset = sum(comm.allgather(local.size)[: comm.rank])
        return order, position[offset : offset + local.size]

    @property
    def points(self) -> int:
        return self._order.size

    # UFL ----------------------------------------------------------------------------------------
    def _mandel(self, tensor: Any) -> Any:
        """The Mandel vector of the in-plane block of a 3x3 tensor."""
        d = self.dim
        return ufl.as_vector(
            [sum(B[i, j] * tensor[i, j] for i in range(d) for j in range(d)) for B in self.basis]
        )

    def _tensor(self, mandel: Any, zz: Any) -> Any:
        """A 3x3 tensor of a Mandel vector (``zz`` out of plane on a 2D mesh)."""
        d = self.dim
        rows = [
            [sum(mandel[k] * B[i, j] for k, B in enumerate(self.basis)) for j in range(d)]
            for i in range(d)
        ]
        if d == 3:
            return ufl.as_matrix(rows)
        return ufl.as_matrix([[*rows[0], 0], [*rows[1], 0], [0, 0, zz]])

    def stress(self, strain: Any) -> Any:
        """The linearised stress of ``strain`` (3x3) for the residual: S + C : (eps - E)."""
        change = self._mandel(strain) - self.strain_values
        return self._tensor(self.stress_values + ufl.dot(self.tangent, change), self.out_of_plane)

    def latest(self) -> Any:
        """The stress of the latest solve (3x3), for outputs."""
        return self._tensor(self.stress_values, self.out_of_plane)

    # Run time -----------------------------------------------------------------------------------
    def compile(self) -> None:
        self._expression = fem.Expression(self._mandel(self._strain), self._points)
        self.response.start(self.points, self.dim)

    def refresh(self) -> None:
        """Ask the law for S and C at the strains of the current iterate (nothing to do when the
        strains are those of the latest solve of this step: the Jacobian after the residual).
        Collective."""
        strains = self._gather(self._expression.eval(self.mesh, self._owned))
        if self._last is not None and np.array_equal(strains, self._last):
            return
        self._last = None  # a failed solve leaves no valid answers
        answers = self.response.solve(strains)
        self._last, self._trial = strains, True
        mine = self._mine
        size = len(self.basis)
        self._assign(self.strain_values, strains[mine], size)
        self._assign(self.stress_values, answers.stress[mine], size)
        self._assign(self.tangent, answers.tangent[mine].reshape(-1, size * size), size * size)
        if answers.out_of_plane is not None:
            self._assign(self.out_of_plane, answers.out_of_plane[mine][:, None], 1)

    def _gather(self, values: np.ndarray) -> np.ndarray:
        """Every rank's point values (owned cells x points x m) in the global order."""
        local = values.reshape(-1, len(self.basis))
        everyone = np.concatenate(self.mesh.comm.allgather(local))
        return everyone[self._order]

    def _assign(self, function: fem.Function, values: np.ndarray, size: int) -> None:
        """Values of this rank's points (in the order of its owned cells' dofs) into a
        quadrature function, ghosts updated."""
        target = function.x.array.reshape(-1, size)
        target[self._dofs.ravel()] = values
        function.x.scatter_forward()

    def commit(self) -> None:
        """Accept the state of the current iterate (solved again first if the latest solve was
        at other strains)."""
        self.refresh()
        if self._trial:
            self.response.commit()
        self._trial = False
        self._accepted = [f.x.array.copy() for f in self._values]
        # the tangent of the latest solve is that of the old history: the next step's first
        # iterate asks the law again (an elastic predictor's tangent for a J2 law)
        self._last = None

    def rollback(self) -> None:
        """Back to the accepted state: the law's history and the values read at the points."""
        self.response.rollback()
        self._trial = False
        self._last = None
        for function, array in zip(self._values, self._accepted, strict=True):
            function.x.array[:] = array
