"""When a Newton solve of several fields has converged: each field judged in its own units.

PETSc judges a Newton iteration by the norm of the whole residual vector. The rows of a coupled
system are in the units of their equations: a particle's concentration row in mol/s per unit
of its test function, a potential's in A, scaled by cell sizes, capacities and dt, so one norm
mixes quantities that differ by many orders of magnitude and an absolute tolerance means
nothing for most of them (BATTERY_MODEL.md section 7.2 scaled the rows by hand: dt for the
concentrations, L^2 and L^2/sigma for the potentials).

With ``[solver.newton] field_rtol`` the solve is converged when, for every field i, each of its
rows divided by the row's Jacobian diagonal -- the correction Newton would make to that dof, in
the field's own units -- is below ``field_rtol`` times the field's scale:

    max_dofs |F_i / diag(J_ii)|  <=  field_rtol * S_i,

S_i the largest absolute value among the group's fields of the same units (the potentials
share one scale in volts, so a field near 0 V is not judged against itself). The diagonal is
that of the last Jacobian assembled, so a step that starts close enough to the solution (a
good predictor) converges without a linear solve -- as long as the Jacobian's constants are
those it was assembled with: a diagonal of M/dt from a step of 1e-5 s (an event located) would
judge the next 60 s step's residual a million times too small and accept its first guess. This
test replaces PETSc's relative tests
(``rtol`` on the norm of the whole residual, and the step tolerance against the norm of the
whole solution), which a field of small rows or small values would pass unconverged beside a
large one; ``atol`` (a residual that is zero to round-off), the iteration limit and the check
for non-finite residuals still apply.

Without ``field_rtol``, a group of fields in different units keeps PETSc's tests but takes its
relative tolerances unit by unit (:class:`UnitConvergence`): PETSc stops when the whole Newton
step is below ``stol`` times the whole solution, and a tissue age in seconds (10^8) beside
volume fractions (0.1) then passes an update that moves the fractions by 0.1 as converged; or
when the whole residual is below ``rtol`` times the first, which a pressure's Dirichlet rows in
Pa make of a tracer's rows that are still far from converged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from app.jacobian_reuse import JacobianReuse, jacobian_constants

_REASONS = PETSc.SNES.ConvergedReason


class FieldConvergence:
    """The convergence test of a SNES solving several fields (a callable PETSc calls).

    Args:
        snes: The solver.
        sizes: Owned entries of each field in the block vector, in order.
        units: Each field's units.
        rtol: ``field_rtol``.
    """

    def __init__(
        self,
        snes: PETSc.SNES,
        sizes: Sequence[int],
        units: Sequence[str],
        rtol: float,
        constants: Sequence[Any] = (),
    ):
        self.rtol = rtol
        self._offsets = np.cumsum([0, *sizes])
        self._group = _unit_indices(units)
        self._comm = snes.comm.tompi4py()
        self._diagonal: np.ndarray | None = None
        self._constants = constants
        self._assembled_with: list[np.ndarray] = []  # the constants' values at that assembly
        self.reuse: JacobianReuse | None = None  # a kept Jacobian (app/jacobian_reuse.py)
        matrix, preconditioner, (compute, args, kargs) = snes.getJacobian()

        def jacobian(solver: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
            compute(solver, x, J, P, *args, **kargs)
            self._diagonal = J.getDiagonal().getArray().copy()
            self._assembled_with = [np.array(c.value) for c in self._constants]

        snes.setJacobian(jacobian, matrix, preconditioner)

    def __call__(self, snes: PETSc.SNES, iteration: int, norms: tuple) -> int:
        fnorm = norms[2]
        _, atol, _, max_it = snes.getTolerances()
        if not np.isfinite(fnorm):
            return _REASONS.DIVERGED_FNORM_NAN
        if fnorm <= atol:
            return _REASONS.CONVERGED_FNORM_ABS
        stale = iteration == 0 and self._diagonal_is_stale()
        if self._fields_converged(snes, iteration) and not stale:
            return _REASONS.CONVERGED_FNORM_RELATIVE
        if iteration >= max_it:
            return _REASONS.DIVERGED_MAX_IT
        return _REASONS.CONVERGED_ITERATING

    def corrections(self, snes: PETSc.SNES) -> tuple[np.ndarray, np.ndarray]:
        """Per field: the largest scaled correction, and the field's scale (global)."""
        residual = snes.getFunction()[0].getArray()
        solution = snes.getSolution().getArray()
        # a row without a diagonal is converged only where its residual is exactly zero
        scaled = np.where(residual == 0, 0.0, np.inf)
        np.divide(np.abs(residual), np.abs(self._diagonal), out=scaled, where=self._diagonal != 0)
        largest = np.nan_to_num(field_maxima(scaled, self._offsets), nan=np.inf)
        values = field_maxima(np.abs(solution), self._offsets)
        self._comm.Allreduce(MPI.IN_PLACE, largest, op=MPI.MAX)
        self._comm.Allreduce(MPI.IN_PLACE, values, op=MPI.MAX)
        in_unit = np.zeros(self._group.max() + 1)
        np.maximum.at(in_unit, self._group, values)
        return largest, in_unit[self._group]

    def _diagonal_is_stale(self) -> bool:
        """Whether a constant of the Jacobian (dt, a scheme's coefficient, a protocol's
        setting) has changed since the diagonal was assembled (the same on every rank)."""
        if len(self._assembled_with) != len(self._constants):  # none assembled yet
            return True
        return any(
            not np.array_equal(c.value, value)
            for c, value in zip(self._constants, self._assembled_with, strict=True)
        )

    def _fields_converged(self, snes: PETSc.SNES, iteration: int) -> bool:
        if self._diagonal is None or len(self._diagonal) != len(snes.getSolution().getArray()):
            return False
        largest, scales = self.corrections(snes)
        tolerances = self.rtol * scales
        if self.reuse is None:
            return bool(np.all(largest <= tolerances))
        updates = self._largest(np.abs(snes.getSolutionUpdate().getArray()))
        return self.reuse.accepts(iteration, largest, updates, tolerances)

    def _largest(self, values: np.ndarray) -> np.ndarray:
        """The largest of ``values`` in each field (global)."""
        largest = field_maxima(values, self._offsets)
        self._comm.Allreduce(MPI.IN_PLACE, largest, op=MPI.MAX)
        return largest


