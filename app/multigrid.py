"""Geometric multigrid on the meshes of ``mesh.refine`` (presets ``cg_gmg`` and ``gmres_gmg``).

A refined mesh comes with the meshes it was refined from (app/mesh_refine.py keeps them when
the preset asks): PETSc's PCMG gets one level per mesh, the prolongations between them
(app/prolongation.py) and builds the coarse operators itself as P^T A P (Galerkin), so any
operator a group assembles, linear or a Newton Jacobian, has its coarse levels without
re-discretising its forms on the coarse meshes (where its coefficients do not live). Algebraic
multigrid builds the same kind of hierarchy by aggregation at every set-up, most of its cost;
here the prolongations are known and have at most a few entries a row.

Dirichlet conditions: the rows of P at fixed fine dofs are empty. The fine operator's rows and
columns there are the identity, so the coarse operators are those of the free dofs (symmetric
positive definite) and a coarse correction never moves a fixed value. Keeping those rows gave
the same CG iteration counts (Poisson and the cantilever, 1-3 levels, measured), but it mixes
unit entries into coarse rows of stiffness and lets corrections move fixed values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dolfinx import fem
from petsc4py import PETSc

from app.errors import CaseError
from app.prolongation import prolongation
from app.solve_system import System
from app.solver_options import (
    COARSE_DIRECT_LIMIT,
    GEOMETRIC_MULTIGRID,
    MULTIGRID_LEVELS,
    prefixed_options,
)


def check_multigrid(system: System, preset: str, group: str) -> None:
    """Refuse a system that geometric multigrid cannot precondition, at ``solver.preset``."""
    alternative = GEOMETRIC_MULTIGRID[preset]
    if len(system.unknowns) > 1:
        names = ", ".join(u.name for u in system.unknowns)
        raise CaseError(
            "solver.preset",
            f"'{preset}' preconditions one field, but group '{group}' solves several ({names})",
            f"use 'fieldsplit' or '{alternative}', or solve the fields in groups of their own "
            "([coupling])",
        )
    space = system.unknowns[0].function_space
    hierarchy = system.hierarchy
    if hierarchy is None:
        raise CaseError(
            "solver.preset",
            f"'{preset}' needs the coarse meshes of mesh.refine, which group '{group}' has not",
            f"set mesh.refine >= 1, or use '{alternative}'",
        )
    if space.mesh.topology is not hierarchy.meshes[-1].topology:
        raise CaseError(
            "solver.preset",
            f"'{preset}' works on the whole mesh, but field '{system.unknowns[0].name}' lives "
            "on a region or boundary (a submesh without refinement levels)",
            f"use '{alternative}'",
        )
    basix = space.element.basix_element
    lagrange = basix.family.name == "P" and not basix.discontinuous
    if not lagrange or not 1 <= basix.degree <= 2:
        kind = f"degree {basix.degree}" if lagrange else "not continuous Lagrange"
        raise CaseError(
            "solver.preset",
            f"'{preset}' prolongs continuous Lagrange fields of degree 1 or 2, not field "
            f"'{system.unknowns[0].name}' ({kind})",
            f"use '{alternative}'",
        )


class GeometricMultigrid:
    """PCMG on the refinement hierarchy of a system's mesh, set on ``ksp``.

    Args:
        ksp: The solver (its operator is the fine level).
        system: One field on the finest mesh of ``system.hierarchy``.
        options: The solver's options: the preset's level settings are overridden by any the
            case gives (``mg_levels_ksp_max_it``...), read here because DOLFINx has removed
            them from PETSc's database before the levels exist.
    """

    def __init__(self, ksp: PETSc.KSP, system: System, options: dict[str, Any]):
        hierarchy = system.hierarchy
        element = system.unknowns[0].function_space.ufl_element()
        spaces = [fem.functionspace(mesh, element) for mesh in hierarchy.meshes]
        fixed = _fixed_dofs(system.bcs)
        last = len(spaces) - 1
        self.prolongations = [
            prolongation(
                spaces[k - 1], spaces[k], hierarchy.parents[k - 1], fixed if k == last else None
            )
            for k in range(1, len(spaces))
        ]
        coarse = spaces[0].dofmap.index_map
        self.coarse_size = coarse.size_global * spaces[0].dofmap.index_map_bs
        pc = ksp.getPC()
        pc.setType("mg")
        pc.setMGLevels(len(spaces))
        pc.setMGType(PETSc.PC.MGType.MULTIPLICATIVE)
        pc.setMGCycleType(PETSc.PC.MGCycleType.V)
        for level, matrix in enumerate(self.prolongations, start=1):
            pc.setMGInterpolation(level, matrix)
        self._configure(ksp, options)

    def _configure(self, ksp: PETSc.KSP, options: dict[str, Any]) -> None:
        pc = ksp.getPC()
        # CG's operators are symmetric: a Cholesky factor takes half the memory of LU's.
        factor = "cholesky" if options.get("ksp_type") == "cg" else "lu"
        coarsest = {"mg_coarse_pc_type": factor, "mg_coarse_pc_factor_mat_solver_type": "mumps"}
        if self.coarse_size > COARSE_DIRECT_LIMIT:
            coarsest = {"mg_coarse_pc_type": "gamg"}
        settings = MULTIGRID_LEVELS | coarsest
        settings |= {
            key: value for key, value in options.items() if key.startswith(("mg_", "pc_mg_"))
        }
        with prefixed_options(ksp.getOptionsPrefix() or "", settings):
            pc.setFromOptions()
            for level in range(1, pc.getMGLevels()):
                pc.getMGSmoother(level).setFromOptions()
            pc.getMGCoarseSolve().setFromOptions()

    def destroy(self) -> None:
        for matrix in self.prolongations:
            matrix.destroy()
        self.prolongations = []


def _fixed_dofs(bcs: list[fem.DirichletBC]) -> np.ndarray:
    """The local (unrolled) dofs the Dirichlet conditions fix."""
    if not bcs:
        return np.empty(0, dtype=np.int32)
    return np.unique(np.concatenate([bc.dof_indices()[0] for bc in bcs]))
