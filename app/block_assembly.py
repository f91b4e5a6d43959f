"""Residual and Jacobian of a block system (several fields in one monolithic PETSc matrix) for
Newton's method, assembled in one loop over the blocks.

DOLFINx's SNES callbacks for a blocked system (``kind="mpi"``) spend most of their time in
Python for systems of many small blocks (the DFN: 887 unknowns in 35 blocks, 4 ms a Newton
iteration): per assembly they create the index sets of the blocks, pack constants and
coefficients through nested-sequence helpers, allocate a work array per residual block, take
every block's local sub-matrix a second time to insert the diagonal of fixed dofs, and lift
the residual with the Jacobian blocks of every column. Here the index sets and work arrays are
made once; the C++ packers and assemblers are called directly; the diagonal pass visits only
diagonal blocks of fields that have fixed values; and the lifting, which adds the columns of
the fixed dofs times (g - x) there, runs only where some fixed dof's iterate differs from its
value -- once Newton's first step has put them there, it adds exact zeros. The residual and
the Jacobian are those of DOLFINx's callbacks, entry for entry.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from dolfinx import cpp as _cpp
from dolfinx import fem
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

_pack_constants = _cpp.fem.pack_constants
_pack_coefficients = _cpp.fem.pack_coefficients


class BlockAssembly:
    """The SNES residual and Jacobian callbacks of a blocked NonlinearProblem.

    Args:
        problem: The problem (``kind="mpi"``: one monolithic matrix and vector).
        unknowns: Its fields, in block order.
        bcs: Its Dirichlet conditions.
    """

    def __init__(
        self,
        problem: fem_petsc.NonlinearProblem,
        unknowns: Sequence[fem.Function],
        bcs: Sequence[fem.DirichletBC],
    ):
        self._unknowns = list(unknowns)
        self._residuals: list[fem.Form] = list(problem.F)
        self._jacobian: list[list[fem.Form | None]] = [list(row) for row in problem.J]
        rows = fem.extract_function_spaces(self._jacobian, 0)
        columns = fem.extract_function_spaces(self._jacobian, 1)
        self._rows = _index_sets(rows)
        self._columns = _index_sets(columns)
        self._blocks = [
            (self._rows[i], self._columns[j], form._cpp_object)
            for i, row in enumerate(self._jacobian)
            for j, form in enumerate(row)
            if form is not None
        ]
        self._bcs = list(bcs)
        self._cpp_bcs = [bc._cpp_object for bc in bcs]
        # DOLFINx inserts the diagonal of fixed dofs in every block whose spaces are one object
        self._fixed_diagonals = [
            (self._rows[i], self._columns[j], form.function_spaces[0])
            for i, row in enumerate(self._jacobian)
            for j, form in enumerate(row)
            if form is not None
            and form.function_spaces[0] is form.function_spaces[1]
            and any(form.function_spaces[0].contains(bc.function_space) for bc in bcs)
        ]
        self._fixed_by_column = fem.bcs_by_block(columns, self._bcs)
        self._fixed_by_row = fem.bcs_by_block(rows, self._bcs)
        # lifting by a column without fixed dofs adds nothing: keep the others' blocks only
        self._lifting = [
            [form if self._fixed_by_column[j] else None for j, form in enumerate(row)]
            for row in self._jacobian
        ]
        self._comm = problem.b.getComm().tompi4py()
        self._layout: tuple = problem.b.getAttr("_blocks")
        owned, ghosted = self._layout
        self._work = [
            np.zeros(owned[i + 1] - owned[i] + ghosted[i + 1] - ghosted[i], dtype=PETSc.ScalarType)
            for i in range(len(self._residuals))
        ]
        # each field's owned and ghost entries, and where they sit in the local block vector
        # (owned blocks first, then ghost blocks): the arrays' memory stays, so the views do
        self._entries = [
            (values, start, stop)
            for i, u in enumerate(self._unknowns)
            for values, start, stop in _parts(u, owned[i], owned[i + 1], ghosted[i])
        ]
        self._unmet = problem.b.duplicate()  # alpha (g - x) at the fixed dofs
        self.liftings = 0  # residuals that needed the lifting (for tests)
        snes = problem.solver
        snes.setFunction(self.residual, problem.b)
        snes.setJacobian(self.jacobian, problem.A, problem.P_mat)

    def _take(self, x: PETSc.Vec) -> None:
        """Make the fields the iterate ``x`` (what ``fem.petsc.assign(x, unknowns)`` does,
        through views made once: the generic one costs 0.1 ms a call, Newton calls it twice
        an iteration)."""
        x.ghostUpdate(PETSc.InsertMode.INSERT, PETSc.ScatterMode.FORWARD)
        with x.localForm() as local:
            values = local.array_r
            for target, start, stop in self._entries:
                target[:] = values[start:stop]

    def residual(self, snes: PETSc.SNES, x: PETSc.Vec, b: PETSc.Vec) -> None:
        self._take(x)
        x.setAttr("_blocks", self._layout)
        owned, ghosted = self._layout
        with b.localForm() as local:
            values = local.array_w
            for i, (form, work) in enumerate(zip(self._residuals, self._work, strict=True)):
                work.fill(0.0)
                cpp_form = form._cpp_object
                _cpp.fem.assemble_vector(
                    work, cpp_form, _pack_constants(cpp_form), _pack_coefficients(cpp_form)
                )
                size = owned[i + 1] - owned[i]
                values[owned[i] : owned[i + 1]] = work[:size]
                values[ghosted[i] : ghosted[i + 1]] = work[size:]
        if self._bcs and self._fixed_values_unmet(x):
            self.liftings += 1
            fem_petsc.apply_lifting(b, self._lifting, bcs=self._fixed_by_column, x0=x, alpha=-1.0)
        b.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
        fem_petsc.set_bc(b, self._fixed_by_row, x0=x, alpha=-1.0)
        b.ghostUpdate(PETSc.InsertMode.INSERT, PETSc.ScatterMode.FORWARD)

    def _fixed_values_unmet(self, x: PETSc.Vec) -> bool:
        """Whether some fixed dof of the iterate differs from its value (on any rank): the
        lifting adds the Jacobian's columns there times the difference, else exact zeros."""
        unmet = self._unmet
        unmet.setAttr("_blocks", self._layout)
        with unmet.localForm() as local:
            local.set(0.0)
        fem_petsc.set_bc(unmet, self._fixed_by_row, x0=x, alpha=-1.0)
        local_unmet = bool(np.any(unmet.getArray(readonly=True)))
        return bool(self._comm.allreduce(local_unmet, op=MPI.LOR))

    def jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
        self._take(x)
        J.zeroEntries()
        bcs = self._cpp_bcs
        for rows, columns, form in self._blocks:
            block = J.getLocalSubMatrix(rows, columns)
            _cpp.fem.petsc.assemble_matrix(
                block, form, _pack_constants(form), _pack_coefficients(form), bcs, True
            )
            J.restoreLocalSubMatrix(rows, columns, block)
        if self._fixed_diagonals:
            J.assemble(PETSc.Mat.AssemblyType.FLUSH)  # from adding values to inserting them
            for rows, columns, space in self._fixed_diagonals:
                block = J.getLocalSubMatrix(rows, columns)
                _cpp.fem.petsc.insert_diagonal(block, space, bcs, 1.0)
                J.restoreLocalSubMatrix(rows, columns, block)
        J.assemble()


def _parts(
    u: fem.Function, owned_start: int, owned_stop: int, ghost_start: int
) -> list[tuple[np.ndarray, int, int]]:
    """Views of ``u``'s owned and ghost entries, with their ranges in the local block vector."""
    size = owned_stop - owned_start
    array = u.x.array
    ghosts = len(array) - size
    return [
        (array[:size], owned_start, owned_stop),
        (array[size:], ghost_start, ghost_start + ghosts),
    ]


def _index_sets(spaces: Sequence[fem.FunctionSpace]) -> list[PETSc.IS]:
    return _cpp.la.petsc.create_index_sets(
        [(V.dofmaps[0].index_map, V.dofmaps[0].index_map_bs) for V in spaces]
    )