class UnitConvergence:
    """PETSc's default convergence test (``SNESConvergedDefault``) with its relative tests
    judged for each group of fields of one unit: converged when every unit passes one of them,
    its residual's norm below ``rtol`` times its first residual norm, or its step's norm below
    ``stol`` times its solution's norm (or the step zero). A unit that starts converged (a
    pressure already steady) passes by its step, whose residual is round-off of a round-off.

    A whole-vector test mixes the units: the first residual of a steady coupled solve holds the
    Dirichlet rows of a pressure in Pa (10^4), so after one iteration a tracer whose rows still
    miss the advection by the new Darcy velocity (10^-6) passed ``rtol`` = 1e-9 as converged,
    and a steady 2D tracer came out as pure diffusion.

    Args:
        snes: The solver.
        sizes: Owned entries of each field in the block vector, in order.
        units: Each field's units.
    """

    def __init__(self, snes: PETSc.SNES, sizes: Sequence[int], units: Sequence[str]):
        self._offsets = np.cumsum([0, *sizes])
        self._kind = _unit_indices(units)
        self._count = self._kind.max() + 1
        self._comm = snes.comm.tompi4py()
        self._first = 0.0  # the first residual norm (for the divergence test)
        self._targets = np.zeros(self._count)  # per unit: rtol times its first residual norm

    def __call__(self, snes: PETSc.SNES, iteration: int, norms: tuple) -> int:
        fnorm = norms[2]
        rtol, atol, stol, _ = snes.getTolerances()
        if not np.isfinite(fnorm):
            return _REASONS.DIVERGED_FNORM_NAN
        if iteration == 0:
            self._first, self._targets = fnorm, rtol * self._norms(snes.getFunction()[0])
        if fnorm < atol:
            return _REASONS.CONVERGED_FNORM_ABS
        if iteration == 0:
            return _REASONS.CONVERGED_ITERATING
        by_residual = self._norms(snes.getFunction()[0]) <= self._targets
        if np.all(by_residual):
            return _REASONS.CONVERGED_FNORM_RELATIVE
        if np.all(by_residual | self._steps_converged(snes, stol)):
            return _REASONS.CONVERGED_SNORM_RELATIVE
        divergence = snes.getDivergenceTolerance()
        if divergence > 0 and fnorm > divergence * self._first:
            return _REASONS.DIVERGED_DTOL
        return _REASONS.CONVERGED_ITERATING

    def _norms(self, vector: PETSc.Vec) -> np.ndarray:
        """The 2-norm of ``vector``'s entries of each unit (global)."""
        return np.sqrt(self._squares(vector.getArray()))

    def _squares(self, *arrays: np.ndarray) -> np.ndarray:
        """Per array, the sum of squares of its entries of each unit (global), concatenated."""
        squares = np.zeros(len(arrays) * self._count)
        for k, values in enumerate(arrays):
            for i, kind in enumerate(self._kind):
                part = slice(self._offsets[i], self._offsets[i + 1])
                squares[k * self._count + kind] += values[part] @ values[part]
        self._comm.Allreduce(MPI.IN_PLACE, squares, op=MPI.SUM)
        return squares

    def _steps_converged(self, snes: PETSc.SNES, stol: float) -> np.ndarray:
        """Per unit: whether the step is zero or below ``stol`` times the solution."""
        step = snes.getSolutionUpdate().getArray()
        squares = self._squares(step, snes.getSolution().getArray())
        steps, values = np.sqrt(squares[: self._count]), np.sqrt(squares[self._count :])
        return (steps == 0) | (steps < stol * values)


