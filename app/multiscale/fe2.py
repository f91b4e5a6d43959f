"""FE2: the stress of a macro problem from a nonlinear unit cell at every quadrature point.

A parameter written ``{ rve = "name" }`` (mechanics' ``constitutive``) names an
``[rves.<name>]`` section (app/multiscale/rve_spec.py). :func:`attach` checks every such use
against the sections before the run and registers one :class:`RVEMaterial` per section in the
field store; the plug-in's context turns it into a
:class:`~app.pointwise_law.LinearisedStress` at its group's quadrature points, which the group's
Newton refreshes before each assembly and commits or rolls back with the macro step.

An :class:`RVEMaterial` keeps a :class:`~app.multiscale.ensemble.CellEnsemble`: one
:class:`~app.multiscale.plastic_cell.PlasticCell` per macro point (points in the global order
of the pointwise law, point k on group k mod groups of :class:`~app.multiscale.batch.RVEPool`,
so a point's history is the same on any number of ranks). Every cell of a group shares the
group's mesh of the microstructure (meshed once). A solve hands each cell the increment from
its accepted macro strain; the stresses and consistent tangents come back to every rank.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from dolfinx import mesh as dmesh
from mpi4py import MPI

from app.errors import CaseError, did_you_mean, listing
from app.fields import FieldStore
from app.mesh_memory import BYTES_PER_CELL, memory_budget, simplex_cells
from app.multiscale.batch import RVEPool
from app.multiscale.ensemble import CellEnsemble
from app.multiscale.microstructure import Microstructure
from app.multiscale.plastic_cell import PlasticCell
from app.multiscale.rve_spec import HOMOGENEOUS, RVESpec
from app.parameters import RVESource
from app.pointwise_law import PointAnswers

log = logging.getLogger("scalebridge")


class RVEMaterial:
    """An ``[rves.<name>]`` section at run time: the law of every point (see the module).

    Args:
        name: The section's name.
        spec: The section.
        base_dir: The case's folder (the script's path).
        dim: The macro mesh's dimension (the cell must have it).
        comm: The macro problem's communicator.
    """

    def __init__(self, name: str, spec: RVESpec, base_dir: Path, dim: int, comm: MPI.Comm):
        self.name, self.spec, self.comm = name, spec, comm
        self.where = f"rves.{name}"
        self.micro: Microstructure | None = None
        if spec.microstructure != HOMOGENEOUS:
            self.micro = Microstructure(
                spec.microstructure, self.where, base_dir, dict(spec.parameters), []
            )
            cell_dim = self.micro.dimension(np.zeros(0), comm)
            if cell_dim != dim:
                raise CaseError(
                    f"{self.where}.microstructure",
                    f"{self.micro.path.name} builds a {cell_dim}D cell, but the macro mesh is "
                    f"{dim}D (a 2D macro problem in plane strain needs a 2D cell, a 3D one a "
                    "3D cell)",
                    f"give a {dim}D cell script",
                )
        else:  # refused before a rank builds a cell no memory can hold
            check_homogeneous_cell(dim, spec.mesh_size, f"{self.where}.mesh_size", comm)
        self.phases = spec.laws()
        self.pool: RVEPool | None = None
        self.ensemble: CellEnsemble | None = None
        self._meshes: dict[int, tuple] = {}
        self.dim = dim
        self._accepted = self._trial = np.zeros((0, 0))
        self.solves = 0  # cell solves so far
        # the largest cell Newton count and the wall time of cell solves in the step being
        # taken, rejected tries included (the time loop writes a row before it commits)
        self.iterations, self.seconds = 0, 0.0

    def describe(self) -> str:
        source = self.micro.path.name if self.micro else HOMOGENEOUS
        kinds = ", ".join(
            f"{region} {'elastic' if isinstance(law, tuple) else 'J2'}"
            for region, law in self.phases.items()
        )
        return (
            f"{self.name}: a nonlinear cell per quadrature point ({source}, {kinds}; h "
            f"{self.spec.mesh_size:g}, P{self.spec.degree}, {self.spec.ranks_per_rve} rank(s) "
            "per group)"
        )

    # PointResponse ------------------------------------------------------------------------------
    def start(self, points: int, dim: int) -> None:
        self.dim = dim
        self.pool = RVEPool(self.comm, self.spec.ranks_per_rve)
        self.ensemble = CellEnsemble(self.pool, points, self._build)
        self._accepted = np.zeros((points, self.ensemble.size))
        log.info("%s: %d cells on %d group(s)", self.where, points, self.pool.groups)

    def solve(self, strains: np.ndarray) -> PointAnswers:
        started = time.perf_counter()
        try:
            response = self.ensemble.solve(strains - self._accepted)
        finally:
            self.seconds += self.comm.allreduce(time.perf_counter() - started, op=MPI.MAX)
        self._trial = strains
        self.solves += len(strains)
        self.iterations = max(self.iterations, int(response.iterations.max()))
        zz = response.out_of_plane if strains.shape[1] == 3 else None
        return PointAnswers(response.stress, response.tangent, zz)

    def commit(self) -> None:
        self.ensemble.commit()
        self._accepted = self._trial
        self.iterations, self.seconds = 0, 0.0

    def rollback(self) -> None:
        self.ensemble.rollback()

    def free(self) -> None:
        if self.pool is not None:
            self.pool.free()

    # Cells ------------------------------------------------------------------------------------
    def _build(self, point: int, comm: MPI.Comm) -> PlasticCell:
        """The cell of a point on its group (the group's mesh made once)."""
        key = comm.py2f()
        if key not in self._meshes:
            self._meshes[key] = self._mesh(comm)
        domain, tags, regions = self._meshes[key]
        missing = sorted(set(regions) - set(self.phases))
        if missing:
            raise CaseError(
                f"{self.where}.phases",
                f"the cell has a region '{missing[0]}' without a phase",
                f"add phases.{missing[0]}",
            )
        return PlasticCell(
            domain,
            tags,
            regions,
            {region: self.phases[region] for region in regions},
            self.spec.degree,
            self.spec.tolerance,
            self.spec.max_iterations,
        )

    def _mesh(self, comm: MPI.Comm) -> tuple:
        if self.micro is not None:
            return self.micro.mesh(np.zeros(0), self.spec.mesh_size, self.spec.degree, comm)
        return homogeneous_cell(self.dim, self.spec.mesh_size, comm)


def homogeneous_cell(dim: int, size: float, comm: MPI.Comm) -> tuple:
    """A periodic unit square or cube of one region, ``matrix``: (mesh, tags, regions)."""
    n = _divisions(size)
    if dim == 2:
        domain = dmesh.create_unit_square(comm, n, n)
    else:
        domain = dmesh.create_unit_cube(comm, n, n, n)
    tdim = domain.topology.dim
    cells = np.arange(domain.topology.index_map(tdim).size_local, dtype=np.int32)
    tags = dmesh.meshtags(domain, tdim, cells, np.ones_like(cells))
    return domain, tags, {"matrix": 1}


def check_homogeneous_cell(dim: int, size: float, where: str, comm: MPI.Comm) -> None:
    """Refuse a cell of ``size`` whose built-in mesh no node can hold (rank 0 of a group
    creates it whole). Collective; the same verdict on every rank.

    Raises:
        CaseError: At ``where``, with the memory the cell needs and the memory there is.
    """
    cell_type = "triangle" if dim == 2 else "tetrahedron"
    cells = simplex_cells([_divisions(size)] * dim, cell_type)
    what = f"mesh_size = {size:g} makes {cells:.2g} {cell_type} cells of the {dim}D unit cell"
    budget = memory_budget(comm)
    budget.check(cells, BYTES_PER_CELL[cell_type], where, what, "give a larger one")


def _divisions(size: float) -> int:
    return max(1, math.ceil(1 / size))


def attach(
    sections: Mapping[str, RVESpec],
    uses: list[tuple[str, RVESource]],
    store: FieldStore,
    base_dir: Path,
    comm: MPI.Comm,
) -> dict[str, RVEMaterial]:
    """Check every ``{ rve = ... }`` of the plug-ins (``uses``: case path and value) against
    the ``[rves]`` sections and register the laws they read in ``store.point_laws``.

    Raises:
        CaseError: An unknown name, a section read twice, or a problem with a section.
    """
    users: dict[str, str] = {}
    for where, source in uses:
        name = source.rve
        if name not in sections:
            raise CaseError(
                where,
                f"unknown rve '{name}'{did_you_mean(name, sections)}; rves: {listing(sections)}",
                f"define it in an [rves.{name}] section",
            )
        if name in users:
            raise CaseError(
                where,
                f"rve '{name}' is already the law of {users[name]}; its cells keep the history "
                "of one macro problem",
                "give each use its own [rves.<name>] section",
            )
        users[name] = where
    dim = store.mesh.geometry.dim
    materials = {
        name: RVEMaterial(name, sections[name], base_dir, dim, comm) for name in sorted(users)
    }
    store.point_laws.update(materials)
    for name in sorted(set(sections) - set(users)):
        log.warning("rves.%s: no parameter of the case reads it", name)
    return materials
