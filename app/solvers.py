"""Solver presets and the two solvers a group of unknowns is solved with.

A group's residual is analysed once: if its Jacobian does not depend on the unknowns the
problem is linear and goes to :class:`LinearSolver`, which assembles the operator once and
re-assembles it only when a constant it depends on changed (a new dt) or it depends on a field
that evolves; the KSP (and its factorisation or multigrid hierarchy) is reused across steps.
Everything else goes to :class:`NewtonSolver` (PETSc SNES).

Presets: ``direct`` (MUMPS LU), ``cg_gamg`` (CG + smoothed-aggregation AMG, for symmetric
positive definite operators), ``gmres_gamg``, ``gmres_ilu`` and, for groups of several fields,
``fieldsplit`` (GMRES on the block system, preconditioned field by field: a block Gauss-Seidel
sweep with one AMG V-cycle per field, on a PETSc nest matrix). ``auto`` picks MUMPS below 100k
unknowns (a direct solve is fastest there and exact) and the AMG presets above.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import ufl
from dolfinx import fem, la
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc
from pydantic import Field, field_validator
from ufl.algorithms.analysis import extract_constants

from app.contracts import Modes, Parameters
from app.errors import CaseError
from app.petsc_options import check_petsc_options

AUTO_DIRECT_LIMIT = 100_000

# A direct (MUMPS) factorisation equilibrates the rows and columns of the operator (ICNTL(8) = 7,
# iterative row and column scaling) and detects null pivots (ICNTL(24)): a pivot whose remaining
# row is below NULL_PIVOT_TOLERANCE of the equilibrated matrix's norm (CNTL(3)). Relative to each
# row's own scale, a regular system whose fields differ by many orders of magnitude (SI units) has
# no such pivot, while a singular one shows its round-off pivot. MUMPS's default threshold, 1e-5
# machine epsilons, let singular operators on quadrilaterals or boxes through (their round-off
# pivot is larger); 1e-10 finds them up to the sizes a direct solve is chosen for, and still lets
# a field through that is held only by a Robin coefficient 1e-9 of its conductance.
NULL_PIVOT_TOLERANCE = 1e-10

PRESETS: dict[str, dict[str, Any]] = {
    "direct": {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"},
    "cg_gamg": {"ksp_type": "cg", "pc_type": "gamg"},
    "gmres_gamg": {"ksp_type": "gmres", "pc_type": "gamg"},
    # Block Jacobi's blocks default to ILU(0); a sub_pc_type option would only be read when the
    # blocks are set up, and stay unused in a run without a linear solve.
    "gmres_ilu": {"ksp_type": "gmres", "pc_type": "bjacobi"},
    "fieldsplit": {
        "ksp_type": "gmres",
        "ksp_gmres_restart": 100,
        "pc_type": "fieldsplit",
        "pc_fieldsplit_type": "multiplicative",
    },
}

_prefixes = itertools.count()


class NewtonSpec(Parameters):
    """Newton (PETSc SNES) settings for nonlinear problems."""

    rtol: float = Field(1e-9, gt=0, description="Relative residual tolerance")
    atol: float = Field(1e-10, ge=0, description="Absolute residual tolerance")
    max_iterations: int = Field(
        25, ge=1, lt=2**31, description="Iterations before a step counts as failed (a PETSc int)"
    )
    line_search: Literal["basic", "bt"] = Field("basic", description="SNES line search")


class SolverSpec(Parameters):
    """Linear solver choice. ``auto`` takes MUMPS (direct) below 100k unknowns; above, CG + GAMG
    for symmetric positive definite problems, GMRES + GAMG for other single fields and
    ``fieldsplit`` (block preconditioning, one AMG per field) for groups of several fields."""

    preset: Literal["auto", "direct", "cg_gamg", "gmres_gamg", "gmres_ilu", "fieldsplit"] = Field(
        "auto", description="Linear solver preset"
    )
    rtol: float = Field(1e-10, gt=0, description="Relative tolerance of iterative solvers")
    newton: NewtonSpec = Field(default_factory=NewtonSpec, description="Newton settings")
    petsc: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="PETSc solver options, applied after the preset (an allow-list: no viewers, "
        "monitors or files)",
    )
    quadrature_degree: int | None = Field(
        None,
        ge=0,
        le=30,
        description="Quadrature degree of every form (default: 2 x the highest field degree, "
        "+ the curved geometry's, + 2 for nonlinear equations)",
    )

    @field_validator("petsc")
    @classmethod
    def _solver_settings_only(cls, options: dict[str, Any]) -> dict[str, Any]:
        return check_petsc_options(options, "solver.petsc")


@dataclass(frozen=True)
class SolveReport:
    """Outcome of one solve of a group.

    Attributes:
        converged: The solve reached its tolerance with finite values.
        iterations: Newton iterations (1 for a linear solve).
        linear_iterations: Krylov iterations, summed.
        reason: PETSc's reason, and what else went wrong.
        residual_norms: The residual norm before each Newton iteration and after the last (of
            the last Newton solve): their ratios show the order of convergence.
    """

    converged: bool
    iterations: int
    linear_iterations: int
    reason: str
    residual_norms: tuple[float, ...] = ()

    def then(self, later: SolveReport) -> SolveReport:
        """This solve followed by ``later``: the counts add up, the later outcome decides."""
        return SolveReport(
            later.converged,
            self.iterations + later.iterations,
            self.linear_iterations + later.linear_iterations,
            later.reason,
            later.residual_norms or self.residual_norms,
        )


@dataclass
class System:
    """A group's discretised equations in UFL, before compilation.

    Attributes:
        unknowns: The group's solved fields (functions updated in place).
        residuals: One residual form per unknown (its test-function block).
        jacobian: Blocks dF_i/du_j (None where structurally zero).
        bcs: Dirichlet conditions on the unknowns.
        spd: Every plug-in in the group declares a symmetric positive definite operator.
        static: Functions that never change during a run (piecewise properties).
        modes: (Near-)nullspace of a single-field system, for multigrid and singular operators.
        entity_maps: Maps between the meshes of fields on regions (empty: one mesh).
    """

    unknowns: list[fem.Function]
    residuals: list[ufl.Form]
    jacobian: list[list[ufl.Form | None]]
    bcs: list[fem.DirichletBC]
    spd: bool
    static: set[Any]
    modes: Modes | None = None
    entity_maps: list[Any] = field(default_factory=list)

    @property
    def linear(self) -> bool:
        """The Jacobian does not depend on the unknowns."""
        unknowns = set(self.unknowns)
        return not any(
            unknowns & set(ufl.algorithms.extract_coefficients(block))
            for row in self.jacobian
            for block in row
            if block is not None
        )

    @property
    def size(self) -> int:
        """Global number of unknowns."""
        return sum(
            u.function_space.dofmap.index_map.size_global * u.function_space.dofmap.index_map_bs
            for u in self.unknowns
        )


def jacobian_blocks(
    blocks: list[ufl.Form], unknowns: list[fem.Function]
) -> list[list[ufl.Form | None]]:
    """dF_i/du_j by ``ufl.derivative``; None where a block is structurally zero (assembling it
    across meshes without an entity map would fail)."""
    rows = []
    for block in blocks:
        row = []
        for u in unknowns:
            du = ufl.TrialFunction(u.function_space)
            J = ufl.algorithms.expand_derivatives(ufl.derivative(block, u, du))
            row.append(None if J.empty() else J)
        rows.append(row)
    return rows


def describe_groups(groups: list[Any], requested: str) -> str:
    """One line per group: its unknowns, size, kind of problem and solver preset."""
    lines = []
    for group in groups:
        system = group.system
        if system is None:
            lines.append(f"group '{group.name}': derived fields only, nothing to solve")
            continue
        preset = choose_preset(requested, system)
        kind = "linear, operator reused across steps" if system.linear else "nonlinear, Newton"
        unknowns = ", ".join(f.spec.name for f in group.unknowns)
        lines.append(
            f"group '{group.name}': {unknowns} ({system.size} dofs; {kind}; solver {preset}; "
            f"quadrature degree {group.quadrature_degree})"
        )
    return "\n".join(lines)


def choose_preset(requested: str, system: System) -> str:
    """The preset to use: the requested one, or for ``auto`` the best fit for the system."""
    if requested != "auto":
        return requested
    if system.size < AUTO_DIRECT_LIMIT:
        return "direct"
    if len(system.unknowns) > 1:
        return "fieldsplit"
    return "cg_gamg" if system.spd and system.linear else "gmres_gamg"


def petsc_options(preset: str, rtol: float, system: System) -> dict[str, Any]:
    """Options of a preset for a system, with the relative tolerance applied."""
    options = dict(PRESETS[preset])
    if preset != "direct":
        options["ksp_rtol"] = rtol
    if preset == "fieldsplit" and len(system.unknowns) < 2:
        raise CaseError(
            "solver.preset",
            "'fieldsplit' preconditions a group of several fields field by field, but a "
            f"group here solves one field ('{system.unknowns[0].name}')",
            "use 'auto', or a single-field preset such as 'cg_gamg' or 'gmres_gamg'",
        )
    return options


def configure_splits(ksp: PETSc.KSP) -> None:
    """One AMG V-cycle per field in a fieldsplit preconditioner.

    Set on the split solvers themselves (they exist once DOLFINx has given the PC the nest's
    index sets), not as ``fieldsplit_<name>_<index>_`` options, which a run without a linear
    solve would leave unused in the database. The case's ``solver.petsc`` options for a split
    are read when the preconditioner is set up and win.
    """
    pc = ksp.getPC()
    if pc.getType() != "fieldsplit":
        return
    for split in pc.getFieldSplitSubKSP():
        split.setType("preonly")
        split.getPC().setType("gamg")


def attach_modes(matrix: PETSc.Mat, system: System) -> PETSc.NullSpace | None:
    """Give the operator its near-nullspace (and nullspace, when exact); returns the PETSc
    object, which must stay alive as long as the matrix."""
    if system.modes is None:
        return None
    space = system.unknowns[0].function_space
    vectors = []
    for mode in system.modes.vectors:
        function = fem.Function(space)
        function.interpolate(fem.Expression(mode, space.element.interpolation_points))
        vectors.append(function)
    la.orthonormalize([v.x for v in vectors])
    nullspace = PETSc.NullSpace().create(
        vectors=[v.x.petsc_vec for v in vectors], comm=space.mesh.comm
    )
    matrix.setNearNullSpace(nullspace)
    if system.modes.exact:
        matrix.setNullSpace(nullspace)
        matrix.setTransposeNullSpace(nullspace)
    return nullspace


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


def _reason(kind: type, code: int) -> str:
    """PETSc's name for a converged/diverged reason code, e.g. ``DIVERGED_MAX_IT``."""
    names = [name for name, value in vars(kind).items() if value == code and name.isupper()]
    return next((n for n in names if n != "CONVERGED_ITERATING"), str(code))


