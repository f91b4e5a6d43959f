"""The values of solved fields in a checkpoint, keyed so that any partition can read them back.

A degree of freedom of a Lagrange field is a value at a point, so the point identifies it on any
partition of the same mesh, at any degree (no dof transformations are involved): a continuous
field's node is keyed by its coordinates; a discontinuous field has a node per cell at shared
points, so its key adds the midpoint of the node's cell. Each rank saves its owned nodes (one
row per node, a column per component, one array per time level); on restart each rank looks up
the rows of its nodes, owned and ghost, among the rows of every saved rank (a k-d tree, to a
tolerance of 1e-9 of the mesh's size). A node with no saved row within it, or a different
number of saved nodes, means the checkpoint belongs to another mesh and is refused.

Real (global) fields are saved as their values. Internal variables at quadrature points are
saved by the field store itself, by original cell number (:meth:`~app.fields.FieldStore.
internal_state`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from app.errors import CaseError, ScaleBridgeError

RELATIVE_TOLERANCE = 1e-9  # of the mesh's bounding-box diagonal


@dataclass
class NodeKeys:
    """The nodes of a space on this rank: their keys and the array entries of each."""

    keys: np.ndarray  # (nodes, key columns): coordinates, and for discontinuous spaces the cell's
    entries: np.ndarray  # (nodes, block size): indices into the function's array
    owned: int  # the first ``owned`` nodes are this rank's


def node_keys(space: fem.FunctionSpace) -> NodeKeys:
    """Keys of every local node (owned first, then ghosts) of a Lagrange space.

    Raises:
        ScaleBridgeError: The space's degrees of freedom are not point values.
    """
    element = space.ufl_element()
    if element.is_quadrature or not element.basix_element.family.name == "P":
        raise ScaleBridgeError(
            f"a checkpoint cannot hold the field in space {element}: only Lagrange (continuous "
            "or discontinuous) and real fields are keyed by position"
        )
    msh = space.mesh
    gdim = msh.geometry.dim
    index_map, block = space.dofmap.index_map, space.dofmap.index_map_bs
    count = index_map.size_local + index_map.num_ghosts
    keys = space.tabulate_dof_coordinates()[:count, :gdim]
    if element.discontinuous:
        tdim = msh.topology.dim
        cell_map = msh.topology.index_map(tdim)
        cells = np.arange(cell_map.size_local + cell_map.num_ghosts, dtype=np.int32)
        cell_of = np.empty(count, dtype=np.int32)
        cell_of[space.dofmap.list[cells].ravel()] = np.repeat(cells, space.dofmap.list.shape[1])
        midpoints = dmesh.compute_midpoints(msh, tdim, cells)[:, :gdim]
        keys = np.hstack([keys, midpoints[cell_of]])
    entries = np.arange(count)[:, None] * block + np.arange(block)
    return NodeKeys(np.ascontiguousarray(keys), entries, index_map.size_local)


def mesh_size(msh: Any) -> float:
    """The diagonal of the mesh's bounding box (all ranks)."""
    x = msh.geometry.x[:, : msh.geometry.dim]
    low, high = np.empty(x.shape[1]), np.empty(x.shape[1])
    msh.comm.Allreduce(x.min(axis=0, initial=np.inf), low, op=MPI.MIN)
    msh.comm.Allreduce(x.max(axis=0, initial=-np.inf), high, op=MPI.MAX)
    return float(np.linalg.norm(high - low)) or 1.0


class SolvedFields:
    """The checkpoint part of the solved fields: every time level of each (see the module
    docstring). Derived fields are computed from these and are not saved.

    Args:
        fields: The solved fields (not derived, not internal variables).
    """

    def __init__(self, fields: list[Any]):
        self.fields = fields
        self._keys: dict[int, NodeKeys] = {}

    def _keys_of(self, space: fem.FunctionSpace) -> NodeKeys:
        if id(space) not in self._keys:
            self._keys[id(space)] = node_keys(space)
        return self._keys[id(space)]

    def state(self) -> dict[str, Any]:
        saved: dict[str, Any] = {}
        for field in self.fields:
            levels = [field.function, *field.history]
            if field.is_global:
                values = [level.x.array[: field.space.dofmap.index_map_bs] for level in levels]
                saved[field.spec.name] = {"global": [v.tolist() for v in values]}
                continue
            keys = self._keys_of(field.space)
            entries = keys.entries[: keys.owned]
            saved[field.spec.name] = {
                "keys": keys.keys[: keys.owned],
                **{f"level{i}": level.x.array[entries] for i, level in enumerate(levels)},
            }
        return saved

    def restore(self, saved: dict[str, Any]) -> None:
        for field in self.fields:
            name = field.spec.name
            if name not in saved:
                raise CaseError("--restart", f"the checkpoint holds no field '{name}'")
            levels = [field.function, *field.history]
            mine = saved[name]
            if field.is_global:
                for level, values in zip(levels, mine["global"], strict=True):
                    level.x.array[: len(values)] = values
                continue
            rows = self._rows(field, mine["keys"])
            entries = self._keys_of(field.space).entries
            for index, level in enumerate(levels):
                level.x.array[entries] = mine[f"level{index}"][rows]

    def _rows(self, field: Any, saved_keys: np.ndarray) -> np.ndarray:
        """The saved row of each local node of ``field`` (collective).

        Raises:
            CaseError: The saved nodes are not this mesh's nodes.
        """
        space, comm = field.space, field.space.mesh.comm
        keys = self._keys_of(space)
        total = comm.allreduce(keys.owned, op=MPI.SUM)
        tolerance = RELATIVE_TOLERANCE * mesh_size(space.mesh)
        rows = np.zeros(len(keys.keys), dtype=np.int64)
        unmatched = len(keys.keys)
        if len(saved_keys):
            # imported here: SciPy's spatial module costs a run that never restarts 0.2-0.4 s
            from scipy.spatial import cKDTree

            distance, rows = cKDTree(saved_keys).query(keys.keys, distance_upper_bound=tolerance)
            unmatched = int(np.count_nonzero(~np.isfinite(distance)))
        unmatched = comm.allreduce(unmatched, op=MPI.SUM)
        if unmatched or total != len(saved_keys):
            raise CaseError(
                "--restart",
                f"the checkpoint is of another mesh: field '{field.spec.name}' has "
                f"{len(saved_keys)} saved nodes and {total} here ({unmatched} local nodes "
                f"with no saved node within {tolerance:.2g} m)",
                "restart with the mesh the checkpoint was written on (mesh.* unchanged)",
            )
        return rows
