"""A single field's linear problem whose matrix shares another operator's sparsity pattern.

DOLFINx's ``LinearProblem`` always builds its matrix's sparsity pattern from the form (a pass
over every cell, and the memory of the column indices). A second operator on the same field
whose integrals the first one's pattern holds (the capacity matrix of the rates at an instant,
app/rates.py, beside the step operator) can share that pattern instead: PETSc duplicates the
matrix structure without copying the column indices. :class:`SharedPatternProblem` offers the
attributes of ``LinearProblem`` that :class:`app.solvers.LinearSolver` uses; the pattern test
is :func:`app.affine.within_pattern`; the
operator must have been assembled (PETSc duplicates only an assembled matrix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ufl
from dolfinx import fem
from dolfinx.fem import petsc as fem_petsc
from petsc4py import PETSc


@dataclass(frozen=True)
class Pattern:
    """An assembled operator and its bilinear form: the sparsity pattern others may share."""

    matrix: PETSc.Mat
    form: ufl.Form


class SharedPatternProblem:
    """``a(w, v) = L(v)`` for one field ``u`` with the boundary conditions ``bcs``, its matrix
    sharing the pattern of ``pattern.matrix`` (the caller has checked that it holds ``a``).

    Args:
        a: The bilinear form.
        L: The linear form.
        u: The unknown.
        bcs: The Dirichlet conditions.
        pattern: The operator whose pattern the matrix shares.
        prefix: The PETSc options prefix of the KSP.
        options: PETSc options of the KSP.
    """

    P_mat = None
    preconditioner = None

    def __init__(
        self,
        a: ufl.Form,
        L: ufl.Form,
        u: fem.Function,
        bcs: list[Any],
        pattern: Pattern,
        prefix: str,
        options: dict[str, Any],
    ):
        self.a, self.L, self.u, self.bcs = fem.form(a), fem.form(L), u, bcs
        self.A = pattern.matrix.duplicate(PETSc.Mat.DuplicateOption.SHARE_NONZERO_PATTERN)
        space = u.function_space
        self.b = fem_petsc.create_vector(space)
        self.x = fem_petsc.create_vector(space)
        self.solver = PETSc.KSP().create(self.A.comm)
        self.solver.setOperators(self.A)
        self.solver.setOptionsPrefix(prefix)
        database = PETSc.Options()
        database.prefixPush(prefix)
        for key, value in options.items():
            database[key] = value
        self.solver.setFromOptions()
        for key in options:
            database.delValue(key)
        database.prefixPop()