def _blocks(vector: PETSc.Vec) -> list[PETSc.Vec]:
    """The vector itself, or the blocks of a nest vector."""
    return vector.getNestSubVecs() if vector.getType() == "nest" else [vector]


def _ghost_update(vector: PETSc.Vec, mode: Any, scatter: Any) -> None:
    for block in _blocks(vector):
        block.ghostUpdate(mode, scatter)


def configure_direct_solve(ksp: PETSc.KSP, A: PETSc.Mat, P: PETSc.Mat | None) -> None:
    """Set the MUMPS controls (see NULL_PIVOT_TOLERANCE) on the factor matrix of a direct solve.

    The factor is created here, so the controls are set on the object that uses them rather than
    left in PETSc's options database, where a run that never factorises (a Newton solve that
    converges at its first residual) would leave them unused. Options the case gives in
    ``solver.petsc`` (``mat_mumps_...``) are read when the factorisation starts and win.
    """
    pc = ksp.getPC()
    if pc.getType() != "lu" or pc.getFactorSolverType() != "mumps":
        return
    ksp.setOperators(A, P if P is not None else A)  # SNES would set them at its first solve
    pc.setFactorSetUpSolverType()
    factor = pc.getFactorMatrix()
    factor.setMumpsIcntl(8, 7)
    factor.setMumpsIcntl(24, 1)
    factor.setMumpsCntl(3, NULL_PIVOT_TOLERANCE)