def install_unit_convergence(problem: Any, unknowns: Sequence[Any], units: Sequence[str]) -> None:
    """Judge the problem's relative tolerances unit by unit (see :class:`UnitConvergence`)."""
    test = UnitConvergence(problem.solver, _owned_sizes(unknowns), units)
    problem.solver.setConvergenceTest(test)
    problem.unit_convergence = test  # lives as long as the problem


def field_maxima(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The largest of ``values`` (non-negative) in each field's range ``offsets[i]:offsets[i +
    1]``, 0 for a field with no entries here; one call for all fields (a DFN has 35, and a loop
    over them cost a fifth of a millisecond every Newton iteration)."""
    padded = np.append(values, 0.0)  # an empty field's range may start at the end
    maxima = np.maximum.reduceat(padded, offsets[:-1])
    maxima[offsets[1:] == offsets[:-1]] = 0.0  # reduceat gives an empty range one entry
    return maxima


def _unit_indices(units: Sequence[str]) -> np.ndarray:
    """Each field's unit as an index (fields in the same units share one)."""
    indices = {unit: index for index, unit in enumerate(dict.fromkeys(units))}
    return np.array([indices[unit] for unit in units], dtype=int)


def _owned_sizes(unknowns: Sequence[Any]) -> list[int]:
    return [
        u.function_space.dofmap.index_map.size_local * u.function_space.dofmap.index_map_bs
        for u in unknowns
    ]


def install_field_convergence(
    problem: Any, unknowns: Sequence[Any], units: Sequence[str], rtol: float
) -> FieldConvergence:
    """Judge the problem's Newton iterations field by field (see the module docstring)."""
    snes = problem.solver
    constants = jacobian_constants(problem.J)
    test = FieldConvergence(snes, _owned_sizes(unknowns), units, rtol, constants)
    snes.setConvergenceTest(test)
    problem.field_convergence = test  # lives as long as the problem
    return test
