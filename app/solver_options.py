"""Solver presets, the ``[solver]`` section of a case and the PETSc set-up they need.

:mod:`app.solve_system` picks a preset for a group's system and :mod:`app.solvers` builds its
linear or Newton solver; this module holds what that choice is made from and the details of
PETSc's set-up (MUMPS controls, fieldsplit blocks, the options database after a failure).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from petsc4py import PETSc
from pydantic import Field, field_validator, model_validator

from app.contracts import Parameters
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

# GAMG on an operator with rigid-body modes as near-nullspace (elasticity), chosen by measuring
# set-up plus iteration time over three refinements (benchmarks/gamg_variants.py; the table is
# in benchmarks/SCALING.md): weak couplings dropped when aggregating, a coarsest level of about
# 1000 equations (one level fewer), 5 iterations for the smoothers' eigenvalue estimates and one
# Chebyshev iteration per smoothing (PETSc: -1, 50, 10 and 2). CG iterations stay flat under
# refinement, and the time to solution is 0.7-0.8x that of PETSc's settings.
RIGID_BODY_GAMG: dict[str, Any] = {
    "pc_gamg_threshold": 0.01,
    "pc_gamg_coarse_eq_limit": 1000,
    "pc_gamg_esteig_ksp_max_it": 5,
    "mg_levels_ksp_max_it": 1,
}

# GAMG on more than one rank: the square of the graph that aggressive coarsening aggregates is
# formed by transposing the graph explicitly and multiplying, not by PETSc's default parallel
# transpose-product, whose cost per rank on 2 ranks is about twice one rank's for the whole
# graph (benchmarks/SCALING.md). Only the graph's sparsity is computed, the same either way, so
# the aggregates, the hierarchy and every iteration are unchanged; one rank keeps PETSc's default.
PARALLEL_GAMG: dict[str, Any] = {"pc_gamg_square_0_mat_product_algorithm": "at*b"}

# Geometric multigrid on the meshes of ``mesh.refine`` (app/multigrid.py), with the algebraic
# preset a case without refinement levels can use instead. Galerkin coarse operators (P^T A P
# with the refinement's prolongation), Chebyshev smoothing preconditioned by the diagonal, and
# the coarsest level factorised by MUMPS up to COARSE_DIRECT_LIMIT unknowns (else GAMG), by
# Cholesky under CG. Measured on the cantilever at 141k unknowns (benchmarks/SCALING.md): one,
# two and three Chebyshev iterations took 11, 8 and 7 CG iterations in about the same CPU time;
# SOR as fast; GAMG on the coarsest level 56 (no rigid-body modes there).
GEOMETRIC_MULTIGRID = {"cg_gmg": "cg_gamg", "gmres_gmg": "gmres_gamg"}
MULTIGRID_LEVELS: dict[str, Any] = {
    "pc_mg_galerkin": "both",
    "mg_levels_ksp_type": "chebyshev",
    "mg_levels_ksp_max_it": 2,
    "mg_levels_pc_type": "jacobi",
    "mg_coarse_ksp_type": "preonly",
}
COARSE_DIRECT_LIMIT = AUTO_DIRECT_LIMIT

PRESETS: dict[str, dict[str, Any]] = {
    "direct": {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"},
    "cg_gamg": {"ksp_type": "cg", "pc_type": "gamg"},
    "gmres_gamg": {"ksp_type": "gmres", "pc_type": "gamg"},
    "cg_gmg": {"ksp_type": "cg", "pc_type": "mg"},
    "gmres_gmg": {"ksp_type": "gmres", "pc_type": "mg"},
    # Block Jacobi's blocks default to ILU(0); a sub_pc_type option would only be read when the
    # blocks are set up, and stay unused in a run without a linear solve.
    "gmres_ilu": {"ksp_type": "gmres", "pc_type": "bjacobi"},
    # Mass (capacity) matrices: scaled by their diagonal they stay well conditioned at any size.
    "cg_jacobi": {"ksp_type": "cg", "pc_type": "jacobi"},
    "gmres_jacobi": {"ksp_type": "gmres", "pc_type": "jacobi"},
    "fieldsplit": {
        "ksp_type": "gmres",
        "ksp_gmres_restart": 100,
        "pc_type": "fieldsplit",
        "pc_fieldsplit_type": "multiplicative",
    },
}


class NewtonSpec(Parameters):
    """Newton (PETSc SNES) settings for nonlinear problems."""

    rtol: float = Field(1e-9, gt=0, description="Relative residual tolerance")
    atol: float = Field(
        1e-50,
        ge=0,
        description="Absolute residual tolerance (default PETSc's 1e-50: a zero residual; the "
        "norm scales with cell sizes and units, so a larger default passes small cells unsolved)",
    )
    max_iterations: int = Field(
        25, ge=1, lt=2**31, description="Iterations before a step counts as failed (a PETSc int)"
    )
    line_search: Literal["basic", "bt"] = Field("basic", description="SNES line search")
    reuse_preconditioner: bool = Field(
        True,
        description="Keep an AMG preconditioner across Newton iterations and steps, set up "
        "again when the Krylov iterations grow by half (or a solve fails)",
    )
    field_rtol: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Converged when every field's residual, scaled to its units by the "
        "Jacobian's diagonal, is below this fraction of the field's scale (app/newton.py)",
    )
    predictor: Literal["none", "linear", "quadratic"] = Field(
        "none",
        description="Initial guess of a step: the last values, or their extrapolation by the "
        "line through the last two (the parabola through the last three)",
    )
    jacobian_reuse: bool = Field(
        False,
        description="Modified Newton (as IDA does): keep the factorised Jacobian across "
        "iterations and steps, assembled again when the error contracts poorly, alpha/dt "
        "changes by a quarter, another constant changes, a solve fails, a protocol stage "
        "starts, or every 20 solves (app/jacobian_reuse.py); needs field_rtol",
    )

    @model_validator(mode="after")
    def _reuse_judged_by_fields(self) -> NewtonSpec:
        if self.jacobian_reuse and self.field_rtol is None:
            raise CaseError(
                "solver.newton.jacobian_reuse",
                "a kept Jacobian needs the field-by-field convergence test (field_rtol), "
                "which is made stricter by the contraction rate of the kept Jacobian; PETSc's "
                "own tests would take a slow contraction's small update as converged",
                "set solver.newton.field_rtol (e.g. 1e-9), or jacobian_reuse = false",
            )
        return self


class SolverSpec(Parameters):
    """Linear solver choice. ``auto`` takes MUMPS (direct) below 100k unknowns; above, CG + GAMG
    for symmetric positive definite problems, GMRES + GAMG for other single fields and
    ``fieldsplit`` (block preconditioning, one AMG per field) for groups of several fields."""

    preset: Literal[
        "auto",
        "direct",
        "cg_gamg",
        "gmres_gamg",
        "cg_gmg",
        "gmres_gmg",
        "gmres_ilu",
        "cg_jacobi",
        "gmres_jacobi",
        "fieldsplit",
    ] = Field(
        "auto",
        description="Linear solver preset (*_jacobi: for mass matrices; *_gmg: geometric "
        "multigrid on the meshes of mesh.refine, for one field in P1/P2 Lagrange)",
    )
    rtol: float = Field(1e-10, gt=0, description="Relative tolerance of iterative solvers")
    newton: NewtonSpec = Field(default_factory=NewtonSpec, description="Newton settings")
    petsc: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="PETSc solver options, applied after the preset (an allow-list: no viewers, "
        "monitors or files)",
    )
    stored_products: bool = Field(
        True,
        description="Right-hand sides and quantities affine in the changing fields as products "
        "with stored matrices and vectors (false: assembled over all cells every time)",
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


def reason_name(kind: type, code: int) -> str:
    """PETSc's name for a converged/diverged reason code, e.g. ``DIVERGED_MAX_IT``."""
    names = [name for name, value in vars(kind).items() if value == code and name.isupper()]
    return next((n for n in names if n != "CONVERGED_ITERATING"), str(code))


@contextmanager
def prefixed_options(prefix: str, settings: Mapping[str, Any]) -> Iterator[None]:
    """``settings`` in PETSc's options database under ``prefix`` for the ``setFromOptions``
    calls made inside the block, removed after it: the database is global, and a solver made
    later must not read them."""
    database = PETSc.Options()
    for key, value in settings.items():
        database[f"{prefix}{key}"] = value
    try:
        yield
    finally:
        for key in settings:
            database.delValue(f"{prefix}{key}")


def undo_failed_setup(prefix: str, options: dict[str, Any]) -> None:
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


def petsc_reason(error: PETSc.Error) -> str:
    """PETSc's own words for an error: the last line of its message that is not a location."""
    lines = [line.removeprefix("[0]").strip() for line in str(error).splitlines()]
    words = [line for line in lines if line and " at " not in line and "error code" not in line]
    return words[-1] if words else f"error code {error.ierr}"