def _singular(ksp: PETSc.KSP, system: System) -> str:
    """Why a direct solve's answer means nothing, or "": MUMPS met null pivots (relative to the
    scale of their rows, see NULL_PIVOT_TOLERANCE) in an operator that declares no exact null
    space. A steady field that no boundary condition fixes (heat with insulated sides only) is
    the usual cause."""
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


class LinearSolver:
    """Assemble-once linear solve of an affine system F(u) = A u - b.

    The bilinear form is the Jacobian; the right-hand side is -F evaluated at u = 0.
    """

    def __init__(self, system: System, options: dict[str, Any], prefix: str):
        self.system = system
        multi = len(system.unknowns) > 1
        a = system.jacobian if multi else system.jacobian[0][0]
        L = [self._rhs(F, system) for F in system.residuals]
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
        self._constants = [c for form in forms for c in extract_constants(form)]
        self._evolving = any(
            set(ufl.algorithms.extract_coefficients(form)) - system.static for form in forms
        )
        self._assembled_with: list[np.ndarray] | None = None
        self.matrix_assemblies = 0
        self._nullspace = attach_modes(self.problem.A, system)
        configure_direct_solve(self.problem.solver, self.problem.A, self.problem.P_mat)
        configure_splits(self.problem.solver)
        if options.get("ksp_type") != "preonly":
            self.problem.solver.setInitialGuessNonzero(True)

    @staticmethod
    def _rhs(F: ufl.Form, system: System) -> ufl.Form:
        zero = {u: ufl.zero(*u.ufl_shape) for u in system.unknowns}
        L = -ufl.replace(F, zero)
        L = ufl.algorithms.expand_derivatives(L)
        return _zero_form(F.arguments()[0]) if L.empty() else L

    def _matrix_is_stale(self) -> bool:
        values = [np.array(c.value, copy=True) for c in self._constants]
        if self._evolving or self._assembled_with is None:
            self._assembled_with = values
            return True
        stale = any(
            not np.array_equal(a, b) for a, b in zip(values, self._assembled_with, strict=True)
        )
        self._assembled_with = values
        return stale

    def solve(self) -> SolveReport:
        problem, multi = self.problem, len(self.system.unknowns) > 1
        if self._matrix_is_stale():
            self.matrix_assemblies += 1
            for matrix, form in ((problem.A, problem.a), (problem.P_mat, problem.preconditioner)):
                if matrix is not None:
                    matrix.zeroEntries()
                    fem_petsc.assemble_matrix(matrix, form, bcs=problem.bcs)
                    matrix.assemble()
        b = problem.b
        for block in _blocks(b):
            with block.localForm() as local:
                local.set(0.0)
        fem_petsc.assemble_vector(b, problem.L)
        if multi:
            bcs1 = fem.bcs_by_block(fem.extract_function_spaces(problem.a, 1), problem.bcs)
            fem_petsc.apply_lifting(b, problem.a, bcs=bcs1)
            _ghost_update(b, PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
            bcs0 = fem.bcs_by_block(fem.extract_function_spaces(problem.L), problem.bcs)
            fem_petsc.set_bc(b, bcs0)
        else:
            fem_petsc.apply_lifting(b, [problem.a], bcs=[problem.bcs])
            b.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
            fem_petsc.set_bc(b, problem.bcs)
        fem_petsc.assign(problem.u, problem.x)
        ksp = problem.solver
        ksp.solve(b, problem.x)
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
            f"linear solver {_reason(PETSc.KSP.ConvergedReason, reason)}"
            + ("" if finite else ", non-finite solution")
            + singular,
        )


