"""Values at quadrature points: their spaces, their cell means and their state per cell.

Internal variables (a plastic strain) and the derived fields that read them (the stress of a
return mapping) live at the quadrature points of their group's forms, in a basix quadrature
element of the group's degree: the forms read them at exactly the points where they were
computed. Such values have no shape functions, so they cannot be evaluated at a point or
interpolated; files and probes show their mean over each cell (a cellwise constant, the same on
any partition). Their state is saved and restored cell by cell, keyed by the mesh's original
cell numbers, so a checkpoint can restart them on another partition.
"""

from __future__ import annotations

from typing import Any

import basix.ufl
import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI


def quadrature_space(msh: Any, shape: tuple[int, ...], degree: int) -> fem.FunctionSpace:
    """Values of ``shape`` at the points of the default quadrature rule of ``degree`` (the rule
    FFCx integrates a form of that degree with)."""
    element = basix.ufl.quadrature_element(msh.basix_cell(), value_shape=shape, degree=degree)
    return fem.functionspace(msh, element)


def is_pointwise(space: Any) -> bool:
    """Whether a space holds values at quadrature points."""
    return space.ufl_element().is_quadrature


def quadrature_degree(space: Any) -> int:
    """The degree of the quadrature rule whose points a quadrature space holds values at."""
    return space.ufl_element().embedded_superdegree


def pointwise_degrees(expressions: list[Any]) -> set[int]:
    """Degrees of the quadrature spaces of the functions some expressions or forms read."""
    found = set()
    for expression in expressions:
        for coefficient in ufl.algorithms.extract_coefficients(expression):
            space = coefficient.ufl_function_space()
            if space.ufl_element().is_quadrature:
                found.add(space.ufl_element().embedded_superdegree)
    return found


class CellMean:
    """The mean over each cell of an expression of quadrature-point values, into a cellwise
    constant: the integral over the cell, with the quadrature rule of the values, divided by the
    cell's volume (computed on the rank owning the cell, so it is partition independent).

    Args:
        expression: UFL of quadrature functions (and anything else a form may read).
        target: A DG0 function of the expression's shape.
        degree: The degree of the quadrature rule the values belong to.
    """

    def __init__(self, expression: Any, target: fem.Function, degree: int):
        self.target = target
        space = target.function_space
        self._dx = ufl.dx(domain=space.mesh, metadata={"quadrature_degree": degree})
        self._integrand = ufl.inner(expression, ufl.TestFunction(space))
        self._form: Any = None  # compiled on first use (``scalebridge check`` compiles nothing)
        self._volumes = np.empty(0)

    def _compile(self) -> None:
        space = self.target.function_space
        self._form = fem.form(self._integrand * self._dx)
        cells = fem.functionspace(space.mesh, ("DG", 0))
        volumes = fem.assemble_vector(fem.form(ufl.TestFunction(cells) * self._dx))
        owned = cells.dofmap.index_map.size_local
        self._volumes = np.repeat(volumes.array[:owned], space.dofmap.index_map_bs)

    def __call__(self) -> None:
        if self._form is None:
            self._compile()
        integrals = fem.assemble_vector(self._form)  # cell integrals over owned cells only
        owned = len(self._volumes)
        self.target.x.array[:owned] = integrals.array[:owned] / self._volumes
        self.target.x.scatter_forward()


def cell_mean_space(space: Any, shape: tuple[int, ...] | None = None) -> fem.FunctionSpace:
    """The cellwise-constant space showing a quadrature space (of ``shape``, default its own)."""
    value_shape = tuple(space.value_shape) if shape is None else shape
    return fem.functionspace(space.mesh, ("DG", 0, value_shape))


# --------------------------------------------------------------------------------------------
# State per cell (for checkpoints)
# --------------------------------------------------------------------------------------------
def cell_state(function: fem.Function) -> tuple[np.ndarray, np.ndarray]:
    """The values of a cellwise space (quadrature or DG) on this rank's owned cells: their
    original cell numbers (as the mesh was read or built) and one row of values per cell."""
    space = function.function_space
    msh = space.mesh
    cells = np.arange(msh.topology.index_map(msh.topology.dim).size_local, dtype=np.int32)
    original = np.asarray(msh.topology.original_cell_index)[cells]
    return original.astype(np.int64), function.x.array[_cell_dofs(space, cells)].copy()


def restore_cell_state(function: fem.Function, original: np.ndarray, rows: np.ndarray) -> None:
    """Set a cellwise function from rows saved by :func:`cell_state` on any partition: every
    rank passes all rows (or at least those of its cells) and takes its cells' ones.

    Raises:
        ValueError: A cell of this rank has no row.
    """
    space = function.function_space
    msh = space.mesh
    cells = np.arange(msh.topology.index_map(msh.topology.dim).size_local, dtype=np.int32)
    mine = np.asarray(msh.topology.original_cell_index)[cells].astype(np.int64)
    order = np.argsort(original)
    position = np.searchsorted(original[order], mine)
    position = np.minimum(position, len(order) - 1)
    found = original[order][position] == mine if len(order) else np.zeros(len(mine), bool)
    if not msh.comm.allreduce(bool(found.all()), op=MPI.LAND):
        raise ValueError(f"the saved state of '{function.name}' misses cells of this mesh")
    function.x.array[_cell_dofs(space, cells)] = rows[order][position]
    function.x.scatter_forward()


def _cell_dofs(space: Any, cells: np.ndarray) -> np.ndarray:
    """Indices into a function's array of each cell's values, one row per cell."""
    block = space.dofmap.index_map_bs
    nodes = space.dofmap.list[cells]
    return (nodes[:, :, None] * block + np.arange(block)).reshape(len(cells), -1)
