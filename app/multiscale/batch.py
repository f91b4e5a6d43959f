"""RVE solves in parallel: batches of cells shared out over sub-communicators.

``COMM_WORLD.Split(rank // ranks_per_rve)`` makes groups of ranks; each group meshes and solves
its share of a batch (round-robin) on its own communicator, and the results are gathered to
every rank. Failures travel with the results, so every rank raises the same error instead of
some ranks waiting in a collective call forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from mpi4py import MPI

from app.errors import CaseError, SolverError
from app.multiscale.materials import Conduction, Elasticity
from app.multiscale.microstructure import Microstructure
from app.multiscale.rve import CellProblem


@dataclass(frozen=True)
class CellResult:
    """One solved cell: the effective tensor (d x d, or Mandel) and the wall time it took."""

    tensor: np.ndarray
    seconds: float


class RVEPool:
    """Groups of ``ranks_per_rve`` ranks of ``comm`` that solve cells side by side."""

    def __init__(self, comm: MPI.Comm, ranks_per_rve: int = 1):
        self.comm = comm
        size = min(ranks_per_rve, comm.size)
        self.color = comm.rank // size
        self.groups = -(-comm.size // size)
        self.group = comm.Split(self.color, comm.rank)

    def map(self, task: Callable[[Any, MPI.Comm], Any], items: Sequence[Any]) -> list[Any]:
        """``task(item, group communicator)`` for every item, on the group the item falls to;
        the results in item order, on every rank."""
        outcomes = {}
        for index in range(self.color, len(items), self.groups):
            try:
                outcomes[index] = ("ok", task(items[index], self.group))
            except CaseError as exc:
                outcomes[index] = ("case", (exc.path, exc.problem, exc.fix))
            except Exception as exc:  # a failed solve must reach the other groups too
                outcomes[index] = ("solver", f"{type(exc).__name__}: {exc}")
        gathered: dict[int, tuple] = {}
        for part in self.comm.allgather(outcomes if self.group.rank == 0 else {}):
            gathered.update(part)
        for index in sorted(gathered):
            status, payload = gathered[index]
            if status == "case":
                raise CaseError(*payload)
            if status == "solver":
                raise SolverError(f"an RVE solve failed: {payload}")
        return [gathered[index][1] for index in range(len(items))]

    def free(self) -> None:
        self.group.Free()


def material_of(kind: str, matrix: np.ndarray, inclusion: np.ndarray) -> Conduction | Elasticity:
    """The phases as a cell problem needs them."""
    if kind == "conductivity":
        return Conduction({"matrix": float(matrix[0]), "inclusion": float(inclusion[0])})
    return Elasticity(
        {"matrix": tuple(map(float, matrix)), "inclusion": tuple(map(float, inclusion))}
    )


def homogenise(
    microstructure: Microstructure,
    material: Conduction | Elasticity,
    state: np.ndarray,
    settings: Any,
    comm: MPI.Comm,
) -> CellResult:
    """Mesh and solve the cell of one state on ``comm``.

    Args:
        settings: The surrogate section (mesh_size, degree, boundary).
    """
    started = time.perf_counter()
    domain, cell_tags, regions = microstructure.mesh(
        state, settings.mesh_size, settings.degree, comm
    )
    where = f"{microstructure.where}.inclusion"
    for region in regions:
        if not material.positive(region):
            raise CaseError(
                where,
                f"the cell meshes the '{region}' region but its property is 0 (a pore)",
                "leave pores out of the mesh (rve_inclusion.py: porous = true) or give the phase "
                "a positive property",
            )
    if "inclusion" not in regions and material.positive("inclusion"):
        fraction = microstructure.arguments(state).get("volume_fraction", 0.0)
        if fraction > 0:
            raise CaseError(
                where,
                f"the cell has no inclusion region at volume fraction {fraction:g}, so it holds "
                "pores, but the inclusion's property is not 0",
                "give inclusion = 0 for pores",
            )
    problem = CellProblem(domain, cell_tags, regions, material, settings.degree)
    tensor = problem.solve(settings.boundary)
    return CellResult(tensor, time.perf_counter() - started)
