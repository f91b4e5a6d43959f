"""A cache of partitioned meshes with their named entities: a series of runs builds its mesh once.

``[mesh] cache = "folder"`` (relative to the case file), or the environment variable
``SCALEBRIDGE_MESH_CACHE`` for every case that does not say ``cache = false``, keeps each mesh
a case builds, keyed by what determines it: the ``[mesh]`` section (conditions, refinement and
all), the content of its mesh file, the gmsh and DOLFINx versions. A study, a series of runs or
a restart then builds a mesh once; a large gmsh mesh is meshed on rank 0 once and read in
parallel afterwards. An entry ``<folder>/<key>/`` holds

* ``mesh.xdmf`` (+ ``.h5``): the mesh and its tags, written with parallel HDF5 and read on any
  number of ranks (DOLFINx partitions what it reads);
* ``names.json``: the names of the regions, boundaries, point and edge sets, with their sizes;
* ``ranks_<N>/rank_<r>.npz``: the mesh of a run on N ranks as that run held it (index maps,
  cells, geometry, tags by local number; the facet tags as (cell, local facet) pairs,
  :mod:`app.facet_tags`). A run on N ranks rebuilds exactly that mesh from it, without
  partitioning, reordering or deriving its topology again: the same numbering, so the same
  results, as the run that built it. It does not even create the facets, which cost most of a
  read: whatever needs facet numbers creates them on first use. A run on another number of
  ranks reads the XDMF file and adds its own partition to the entry.

Writing is all or nothing: an entry (or a partition) is written to a temporary folder and
renamed into place, so runs that build the same mesh at the same time, or a run killed while
writing, leave either a complete entry or none. A folder that cannot be written only costs the
cache (the run goes on and says so in its log); so does an entry damaged afterwards (a file cut
short, edited or copied from another entry): it is removed and written anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import basix.ufl
import dolfinx
import numpy as np
import ufl
from dolfinx import cpp, fem, io
from dolfinx import mesh as dmesh

from app import facetless_forms
from app.facet_tags import SAVED_ARRAYS, FacetTags

log = logging.getLogger("scalebridge")

ENVIRONMENT = "SCALEBRIDGE_MESH_CACHE"
FORMAT = "scalebridge-mesh-cache-2"
_INDEX_MAP = ("size", "ghosts", "owners")
_INDEX_MAP_TAG = 1202  # DOLFINx's default tag for building an index map's neighbourhoods
_TAGS = {"cell_tags": "cells", "facet_tags": "facets", "point_tags": "vertices", "edge_tags": 1}
#: The arrays of every rank's file (:func:`_save`), besides the tags.
_SAVED = {
    "cell_type",
    "degree",
    "variant",
    "gdim",
    "cells",
    "original_cell_index",
    "dofmap",
    "x",
    "input_global_indices",
    *(f"{prefix}_{name}" for prefix in ("vertex", "cell", "node") for name in _INDEX_MAP),
    *SAVED_ARRAYS,
}
# What reading a damaged entry raises: files cut short or edited (zip CRCs, JSON, HDF5 in
# DOLFINx, a RuntimeError), or written by something else (missing keys, other shapes).
_DAMAGED = (OSError, EOFError, ValueError, KeyError, TypeError, RuntimeError, zipfile.BadZipFile)


def cache_folder(setting: str | bool | None, base_dir: Path) -> Path | None:
    """The folder a case's meshes are cached in, or None: ``[mesh] cache`` (a folder relative
    to the case file, or false), else the environment variable."""
    if setting is False:
        return None
    if isinstance(setting, str):
        return (base_dir / Path(setting).expanduser()).resolve()
    given = os.environ.get(ENVIRONMENT)
    return Path(given).expanduser().resolve() if given else None


def cache_key(section: dict[str, Any], source: Path | None) -> str:
    """What determines a mesh: the mesh section, its file's bytes and the versions that mesh
    (gmsh) and number (DOLFINx) it."""
    import gmsh  # here: loading its library costs every run, and only a cached mesh needs it

    digest = hashlib.sha256()
    for part in (FORMAT, dolfinx.__version__, gmsh.__version__):
        digest.update(part.encode())
    digest.update(json.dumps(section, sort_keys=True).encode())
    if source is not None:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:32]


class MeshCache:
    """One cache entry (collective: every rank of ``comm`` makes the same calls).

    Args:
        folder: The cache folder.
        key: The entry's key (:func:`cache_key`).
        comm: The communicator the mesh lives on.
    """

    def __init__(self, folder: Path, key: str, comm: Any):
        self.entry = folder / key
        self.comm = comm

    @property
    def _partition(self) -> Path:
        return self.entry / f"ranks_{self.comm.size}"

    def load(
        self, names_required: Iterable[str] = ()
    ) -> tuple[dmesh.Mesh, dict[str, dmesh.MeshTags | None], FacetTags, dict] | None:
        """The cached mesh, its tags (by name, but the facets'), its facet tags and its names
        (an object with at least ``names_required``); None when there is no entry, or when it
        is damaged (cut short, edited, copied from elsewhere): then it is removed, with a
        warning, for the run to build the mesh and write it again. Collective.

        Every rank reads its files before any collective step: a rank whose file failed
        while the others went on into DOLFINx's collective calls would hang the run.
        """
        names = self.entry / "names.json"
        present = self.comm.bcast(names.is_file() if self.comm.rank == 0 else None, root=0)
        if not present:
            return None
        described = self._read(lambda: _names(names, {"edged", *names_required}))
        if described is None:
            return None
        partition = self._partition
        if self.comm.bcast(partition.is_dir() if self.comm.rank == 0 else None, root=0):
            arrays = self._read(lambda: _arrays(partition / f"rank_{self.comm.rank}.npz"))
            if arrays is None:
                return None
            restored = _restore(arrays, self.comm)
            if restored is not None:
                return (*restored, described)
            log.warning("mesh cache: %s does not fit, reading the XDMF file instead", partition)
        read = self._read(lambda: self._read_xdmf(described))
        if read is None:
            return None
        msh, tags = read
        facets = FacetTags.from_meshtags(msh, tags.pop("facet_tags"))
        self._publish(self._partition, lambda folder: _save(msh, tags, facets, folder, self.comm))
        return msh, tags, facets, described

    def _read(self, read: Callable[[], Any]) -> Any:
        """``read()`` on every rank, or None on every rank when it failed on any (the entry is
        then removed)."""
        problem = None
        try:
            value = read()
        except _DAMAGED as exc:
            problem = f"{type(exc).__name__}: {exc}"
        problems = [found for found in self.comm.allgather(problem) if found]
        if not problems:
            return value
        log.warning(
            "mesh cache: the entry %s is damaged (%s); building the mesh again",
            self.entry,
            problems[0],
        )
        if self.comm.rank == 0:
            shutil.rmtree(self.entry, ignore_errors=True)
        self.comm.Barrier()
        return None

    def store(
        self,
        msh: dmesh.Mesh,
        tags: dict[str, dmesh.MeshTags | None],
        facets: FacetTags,
        names: dict,
    ) -> None:
        """Write the entry: XDMF (``tags`` with the facets' by number), names and this run's
        partition."""

        def write(folder: Path) -> None:
            with io.XDMFFile(self.comm, str(folder / "mesh.xdmf"), "w") as stream:
                stream.write_mesh(msh)
                for name, entity_tags in tags.items():
                    if entity_tags is not None:
                        msh.topology.create_connectivity(entity_tags.dim, 0)
                        msh.topology.create_connectivity(entity_tags.dim, msh.topology.dim)
                        entity_tags.name = name
                        stream.write_meshtags(entity_tags, msh.geometry)
            if self.comm.rank == 0:
                (folder / "names.json").write_text(json.dumps(names, indent=1))
            partition = folder / f"ranks_{self.comm.size}"
            if self.comm.rank == 0:
                partition.mkdir()
            self.comm.Barrier()
            others = {
                name: entity_tags for name, entity_tags in tags.items() if name != "facet_tags"
            }
            _save(msh, others, facets, partition, self.comm)

        self._publish(self.entry, write)

    def _read_xdmf(self, described: dict) -> tuple[dmesh.Mesh, dict[str, dmesh.MeshTags | None]]:
        with io.XDMFFile(self.comm, str(self.entry / "mesh.xdmf"), "r") as stream:
            msh = stream.read_mesh(ghost_mode=dmesh.GhostMode.shared_facet, name="mesh")
            tdim = msh.topology.dim
            tags: dict[str, dmesh.MeshTags | None] = {}
            for name, dim in (("cell_tags", tdim), ("facet_tags", tdim - 1), ("point_tags", 0)):
                msh.topology.create_connectivity(dim, tdim)
                tags[name] = stream.read_meshtags(msh, name=name)
            tags["edge_tags"] = None
            if described["edged"]:
                msh.topology.create_connectivity(1, tdim)
                tags["edge_tags"] = stream.read_meshtags(msh, name="edge_tags")
        return msh, tags

    def _publish(self, target: Path, write) -> None:
        """Write into a temporary folder beside ``target``, then rename it into place; a failure
        to write (on any rank) leaves no entry and only a warning."""
        temporary = target.with_name(f"{target.name}.tmp-{self._token()}")
        failed = None
        if self.comm.rank == 0:
            try:
                temporary.mkdir(parents=True)
            except OSError as exc:
                failed = f"cannot write {temporary.parent}: {exc.strerror}"
        failed = self.comm.bcast(failed, root=0)
        if failed is None:
            try:
                write(temporary)
            except (OSError, RuntimeError) as exc:  # an HDF5 failure is a RuntimeError
                failed = str(exc)
            failed = next((f for f in self.comm.allgather(failed) if f), None)
        if self.comm.rank == 0:
            if failed is None:
                try:
                    temporary.rename(target)
                except OSError:  # another run published it first: theirs is as good
                    shutil.rmtree(temporary, ignore_errors=True)
            else:
                shutil.rmtree(temporary, ignore_errors=True)
        self.comm.Barrier()
        if failed is not None:
            log.warning("mesh cache not written (%s)", failed)

    def _token(self) -> str:
        return self.comm.bcast(uuid.uuid4().hex if self.comm.rank == 0 else None, root=0)


def _index_map(index_map: Any) -> dict[str, np.ndarray]:
    """The arrays of an index map (:data:`_INDEX_MAP`)."""
    return {
        "size": np.array(index_map.size_local),
        "ghosts": np.asarray(index_map.ghosts, dtype=np.int64),
        "owners": np.asarray(index_map.owners, dtype=np.int32),
    }


def _save(
    msh: dmesh.Mesh,
    tags: dict[str, dmesh.MeshTags | None],
    facets: FacetTags,
    folder: Path,
    comm: Any,
) -> None:
    """This rank's part of the mesh, as it holds it, into ``folder/rank_<r>.npz``."""
    topology, geometry = msh.topology, msh.geometry
    tdim = topology.dim
    cmap = geometry.cmaps[0]
    arrays: dict[str, np.ndarray] = {
        "cell_type": np.array(topology.cell_type.value),
        "degree": np.array(cmap.degree),
        "variant": np.array(int(cmap.variant)),
        "gdim": np.array(geometry.dim),
        "cells": topology.connectivity(tdim, 0).array,
        "original_cell_index": np.asarray(topology.original_cell_index, dtype=np.int64),
        "dofmap": geometry.dofmaps(0) if callable(geometry.dofmaps) else geometry.dofmaps[0],
        "x": geometry.x,
        "input_global_indices": np.asarray(geometry.input_global_indices, dtype=np.int64),
        **facets.arrays(),
    }
    for prefix, index_map in (
        ("vertex", topology.index_map(0)),
        ("cell", topology.index_map(tdim)),
        ("node", geometry.index_map()),
    ):
        for name, values in _index_map(index_map).items():
            arrays[f"{prefix}_{name}"] = values
    for name, entity_tags in tags.items():
        if entity_tags is None:
            continue
        arrays[f"{name}_indices"] = entity_tags.indices
        arrays[f"{name}_values"] = entity_tags.values
        if 0 < entity_tags.dim < tdim:  # entities numbered when created: checked on restore
            topology.create_connectivity(entity_tags.dim, 0)
            vertices = topology.connectivity(entity_tags.dim, 0)
            arrays[f"{name}_vertices"] = _links(vertices, entity_tags.indices)
    np.savez(folder / f"rank_{comm.rank}.npz", **arrays)


def _links(adjacency: Any, rows: np.ndarray) -> np.ndarray:
    """Rows of a fixed-width adjacency list (entity -> vertices)."""
    width = adjacency.offsets[1] - adjacency.offsets[0] if len(adjacency.offsets) > 1 else 0
    return adjacency.array.reshape(-1, width)[rows] if width else np.empty((0, 0))


def _names(path: Path, required: set[str]) -> dict[str, Any]:
    """An entry's ``names.json``: an object with the ``required`` names."""
    described = json.loads(path.read_text())
    if not isinstance(described, dict) or not required <= described.keys():
        raise ValueError(f"'{path}' is not an object with {', '.join(sorted(required))}")
    return described


def _arrays(path: Path) -> dict[str, np.ndarray]:
    """A rank's arrays, every one read (a cut-short or altered file fails its CRC here)."""
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    missing = _SAVED - arrays.keys()
    if missing:
        raise KeyError(f"'{path}' has no {', '.join(sorted(missing))}")
    return arrays


def _restore(data: dict[str, np.ndarray], comm: Any) -> tuple[dmesh.Mesh, dict, FacetTags] | None:
    """The mesh a rank held, rebuilt from its arrays (:func:`_arrays`), without facets; None
    (on every rank) when an edge created again is not numbered as it was."""
    facetless_forms.install()  # this mesh has no facets: forms must not need them
    cell_type = dmesh.CellType(int(data["cell_type"]))
    maps = {
        prefix: cpp.common.IndexMap(
            comm,
            int(data[f"{prefix}_size"]),
            data[f"{prefix}_ghosts"],
            data[f"{prefix}_owners"],
            _INDEX_MAP_TAG,
        )
        for prefix in ("vertex", "cell", "node")
    }
    vertices_per_cell = cpp.mesh.cell_num_vertices(cell_type)
    cells = cpp.graph.AdjacencyList_int32(data["cells"].reshape(-1, vertices_per_cell))
    topology = cpp.mesh.Topology(
        cell_type, maps["vertex"], maps["cell"], cells, data["original_cell_index"]
    )
    degree, variant, gdim = int(data["degree"]), int(data["variant"]), int(data["gdim"])
    cmap = fem.coordinate_element(cell_type, degree, variant)
    geometry = cpp.mesh.Geometry_float64(
        maps["node"],
        data["dofmap"],
        cmap._cpp_object,
        np.ascontiguousarray(data["x"][:, :gdim]),  # the geometric dimension is x's width
        data["input_global_indices"],
    )
    element = basix.ufl.element(
        "Lagrange",
        cell_type.name,
        degree,
        lagrange_variant=basix.LagrangeVariant(variant),
        shape=(gdim,),
        dtype=np.float64,
    )
    msh = dmesh.Mesh(cpp.mesh.Mesh_float64(comm, topology, geometry), ufl.Mesh(element))
    tdim = msh.topology.dim
    tags: dict[str, dmesh.MeshTags | None] = {}
    numbered = True
    for name, dim in (("cell_tags", tdim), ("point_tags", 0), ("edge_tags", 1)):
        if f"{name}_indices" not in data:
            tags[name] = None
            continue
        indices, values = data[f"{name}_indices"], data[f"{name}_values"]
        if 0 < dim < tdim:
            msh.topology.create_connectivity(dim, tdim)
        if f"{name}_vertices" in data:
            vertices = _links(msh.topology.connectivity(dim, 0), indices)
            numbered &= vertices.shape == data[f"{name}_vertices"].shape and bool(
                np.array_equal(vertices, data[f"{name}_vertices"])
            )
        tags[name] = dmesh.meshtags(msh, dim, indices, values)
        tags[name].name = name
    if not comm.allreduce(numbered, op=_and()):
        return None
    return msh, tags, FacetTags.from_arrays(msh, data)


def _and():
    from mpi4py import MPI

    return MPI.LAND
