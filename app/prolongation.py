"""Prolongation between the nested Lagrange spaces of a uniform refinement, as PETSc matrices.

A Lagrange degree of freedom is a point value, so the fine space's value of a coarse function
at a fine dof is the coarse function at the dof's point. That point lies in the parent of any
fine cell holding the dof (refinement nests the cells), and its reference coordinates in the
parent give the coarse basis weights: row i of P holds phi_j(xi_i) for the parent's dofs j.
For P1, a fine vertex is a coarse vertex (one weight 1) or an edge midpoint (two weights 1/2);
P2 has up to the parent's ten (tetrahedra) or six (triangles). A vector field takes the same
weights per component. DOLFINx's ``interpolation_matrix`` works within one mesh only, and
``create_interpolation_data`` finds points by a global search; the parent map of the
refinement (app/mesh_refine.py) makes the search unnecessary.

Each rank builds the rows of its owned fine dofs: every owned dof lies in an owned fine cell,
whose parent is a local coarse cell (children stay on their parent's rank), and columns are in
the global numbering of the coarse space (ghost dofs of the parent included).
"""

from __future__ import annotations

import numpy as np
from dolfinx import fem
from petsc4py import PETSc

# Basis values below this are zeros of the basis at a node, left as round-off by the pull-back.
_ZERO_WEIGHT = 1e-12


def prolongation(
    coarse: fem.FunctionSpace,
    fine: fem.FunctionSpace,
    parents: np.ndarray,
    fixed: np.ndarray | None = None,
) -> PETSc.Mat:
    """The matrix P with fine dof values = P @ coarse dof values, for the same element on two
    nested meshes (PETSc's global numbering of both spaces, block size of the element).

    Args:
        coarse: The space on the coarse mesh.
        fine: The same element on the mesh refined from it.
        parents: Local coarse cell of each owned fine cell (app.mesh_refine.MeshHierarchy).
        fixed: Local (unrolled) fine dofs whose rows stay empty: values fixed by Dirichlet
            conditions, which the coarse levels must not correct.
    """
    nodes, cells = _owned_nodes(fine)
    parent_cells = parents[cells]
    reference = _reference_points(coarse, parent_cells, fine.tabulate_dof_coordinates()[nodes])
    weights = coarse.element.basix_element.tabulate(0, reference)[0, :, :, 0]
    coarse_map = coarse.dofmap.index_map
    columns = coarse_map.local_to_global(coarse.dofmap.list[parent_cells].ravel())
    columns = columns.reshape(weights.shape)
    kept = np.abs(weights) > _ZERO_WEIGHT
    node_of_entry = np.repeat(np.arange(len(nodes)), kept.sum(axis=1))
    return _assemble(fine, coarse, node_of_entry, columns[kept], weights[kept], fixed, len(nodes))


def _owned_nodes(fine: fem.FunctionSpace) -> tuple[np.ndarray, np.ndarray]:
    """The owned dof blocks of ``fine`` (all of them, in order) and an owned cell of each."""
    topology = fine.mesh.topology
    owned_cells = topology.index_map(topology.dim).size_local
    cell_dofs = fine.dofmap.list[:owned_cells]
    owned = fine.dofmap.index_map.size_local
    dofs, first = np.unique(cell_dofs.ravel(), return_index=True)
    dofs, first = dofs[dofs < owned], first[dofs < owned]
    if len(dofs) != owned:  # DOLFINx owns a dof on a rank that owns a cell holding it
        raise RuntimeError(f"{owned - len(dofs)} owned dofs lie in no owned cell")
    return dofs, (first // cell_dofs.shape[1]).astype(np.int32)


def _reference_points(
    coarse: fem.FunctionSpace, cells: np.ndarray, points: np.ndarray
) -> np.ndarray:
    """The reference coordinates of ``points`` in the affine simplices ``cells`` (least squares
    for a manifold: a triangle in 3D)."""
    geometry = coarse.mesh.geometry
    tdim = coarse.mesh.topology.dim
    x = geometry.x[:, : geometry.dim]
    vertices = geometry.dofmaps[0][cells][:, : tdim + 1]
    origin = x[vertices[:, 0]]
    edges = x[vertices[:, 1:]] - origin[:, None, :]  # (points, tdim, gdim): J transposed
    normal = np.einsum("nig,njg->nij", edges, edges)
    right = np.einsum("nig,ng->ni", edges, points[:, : geometry.dim] - origin)
    return np.linalg.solve(normal, right[..., None])[..., 0]


def _assemble(
    fine: fem.FunctionSpace,
    coarse: fem.FunctionSpace,
    node_of_entry: np.ndarray,
    columns: np.ndarray,
    weights: np.ndarray,
    fixed: np.ndarray | None,
    nodes: int,
) -> PETSc.Mat:
    """The AIJ matrix from one row per fine node (dof block) repeated for each component."""
    bs = fine.dofmap.index_map_bs
    rows = np.concatenate([bs * node_of_entry + c for c in range(bs)])
    cols = np.concatenate([bs * columns + c for c in range(bs)])
    values = np.tile(weights, bs)
    if fixed is not None and len(fixed):
        free = np.ones(bs * nodes, dtype=bool)
        free[fixed[fixed < bs * nodes]] = False
        rows, cols, values = rows[free[rows]], cols[free[rows]], values[free[rows]]
    order = np.lexsort((cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    indptr = np.zeros(bs * nodes + 1, dtype=PETSc.IntType)
    np.cumsum(np.bincount(rows, minlength=bs * nodes), out=indptr[1:])
    fine_map, coarse_map = fine.dofmap.index_map, coarse.dofmap.index_map
    sizes = (
        (bs * fine_map.size_local, bs * fine_map.size_global),
        (bs * coarse_map.size_local, bs * coarse_map.size_global),
    )
    matrix = PETSc.Mat().createAIJ(
        sizes,
        bsize=bs,
        csr=(indptr, cols.astype(PETSc.IntType), values.astype(PETSc.ScalarType)),
        comm=fine.mesh.comm,
    )
    matrix.assemble()
    return matrix
