"""The two solvers a group of unknowns is solved with, and the choice between them.

A group's residual is analysed once: if its Jacobian does not depend on the unknowns the
problem is linear and goes to :class:`LinearSolver`, which assembles the operator once and
re-assembles it only when a constant it depends on changed (a new dt) or it depends on a field
that evolves; the KSP (and its factorisation or multigrid hierarchy) is reused across steps. Its
right-hand side is the products of stored matrices with the functions that change (the earlier
time levels) plus a load vector assembled again only when its data change (app/affine.py).
Everything else goes to :class:`NewtonSolver` (PETSc SNES).

The presets and the ``[solver]`` section are in app/solver_options.py: ``direct`` (MUMPS LU),
``cg_gamg`` (CG + smoothed-aggregation AMG, for symmetric positive definite operators),
``gmres_gamg``, ``gmres_ilu``, ``cg_jacobi``/``gmres_jacobi`` (mass matrices) and, for groups of
several fields, ``fieldsplit`` (GMRES on the block system, preconditioned field by field: a block
Gauss-Seidel sweep with one AMG V-cycle per field, on a PETSc nest matrix). ``auto`` picks MUMPS
below 100k unknowns (a direct solve is fastest there and exact) and the AMG presets above.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc
from ufl.algorithms.analysis import extract_constants

from app.affine import DataOf, StoredRightHandSide
from app.block_assembly import BlockAssembly
from app.errors import CaseError, SolverError
from app.jacobian_reuse import JacobianReuse, install_jacobian_reuse
from app.multigrid import GeometricMultigrid, check_multigrid
from app.newton import install_field_convergence, install_unit_convergence
from app.non_finite import non_finite
from app.preconditioner_reuse import PreconditionerReuse, newton_counts
from app.solve_system import SolveReport, System, attach_modes, choose_preset, petsc_options
from app.solver_options import (
    GEOMETRIC_MULTIGRID,
    RIGID_BODY_GAMG,
    SolverSpec,
    configure_direct_solve,
    configure_splits,
    petsc_reason,
    reason_name,
    undo_failed_setup,
)

_prefixes = itertools.count()


def _zero_form(v: ufl.Argument) -> ufl.Form:
    """An integral of zero against ``v``: a right-hand side with no source terms."""
    domain = v.ufl_function_space().mesh
    zero = fem.Constant(domain, np.zeros(v.ufl_shape, dtype=PETSc.ScalarType))
    return ufl.inner(zero, v) * ufl.dx(domain=domain)


def _is_fieldsplit(options: dict[str, Any]) -> bool:
    return options.get("pc_type") == "fieldsplit"


def _kind(multi: bool, nest: bool) -> str | None:
    """Matrix layout: one monolithic matrix, or a nest of blocks for field-by-field
    preconditioning."""
    if not multi:
        return None
    return "nest" if nest else "mpi"


def _blocks(vector: PETSc.Vec) -> list[PETSc.Vec]:
    """The vector itself, or the blocks of a nest vector."""
    return vector.getNestSubVecs() if vector.getType() == "nest" else [vector]


def _ghost_update(vector: PETSc.Vec, mode: Any, scatter: Any) -> None:
    for block in _blocks(vector):
        block.ghostUpdate(mode, scatter)


def _singular(ksp: PETSc.KSP, system: System) -> str:
    """Why a direct solve's answer means nothing, or "": MUMPS met null pivots (relative to the
    scale of their rows, see app.solver_options.NULL_PIVOT_TOLERANCE) in an operator that
    declares no exact null space. A steady field that no boundary condition fixes (heat with
    insulated sides only) is the usual cause."""
    pc = ksp.getPC()
    if pc.getType() != "lu" or pc.getFactorSolverType() != "mumps":
        return ""
    if system.modes is not None and system.modes.exact:
        return ""
    nulls = pc.getFactorMatrix().getMumpsInfog(28)
    if nulls == 0:
        return ""
    return (
        f", singular operator ({nulls} null pivot(s)): a field is not fixed by any boundary "
        "condition; give it a fixed-value or exchange (convection, mass-transfer) boundary, or "
        "a time scheme if the problem is transient"
    )


def _finite(vector: PETSc.Vec, comm: MPI.Comm) -> bool:
    local = all(np.isfinite(block.array_r).all() for block in _blocks(vector))
    return bool(comm.allreduce(local, op=MPI.LAND))


def _where_not_finite(system: System, residual: PETSc.Vec, solution: PETSc.Vec | None) -> str:
    """Where the residual (the equations' source of a non-finite value), else the solution,
    of a failed solve is not finite; "" if both are finite (collective)."""
    names = [u.name for u in system.unknowns]
    for vector, what in ((residual, "the residual of "), (solution, "")):
        if vector is None:
            found = non_finite(system.unknowns, names)
        else:
            copies = [fem.Function(u.function_space) for u in system.unknowns]
            fem_petsc.assign(vector, copies if len(copies) > 1 else copies[0])
            found = non_finite(copies, names, what)
        if found:
            return found
    return ""


class LinearSolver:
    """Assemble-once linear solve of an affine system F(u) = A u - b.

    The bilinear form is the Jacobian; the right-hand side is -F evaluated at u = 0. A single
    field's right-hand side is kept as stored pieces (app/affine.py): the matrices that multiply
    the functions it changes with (the earlier time levels) and a constant part (the loads and
    the lifting of the boundary values) assembled again only when its data, the operator or
    the boundary values change.

    Args:
        system: The group's equations.
        options: PETSc options of the KSP.
        prefix: The options prefix.
        stored: Keep the right-hand side as stored pieces (``[solver] stored_products``).
        repeated: The solver is used at every step: store the pieces at the first solve (else
            at the second, so a one-off solve compiles nothing more).
    """

    def __init__(
        self,
        system: System,
        options: dict[str, Any],
        prefix: str,
        stored: bool = True,
        repeated: bool = False,
    ):
        self.system = system
        multi = len(system.unknowns) > 1
        a = system.jacobian if multi else system.jacobian[0][0]
        L = [self.right_hand_side(F, system) for F in system.residuals]
        self.nest = _is_fieldsplit(options)
        self.problem = fem_petsc.LinearProblem(
            a,
            L if multi else L[0],
            u=system.unknowns if multi else system.unknowns[0],
            P=a if self.nest else None,
            bcs=system.bcs,
            kind=_kind(multi, self.nest),
            petsc_options_prefix=prefix,
            petsc_options=options,
            entity_maps=system.entity_maps or None,
        )
        forms = [b for row in system.jacobian for b in row if b is not None]
        evolving = any(
            set(ufl.algorithms.extract_coefficients(form)) - system.static for form in forms
        )
        self._operator_data = DataOf(changing=evolving)
        self._operator_data.add_constants(c for form in forms for c in extract_constants(form))
        # Until the first solve (which always assembles the operator) the rates at the start
        # may borrow the matrix (app/rates.py)
        self.matrix_assemblies = 0
        self._nullspace = attach_modes(self.problem.A, system, options.get("pc_type"))
        self._multigrid = _multigrid(self.problem.solver, system, options)
        configure_direct_solve(self.problem.solver, self.problem.A, self.problem.P_mat)
        configure_splits(self.problem.solver)
        if options.get("ksp_type") != "preonly":
            self.problem.solver.setInitialGuessNonzero(True)
        self._rhs_form = None if multi or not stored else L[0]
        self._solves_before_storing = 0 if repeated else 1
        self._stored_rhs: StoredRightHandSide | None = None

    @staticmethod
    def right_hand_side(F: ufl.Form, system: System) -> ufl.Form:
        """The right-hand side of the affine system F(u) = A u - b: -F at u = 0."""
        zero = {u: ufl.zero(*u.ufl_shape) for u in system.unknowns}
        L = -ufl.replace(F, zero)
        L = ufl.algorithms.expand_derivatives(L)
        return _zero_form(F.arguments()[0]) if L.empty() else L

    def _matrix_is_stale(self) -> bool:
        """Whether the operator's data changed since it was assembled (always at first)."""
        return self._operator_data.changed()

    def solve(self) -> SolveReport:
        problem = self.problem
        operator_changed = self._matrix_is_stale()
        if operator_changed:
            self.matrix_assemblies += 1
            for matrix, form in ((problem.A, problem.a), (problem.P_mat, problem.preconditioner)):
                if matrix is not None:
                    matrix.zeroEntries()
                    fem_petsc.assemble_matrix(matrix, form, bcs=problem.bcs)
                    matrix.assemble()
        if self._rhs_form is not None and self._solves_before_storing == 0:
            if self._stored_rhs is None:
                self._stored_rhs = StoredRightHandSide(self._rhs_form, self.system, problem)
            self._stored_rhs.assemble(problem.b, operator_changed)
        else:
            self._solves_before_storing = max(0, self._solves_before_storing - 1)
            self._assemble_rhs()
        fem_petsc.assign(problem.u, problem.x)
        ksp = problem.solver
        ksp.solve(problem.b, problem.x)
        if self._nullspace is not None and self.system.modes.exact:
            self._nullspace.remove(problem.x)  # the solution the rigid motions leave undetermined
        _ghost_update(problem.x, PETSc.InsertMode.INSERT, PETSc.ScatterMode.FORWARD)
        reason = ksp.getConvergedReason()
        finite = _finite(problem.x, ksp.comm.tompi4py())
        singular = _singular(ksp, self.system) if reason > 0 else ""
        converged = reason > 0 and finite and not singular
        if converged:
            fem_petsc.assign(problem.x, problem.u)
        return SolveReport(
            converged,
            1,
            ksp.getIterationNumber(),
            f"linear solver {reason_name(PETSc.KSP.ConvergedReason, reason)}"
            + ("" if finite else ", non-finite solution")
            + singular,
            non_finite="" if finite else _where_not_finite(self.system, problem.b, problem.x),
        )

    def _assemble_rhs(self) -> None:
        """The right-hand side assembled over all cells."""
        problem, b = self.problem, self.problem.b
        for block in _blocks(b):
            with block.localForm() as local:
                local.set(0.0)
        fem_petsc.assemble_vector(b, problem.L)
        if len(self.system.unknowns) > 1:
            bcs1 = fem.bcs_by_block(fem.extract_function_spaces(problem.a, 1), problem.bcs)
            fem_petsc.apply_lifting(b, problem.a, bcs=bcs1)
            _ghost_update(b, PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
            bcs0 = fem.bcs_by_block(fem.extract_function_spaces(problem.L), problem.bcs)
            fem_petsc.set_bc(b, bcs0)
        else:
            fem_petsc.apply_lifting(b, [problem.a], bcs=[problem.bcs])
            b.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
            fem_petsc.set_bc(b, problem.bcs)

    def destroy(self) -> None:
        """Free the PETSc objects now rather than when the solver is collected."""
        if self._stored_rhs is not None:
            self._stored_rhs.destroy()
        if self._multigrid is not None:
            self._multigrid.destroy()
        self._nullspace = None
        self.problem = None


class NewtonSolver:
    """Newton's method (PETSc SNES with line search) on the group's block residual."""

    def __init__(
        self,
        system: System,
        options: dict[str, Any],
        prefix: str,
        reuse: bool = False,
        field_rtol: float | None = None,
        jacobian_reuse: bool = False,
        scheme: Any = None,
    ):
        self.system = system
        multi = len(system.unknowns) > 1
        nest = _is_fieldsplit(options)
        self.problem = fem_petsc.NonlinearProblem(
            system.residuals if multi else system.residuals[0],
            system.unknowns if multi else system.unknowns[0],
            J=system.jacobian if multi else system.jacobian[0][0],
            P=system.jacobian if nest else None,
            bcs=system.bcs,
            kind=_kind(multi, nest),
            petsc_options_prefix=prefix,
            petsc_options=options,
            entity_maps=system.entity_maps or None,
        )
        if multi and not nest:
            BlockAssembly(self.problem, system.unknowns, system.bcs)
        self._laws = (
            _RefreshedLaws(self.problem, system.unknowns, system.laws) if system.laws else None
        )
        self._nullspace = attach_modes(self.problem.A, system, options.get("pc_type"))
        self._multigrid = _multigrid(self.problem.solver.getKSP(), system, options)
        self.problem.solver.setConvergenceHistory(reset=True)
        configure_direct_solve(self.problem.solver.getKSP(), self.problem.A, self.problem.P_mat)
        configure_splits(self.problem.solver.getKSP())
        ksp = self.problem.solver.getKSP()
        # Geometric multigrid is set up again at every Jacobian: its set-up (P^T A P with known
        # prolongations) is cheap, and a kept one smooths with Chebyshev bounds of an older
        # operator, which diverge when the spectrum grows (GMRES failed where k rises with T).
        amg = ksp.getType() != "preonly" and ksp.getPC().getType() in ("gamg", "hypre")
        self.reuse = PreconditionerReuse(self.problem.solver) if reuse and amg else None
        self.jacobian_reuse: JacobianReuse | None = None
        if field_rtol is not None:
            test = install_field_convergence(
                self.problem, system.unknowns, system.units, field_rtol
            )
            if jacobian_reuse:  # wraps the test's Jacobian: a kept one leaves its diagonal
                self.jacobian_reuse = install_jacobian_reuse(self.problem, test, scheme)
        elif len(set(system.units)) > 1 and not nest:
            install_unit_convergence(self.problem, system.unknowns, system.units)

    def forget_jacobian(self) -> None:
        """The next iteration assembles the Jacobian (the system changed)."""
        if self.jacobian_reuse is not None:
            self.jacobian_reuse.invalidate()

    def _newton(self) -> tuple[int, tuple | None]:
        """Newton's iterations from the current guess: SNES's converged reason, and the counts
        of a solve a kept preconditioner restarted (else None: SNES's own)."""
        if self._laws is not None:
            self._laws.failure = ""
        snes, counts = self.problem.solver, None
        try:
            if self.reuse is None:
                self.problem.solve()
            else:
                counts = self.reuse.solve(snes, self.problem.solve)
            return snes.getConvergedReason(), counts
        except PETSc.Error:  # MUMPS refusing a factor of inf/NaN entries raises in KSPSolve
            return PETSc.SNES.ConvergedReason.DIVERGED_LINEAR_SOLVE, counts

    def _restore(self, saved: list[np.ndarray]) -> None:
        for u, values in zip(self.system.unknowns, saved, strict=True):
            u.x.array[:] = values

    def solve(self) -> SolveReport:
        snes = self.problem.solver
        saved = [u.x.array.copy() for u in self.system.unknowns]
        kept = self.jacobian_reuse
        if kept is None:
            reason, counts = self._newton()
        else:
            reason, counts = kept.solve(self._newton, lambda: self._restore(saved))
        iterations, linear, norms = counts or newton_counts(snes)
        finite = all(
            u.function_space.mesh.comm.allreduce(np.isfinite(u.x.array).all(), op=MPI.LAND)
            for u in self.system.unknowns
        )
        factored = reason > 0 and snes.getIterationNumber() > 0  # else no linear solve ran
        singular = _singular(snes.getKSP(), self.system) if factored else ""
        # PETSc calls a line search that failed (a non-finite residual at every trial point)
        # converged when the step it shrank to is below stol times the solution: the iterate is
        # then left where it was, with the trial's residual (a particle emptied past c = 0)
        stalled = reason > 0 and not np.isfinite(snes.getFunction()[0].norm())
        # likewise a law that failed at a trial point (an RVE's Newton) fails the solve, even
        # where the line search backtracked to a step so short that SNES judged it converged
        failed_law = self._laws is not None and bool(self._laws.failure)
        converged = reason > 0 and finite and not singular and not stalled and not failed_law
        if self.reuse is not None:
            self.reuse.after_solve(converged)
        if kept is not None:
            kept.end_solve(converged)
        where = ""
        if not converged:
            where = _where_not_finite(self.system, snes.getFunction()[0], None)
            self._restore(saved)
        return SolveReport(
            converged,
            iterations,
            linear,
            (
                f"a pointwise law failed in Newton's iterations: {self._laws.failure}; "
                if failed_law
                else ""
            )
            + f"Newton {reason_name(PETSc.SNES.ConvergedReason, reason)}"
            + ("" if finite else ", non-finite solution")
            + (", the line search found no finite residual" if stalled else "")
            + singular,
            tuple(norms),
            where,
            0 if kept is None else kept.kept_iterations,
        )


class _RefreshedLaws:
    """Refresh a system's pointwise laws (app/pointwise_law.py) from the iterate before SNES
    assembles the residual or the Jacobian there.

    A law that fails (an RVE's Newton) makes the residual not finite and the solve fails like
    any diverged Newton (a step is retried smaller); its message is kept in ``failure``.
    """

    def __init__(
        self, problem: fem_petsc.NonlinearProblem, unknowns: list[fem.Function], laws: list[Any]
    ):
        self.laws, self.failure = laws, ""
        snes = problem.solver
        b, (residual, args, kargs) = snes.getFunction()
        A, P, (jacobian, jargs, jkargs) = snes.getJacobian()
        self._unknowns = unknowns if len(unknowns) > 1 else unknowns[0]
        snes.setFunction(self._before(residual, poison=True), b, args=args, kargs=kargs)
        snes.setJacobian(self._before(jacobian, poison=False), A, P, args=jargs, kargs=jkargs)

    def _before(self, assemble: Any, poison: bool) -> Any:
        def refreshed(snes: PETSc.SNES, x: PETSc.Vec, *rest: Any, **options: Any) -> None:
            _ghost_update(x, PETSc.InsertMode.INSERT, PETSc.ScatterMode.FORWARD)
            fem_petsc.assign(x, self._unknowns)
            failed = False
            try:
                for law in self.laws:
                    law.refresh()
            except SolverError as exc:
                self.failure, failed = str(exc), True
            assemble(snes, x, *rest, **options)
            if failed and poison:
                rest[0].set(np.nan)

        return refreshed


def _multigrid(ksp: PETSc.KSP, system: System, options: dict[str, Any]) -> Any:
    """Geometric multigrid on the system's refinement hierarchy, when the preset asks for it."""
    if system.hierarchy is None or options.get("pc_type") != "mg":
        return None
    return GeometricMultigrid(ksp, system, options)


def make_solver(
    system: System, spec: SolverSpec, name: str, repeated: bool = False, scheme: Any = None
) -> LinearSolver | NewtonSolver:
    """The solver for a group: assemble-once reuse when the system is affine, else Newton.

    ``repeated``: the solver is used at every time step (see :class:`LinearSolver`).
    ``scheme``: the group's time scheme (a kept Jacobian watches its alpha/dt).
    """
    preset = choose_preset(spec.preset, system)
    if preset in GEOMETRIC_MULTIGRID:
        check_multigrid(system, preset, name)
    options = petsc_options(preset, spec.rtol, system)
    if system.modes is not None and options.get("pc_type") == "gamg":
        options |= RIGID_BODY_GAMG
    options |= spec.petsc
    if not system.linear:
        newton = spec.newton
        options = {
            "snes_type": "newtonls",
            "snes_linesearch_type": newton.line_search,
            "snes_rtol": newton.rtol,
            "snes_atol": newton.atol,
            "snes_max_it": newton.max_iterations,
            # A coupled step starts near convergence, so its first residual can be tiny
            # against the residual of one field after the first update; PETSc's default
            # test (1e4 x the first residual) would stop good solves. Failures are caught by
            # the iteration limit and the finiteness check instead.
            "snes_divergence_tolerance": 1e12,
        } | options
    if not system.linear and spec.newton.field_rtol is not None and _is_fieldsplit(options):
        raise CaseError(
            "solver.newton.field_rtol",
            f"group '{name}' is preconditioned field by field (fieldsplit, nested vectors); "
            "field_rtol judges the fields of one monolithic vector",
            "remove field_rtol, or use a monolithic preconditioner (preset direct or iterative)",
        )
    prefix = f"sb{next(_prefixes)}_{name}_"
    try:
        if system.linear:
            return LinearSolver(system, options, prefix, spec.stored_products, repeated)
        newton = spec.newton
        return NewtonSolver(
            system,
            options,
            prefix,
            newton.reuse_preconditioner,
            newton.field_rtol,
            newton.jacobian_reuse,
            scheme,
        )
    except PETSc.Error as exc:
        undo_failed_setup(prefix, options)
        if not spec.petsc:
            raise
        raise CaseError(
            "solver.petsc",
            f"PETSc could not set up the solver of group '{name}' with these options: "
            f"{petsc_reason(exc)}",
            "check the option names and values against the PETSc manual pages",
        ) from None