class NewtonSolver:
    """Newton's method (PETSc SNES with line search) on the group's block residual."""

    def __init__(self, system: System, options: dict[str, Any], prefix: str):
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
        self._nullspace = attach_modes(self.problem.A, system)
        self.problem.solver.setConvergenceHistory(reset=True)
        configure_direct_solve(self.problem.solver.getKSP(), self.problem.A, self.problem.P_mat)
        configure_splits(self.problem.solver.getKSP())

    def solve(self) -> SolveReport:
        snes = self.problem.solver
        saved = [u.x.array.copy() for u in self.system.unknowns]
        self.problem.solve()
        norms = tuple(float(norm) for norm in snes.getConvergenceHistory()[0])
        reason = snes.getConvergedReason()
        finite = all(
            u.function_space.mesh.comm.allreduce(np.isfinite(u.x.array).all(), op=MPI.LAND)
            for u in self.system.unknowns
        )
        factored = reason > 0 and snes.getIterationNumber() > 0  # else no linear solve ran
        singular = _singular(snes.getKSP(), self.system) if factored else ""
        converged = reason > 0 and finite and not singular
        if not converged:
            for u, values in zip(self.system.unknowns, saved, strict=True):
                u.x.array[:] = values
        return SolveReport(
            converged,
            snes.getIterationNumber(),
            snes.getLinearSolveIterations(),
            f"Newton {_reason(PETSc.SNES.ConvergedReason, reason)}"
            + ("" if finite else ", non-finite solution")
            + singular,
            norms,
        )


