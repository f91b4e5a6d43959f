"""What a group hands its solver, and what comes back: the :class:`System` of equations in UFL,
its Jacobian blocks, the :class:`SolveReport` of a solve, and the choice of PETSc preset and
options for a system (the presets themselves are in app/solver_options.py). The solvers that
take a system are in app/solvers.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ufl
from dolfinx import fem, la
from petsc4py import PETSc

from app.contracts import Modes
from app.errors import CaseError
from app.solver_options import AUTO_DIRECT_LIMIT, PARALLEL_GAMG, PRESETS


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
        non_finite: Where a failed solve met a non-finite value (app/non_finite.py), or "".
        kept_jacobian_iterations: Those of the Newton iterations made with a Jacobian kept from
            an earlier iterate (app/jacobian_reuse.py): cheap, and no sign of a hard step.
    """

    converged: bool
    iterations: int
    linear_iterations: int
    reason: str
    residual_norms: tuple[float, ...] = ()
    non_finite: str = ""
    kept_jacobian_iterations: int = 0

    def then(self, later: SolveReport) -> SolveReport:
        """This solve followed by ``later``: the counts add up, the later outcome decides."""
        return SolveReport(
            later.converged,
            self.iterations + later.iterations,
            self.linear_iterations + later.linear_iterations,
            later.reason,
            later.residual_norms or self.residual_norms,
            later.non_finite,
            self.kept_jacobian_iterations + later.kept_jacobian_iterations,
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
        units: The units of each unknown (fields in the same units share a scale).
        laws: Laws evaluated outside UFL at quadrature points (app/pointwise_law.py), refreshed
            from the iterate before each assembly; they make the system nonlinear.
        hierarchy: The meshes the mesh was refined from (app.mesh_refine.MeshHierarchy), kept
            for geometric multigrid; None otherwise.
    """

    unknowns: list[fem.Function]
    residuals: list[ufl.Form]
    jacobian: list[list[ufl.Form | None]]
    bcs: list[fem.DirichletBC]
    spd: bool
    static: set[Any]
    modes: Modes | None = None
    entity_maps: list[Any] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    laws: list[Any] = field(default_factory=list)
    hierarchy: Any = None

    @property
    def linear(self) -> bool:
        """The Jacobian does not depend on the unknowns (nor on a law refreshed from them)."""
        unknowns = set(self.unknowns)
        return not self.laws and not any(
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
    across meshes without an entity map would fail). A residual that does not read u_j has no
    derivative by it: that block is None without differentiating the whole residual (most
    blocks of a coupled system, each costing as much UFL work as a block that is there)."""
    rows = []
    for block in blocks:
        row = []
        read = set(block.coefficients())
        for u in unknowns:
            if u not in read:
                row.append(None)
                continue
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
    if options.get("pc_type") == "gamg" and system.unknowns[0].function_space.mesh.comm.size > 1:
        options |= PARALLEL_GAMG
    if preset == "fieldsplit" and len(system.unknowns) < 2:
        raise CaseError(
            "solver.preset",
            "'fieldsplit' preconditions a group of several fields field by field, but a "
            f"group here solves one field ('{system.unknowns[0].name}')",
            "use 'auto', or a single-field preset such as 'cg_gamg' or 'gmres_gamg'",
        )
    return options


def attach_modes(
    matrix: PETSc.Mat, system: System, preconditioner: str | None = None
) -> PETSc.NullSpace | None:
    """Give the operator its near-nullspace (and nullspace, when exact); returns the PETSc
    object, which must stay alive as long as the matrix. Geometric multigrid (``pc_type``
    ``mg``) reads no near-nullspace: there the modes are made only when they are exact."""
    if system.modes is None or (preconditioner == "mg" and not system.modes.exact):
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
