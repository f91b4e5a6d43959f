"""Rates at an instant: du/dt of a group's transient fields, from the state alone.

A flow through a fixed-value boundary is the reaction of the discrete equations there (see
app/quantities.py): the residual of the field's row, time terms included, summed over the
boundary's dofs. After a BDF step the step's residual is that row at the new time level. After a
Crank-Nicolson step it is the average over the step, so a flow written at the step's end would be
half a step late (first order in dt); and the row at the start time follows no step at all.
Those rows use the semi-discrete equations at the row's time instead::

    C(u) w + F(u, t) = 0    on the free dofs,         w = dg/dt    on the fixed ones,

solved for the rate w = du/dt with the state u frozen; the reaction is C w + F on the fixed dofs.
It is exact for the semi-discrete problem, so as accurate in time as u itself, at every row:
the first after the start, after a breakpoint or a protocol stage change, at any dt.

The system is linear in w, with the capacity (mass) matrix as operator. Scaled by its diagonal,
a mass matrix has a condition number bounded under refinement (at most d + 2 for P1 simplices in
d dimensions), so Jacobi-preconditioned CG reaches round-off in a few tens of iterations at any
size, each a matrix-vector product, with no factorisation to set up (ILU(0) and GMRES's
orthogonalisation cost more than the whole CG solve; a direct factorisation of a 3D mass matrix
costs more than a run's steps). CG needs a symmetric operator: every time term a scalar
capacity (C du/dt); a storage of an amount that reads several fields couples their rates
unsymmetrically, and takes GMRES with the same preconditioner.

A field without a time derivative that a storage reads (the displacement in Biot's fluid
content S p + alpha div u, solved in the same group) has its rate too: its row F(u, t) = 0 holds
at every instant, so dF/du w_u + dF/dt = 0 joins the system (solved directly then), and with
S = 0 it is what determines the pressure's rate. Such a row serves no reaction: its flows are
its step's residual's.

The system is differentiated and its solver set up on first use, so runs that report no
reaction never build them. Under BDF the
rates serve only rows that follow no step (the first, or an event checked at a stage's start),
so a large system releases its matrix after each use rather than hold it through the run.

The first row (t = 0) comes before the first step, when the step solver's matrix has been
created but not yet assembled (its first solve assembles it, whatever it holds): where that
matrix's sparsity pattern holds the capacity matrix's (one field, the same space), the rates are
assembled and solved in it, so the start costs no second sparsity pattern and matrix (a tenth
of the run's set-up on a large mesh). Later rows have their own matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from app.affine import within_pattern
from app.conditions import FixedValue
from app.domains import Domains
from app.errors import SolverError
from app.solve_system import System, jacobian_blocks, petsc_options
from app.solver_options import prefixed_options, reason_name
from app.solvers import LinearSolver, make_solver
from app.timeint import Row, TimeScheme

RATE_RTOL = 1e-12  # relative residual of the rate solve: cheap, and flows to round-off
# Above this many unknowns a BDF run releases the rates' matrix after use (see the docstring);
# below it the matrix is small and rebuilding it at every stage change would cost more.
RELEASE_ABOVE = 100_000


class Rates:
    """The rates of a group's transient fields at the current state and time.

    Args:
        name: The group's name (solver prefix, messages).
        rows: The group's rows; those with time terms get a rate.
        scheme: The group's time scheme (its time constant).
        fixed: The group's Dirichlet conditions.
        static: Functions that never change during the run.
        entity_maps: Maps between the meshes of fields on regions.
        finish: What the group does to each of its forms (drop zero terms, set the quadrature
            degree), so the rates' rows are integrated as the step's are.
    """

    def __init__(
        self,
        name: str,
        rows: Sequence[Row],
        scheme: TimeScheme,
        fixed: Sequence[FixedValue],
        static: set[Any],
        entity_maps: list[Any],
        finish: Callable[[ufl.Form], ufl.Form],
    ):
        transient = [row for row in rows if row.transient]
        constraints = _constraints_read(rows)
        self.name = name
        self.rates = {
            row.field: fem.Function(row.field.space, name=f"d{row.field.spec.name}_dt")
            for row in transient + constraints
        }
        self.residuals = {
            row.field.spec.name: finish(scheme.semi_discrete(row, self.rates)) for row in transient
        }
        # not reactions' rows: a constrained field's flows are those of its step's residual
        self._constraints = [finish(scheme.differentiated(row, self.rates)) for row in constraints]
        names = set(self.residuals) | {row.field.spec.name for row in constraints}
        conditions = [condition.rate(scheme.t) for condition in fixed if condition.field in names]
        self._values = [value for _, value in conditions if value is not None]
        self._bcs = [bc for bc, _ in conditions]
        self._static, self._entity_maps = static, entity_maps
        self._t = scheme.t
        self._solver = None
        self._compiled = False
        symmetric = all(
            term.kind == "capacity" and ufl.as_ufl(term.expression).ufl_shape == ()
            for row in transient
            for term in row.terms
        )
        # a constraint's row (elasticity) is no mass matrix: Jacobi would not do for it
        self._preset = "direct" if constraints else "cg_jacobi" if symmetric else "gmres_jacobi"

    @cached_property
    def system(self) -> System:
        """The rates' linear system, differentiated on first use: most runs never solve it."""
        unknowns = list(self.rates.values())
        blocks = list(self.residuals.values()) + self._constraints
        jacobian = jacobian_blocks(blocks, unknowns)
        return System(
            unknowns, blocks, jacobian, self._bcs, False, self._static, None, self._entity_maps
        )

    def solve(self, solver_spec: Any, domains: Domains, step_solver: Any = None) -> None:
        """Solve for the rates at the current state (compiling on first use), in the matrix of
        ``step_solver`` (the group's) if it may be borrowed (see the module docstring).

        Raises:
            SolverError: The iterative solve failed (a transient field with no capacity
                somewhere makes the capacity matrix singular).
        """
        if not self._compiled:
            for value in self._values:
                value.compile(domains)
            self._compiled = True
        # A field with no capacity somewhere (species in pores that have closed) leaves zero
        # rows of the capacity matrix; Jacobi takes 1 for a zero diagonal there, where the
        # rate is undefined and reads into no flow.
        update = {"preset": self._preset, "rtol": RATE_RTOL, "petsc": {}}
        spec = solver_spec.model_copy(update=update)
        for value in self._values:
            value.update()
        borrowed = self._borrowable(step_solver) if self._solver is None else None
        if borrowed is not None:
            converged, reason = self._solve_in(borrowed, spec)
        else:
            if self._solver is None:
                self._solver = make_solver(self.system, spec, f"{self.name}_rates")
            report = self._solver.solve()
            converged, reason = report.converged, report.reason
        if not converged:
            fields = ", ".join(field.spec.name for field in self.rates)
            raise SolverError(
                f"the rates d/dt of {fields} at t = {float(self._t.value):.6g} s, which the "
                f"flows through fixed-value boundaries need, could not be solved ({reason})"
            )

    def _borrowable(self, step_solver: Any) -> PETSc.Mat | None:
        """The step solver's matrix if it has not been assembled yet (its first solve assembles
        it) and holds the rates' system: one field in the same space, a sparsity pattern that
        holds the capacity matrix's; else None."""
        if not isinstance(step_solver, LinearSolver) or step_solver.matrix_assemblies:
            return None
        step, system = step_solver.system, self.system
        if step_solver.nest or len(step.unknowns) != 1 or len(system.unknowns) != 1:
            return None
        if system.entity_maps or step.entity_maps:
            return None
        same_space = system.unknowns[0].function_space == step.unknowns[0].function_space
        if not same_space or not within_pattern(system.jacobian[0][0], step.jacobian[0][0]):
            return None
        return step_solver.problem.A

    @cached_property
    def _borrowed_forms(self) -> tuple[fem.Form, fem.Form]:
        """The rates' operator and right-hand side, compiled once for solves in a borrowed
        matrix (every row before the step solver's first assembly)."""
        system = self.system
        rhs = LinearSolver.right_hand_side(system.residuals[0], system)
        return fem.form(system.jacobian[0][0]), fem.form(rhs)

    def _solve_in(self, matrix: PETSc.Mat, spec: Any) -> tuple[bool, str]:
        """Assemble the rates' system into ``matrix`` and solve it as :class:`LinearSolver`
        would on its first solve (the same forms, options and initial guess); (converged,
        reason)."""
        system, rate = self.system, self.system.unknowns[0]
        operator, rhs = self._borrowed_forms
        matrix.zeroEntries()
        fem_petsc.assemble_matrix(matrix, operator, bcs=system.bcs)
        matrix.assemble()
        b = fem_petsc.assemble_vector(rhs)
        fem_petsc.apply_lifting(b, [operator], bcs=[system.bcs])
        b.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
        fem_petsc.set_bc(b, system.bcs)
        ksp = self._ksp(matrix, petsc_options(spec.preset, spec.rtol, system))
        ksp.solve(b, rate.x.petsc_vec)
        rate.x.scatter_forward()
        reason = ksp.getConvergedReason()
        comm = rate.function_space.mesh.comm
        finite = bool(comm.allreduce(bool(np.isfinite(rate.x.array).all()), op=MPI.LAND))
        ksp.destroy()
        b.destroy()
        name = reason_name(PETSc.KSP.ConvergedReason, reason)
        return reason > 0 and finite, f"linear solver {name}" + ("" if finite else ", non-finite")

    def _ksp(self, matrix: PETSc.Mat, settings: dict[str, Any]) -> PETSc.KSP:
        """A KSP on ``matrix`` with the given options, starting from the current rates."""
        ksp = PETSc.KSP().create(matrix.getComm())
        ksp.setOperators(matrix)
        prefix = f"{self.name}_rates_borrowed_"
        ksp.setOptionsPrefix(prefix)
        with prefixed_options(prefix, settings):
            ksp.setFromOptions()
        ksp.setInitialGuessNonzero(True)
        return ksp

    def release(self) -> None:
        """Free the solver's matrix and vectors if the system is large (it is set up again on
        the next use)."""
        if self._solver is not None and self.system.size > RELEASE_ABOVE:
            self._solver.destroy()
            self._solver = None


def _constraints_read(rows: Sequence[Row]) -> list[Row]:
    """The rows without time terms whose field a storage reads (the displacement in a fluid
    content S p + alpha div u): their rates enter the storage's, so the rates' system takes
    their rows differentiated in time (:meth:`TimeScheme.differentiated`) beside the others;
    without them the fluid content's rate would be the pressure's alone, undetermined when
    S = 0."""
    read = set()
    for row in rows:
        for term in row.terms:
            if term.kind == "storage":
                read |= set(ufl.algorithms.extract_coefficients(term.expression))
    return [
        row
        for row in rows
        if not row.transient and row.operator is not None and row.field.function in read
    ]