def make_solver(system: System, spec: SolverSpec, name: str) -> LinearSolver | NewtonSolver:
    """The solver for a group: assemble-once reuse when the system is affine, else Newton."""
    preset = choose_preset(spec.preset, system)
    options = petsc_options(preset, spec.rtol, system)
    if system.modes is not None and options.get("pc_type") == "gamg":
        # Vector operators with rigid-body modes (elasticity) coarsen better with a small drop
        # threshold: iteration counts then stay flat under refinement.
        options["pc_gamg_threshold"] = 0.01
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
    prefix = f"sb{next(_prefixes)}_{name}_"
    try:
        return (LinearSolver if system.linear else NewtonSolver)(system, options, prefix)
    except PETSc.Error as exc:
        _undo_failed_setup(prefix, options)
        if not spec.petsc:
            raise
        raise CaseError(
            "solver.petsc",
            f"PETSc could not set up the solver of group '{name}' with these options: "
            f"{_petsc_reason(exc)}",
            "check the option names and values against the PETSc manual pages",
        ) from None


def _undo_failed_setup(prefix: str, options: dict[str, Any]) -> None:
    """Restore PETSc's global options after DOLFINx's set-up raised: it pushes the solver's
    prefix, sets the options and calls setFromOptions, and only if that returns deletes them
    and pops the prefix. Left pushed, the prefix would be prepended to every later solver's
    options in this process."""
    database = PETSc.Options()
    database.setValue("sb_probe", "")  # stored under whatever prefix is pushed
    probe = next(name for name in database.getAll() if name.endswith("sb_probe"))
    database.delValue(probe)  # deleting takes the full name; only setting adds the prefix
    if probe == f"{prefix}sb_probe":
        database.prefixPop()
    for key in options:
        database.delValue(f"{prefix}{key}")


def _petsc_reason(error: PETSc.Error) -> str:
    """PETSc's own words for an error: the last line of its message that is not a location."""
    lines = [line.removeprefix("[0]").strip() for line in str(error).splitlines()]
    words = [line for line in lines if line and " at " not in line and "error code" not in line]
    return words[-1] if words else f"error code {error.ierr}"
