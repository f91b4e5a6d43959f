"""Mesh phase: building a box against reading it from the mesh cache, and what bounds the read.

Builds the mesh of a ``[mesh]`` box section (``build_mesh``, no cache) ``--repeats`` times,
then stores it in a mesh cache and reads it back ``--repeats`` times, in one process per rank
count (the JIT and the file system warm alike for both). For each read it also times
``Topology.create_connectivity``: the cache restores the cells, the geometry and the index maps
as the run that built them held them, and its boundaries as (cell, local facet) pairs
(app/facet_tags.py), so a read creates no facets (``facetless``: none existed after any read);
they are created when something needs their numbers, here only after the timed reads, to check
that the tags are those of the built mesh.

    .venv/bin/python benchmarks/mesh_cache.py --cells 60                     # 1.3M cells
    .venv/bin/mpirun -n 2 .venv/bin/python benchmarks/mesh_cache.py --cells 60
    .venv/bin/python benchmarks/mesh_cache.py --cells 99                     # heat_3d.toml's

Prints one JSON record on rank 0 (the slowest rank's times, medians over the repeats).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from mpi4py import MPI

import app  # noqa: F401  (dolfinx_solver before dolfinx)
from app.mesh_spec import MeshSpec
from app.meshing import build_mesh

CONNECTIVITY: list[float] = []  # seconds of each create_connectivity call while reading


def _timed_connectivity(original):
    def create_connectivity(self, dim0: int, dim1: int) -> None:
        started = time.perf_counter()
        try:
            original(self, dim0, dim1)
        finally:
            CONNECTIVITY.append(time.perf_counter() - started)

    return create_connectivity


def slowest(comm: MPI.Comm, seconds: float) -> float:
    return comm.allreduce(seconds, op=MPI.MAX)


def _facetless(data) -> bool:
    topology = data.mesh.topology
    try:
        topology.index_map(topology.dim - 1)
    except RuntimeError:  # "Missing IndexMap in Topology"
        return True
    return False


def measure(cells: int, repeats: int, folder: Path, comm: MPI.Comm) -> dict:
    section = {"type": "box", "length": [1, 1, 1], "cells": [cells] * 3, "cell": "tetrahedron"}
    built, read, facets, facetless = [], [], [], True
    for _ in range(repeats):
        comm.Barrier()
        started = time.perf_counter()
        reference = build_mesh(MeshSpec.model_validate(section | {"cache": False}), comm, folder)
        built.append(slowest(comm, time.perf_counter() - started))
    cached = MeshSpec.model_validate(section | {"cache": str(folder / "meshes")})
    build_mesh(cached, comm, folder)  # writes the entry
    from dolfinx.mesh import Topology  # after app (see above)

    original = Topology.create_connectivity
    Topology.create_connectivity = _timed_connectivity(original)
    try:
        for _ in range(repeats):
            CONNECTIVITY.clear()
            comm.Barrier()
            started = time.perf_counter()
            restored = build_mesh(cached, comm, folder)
            read.append(slowest(comm, time.perf_counter() - started))
            facets.append(slowest(comm, sum(CONNECTIVITY)))
            facetless &= _facetless(restored)
    finally:
        Topology.create_connectivity = original
    same = all(
        (restored_tags.indices == built_tags.indices).all()
        and (restored_tags.values == built_tags.values).all()
        for restored_tags, built_tags in (
            (restored.cell_tags, reference.cell_tags),
            (restored.facet_tags, reference.facet_tags),
        )
    )
    build_s, read_s, facets_s = map(statistics.median, (built, read, facets))
    return {
        "cells": 6 * cells**3,
        "ranks": comm.size,
        "repeats": repeats,
        "build_s": build_s,
        "read_s": read_s,
        "read_connectivity_s": facets_s,
        "ratio": build_s / read_s,
        "facetless": bool(comm.allreduce(facetless, op=MPI.LAND)),
        "same_tags": bool(comm.allreduce(same, op=MPI.LAND)),
        "all_s": {"build": built, "read": read, "read_connectivity": facets},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=60, help="cells per direction (x6 tets)")
    parser.add_argument("--repeats", type=int, default=3, help="builds and reads (medians)")
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    folder = Path(comm.bcast(tempfile.mkdtemp(prefix="mesh_cache_") if comm.rank == 0 else None))
    try:
        record = measure(args.cells, args.repeats, folder, comm)
    finally:
        comm.Barrier()
        if comm.rank == 0:
            shutil.rmtree(folder, ignore_errors=True)
    if comm.rank == 0:
        print(json.dumps(record))
    return 0 if record["same_tags"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
