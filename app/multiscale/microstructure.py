"""A surrogate's microstructure: its gmsh script, loaded once, meshing unit cells on demand.

The script (meshes/rve_*.py) defines ``build(model, volume_fraction, ...)`` and may define
``limits(...)`` (the admissible range of each argument it knows, for the fixed ones given) and
``depolarisation(...)`` (the inclusion's shape factors, for the exact dilute limit). gmsh runs on
the first rank of the communicator that solves a cell; a failure there reaches every rank of it
as the same :class:`~app.errors.CaseError`.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import pathlib
from typing import Any

import gmsh
import numpy as np
from dolfinx import mesh as dmesh
from dolfinx.io import gmsh as dgmsh
from mpi4py import MPI

from app.errors import CaseError
from app.mesh_memory import GMSH_BYTES_PER_CELL, GMSH_CELLS_PER_SIZE, memory_budget
from app.meshing_gmsh import check_arguments, find_file, load_script, physical_groups
from app.multiscale.spec import FRACTION

REGIONS = ("matrix", "inclusion")


class Microstructure:
    """The cell script of ``[surrogates.<name>]``.

    Args:
        script: The script's path as the case gives it.
        where: The section's case path (``surrogates.<name>``).
        base_dir: The case's folder (relative script paths).
        fixed: The fixed arguments of build().
        descriptors: The arguments of build() that make a state, in order.
    """

    def __init__(
        self,
        script: str,
        where: str,
        base_dir: pathlib.Path,
        fixed: dict[str, Any],
        descriptors: list[str],
    ):
        self.where = where
        self.path = find_file(script, base_dir, f"{where}.microstructure")
        if self.path.suffix.lower() != ".py":
            raise CaseError(
                f"{where}.microstructure",
                f"'{script}' is not a .py script",
                "give a gmsh Python script with build(model, volume_fraction, ...)",
            )
        self.module = load_script(self.path, f"{where}.microstructure")
        self.fixed, self.descriptors = fixed, descriptors
        sample = {name: 0.0 for name in self.descriptors}
        check_arguments(self.module.build, self.fixed | sample, f"{where}.descriptors")
        self.digest = hashlib.sha256(self.path.read_bytes()).hexdigest()

    def arguments(self, state: np.ndarray) -> dict[str, Any]:
        """build()'s arguments for a state (descriptor values in order)."""
        return self.fixed | {
            name: float(v) for name, v in zip(self.descriptors, state, strict=True)
        }

    def limits(self, given: dict[str, list[float]]) -> np.ndarray:
        """Admissible (low, high) per descriptor: the case's ``limits``, else the script's
        ``limits()`` (the volume fraction's upper limit is the smallest over the ranges of the
        other descriptors), else an error naming the descriptor."""
        ranges = []
        for name in self.descriptors:
            if name in given:
                ranges.append(given[name])
            elif name == FRACTION:
                ranges.append(self._script_fraction_range(given))
            else:
                raise CaseError(
                    f"{self.where}.limits",
                    f"no admissible range for the descriptor '{name}'",
                    f"give limits.{name} = [low, high]",
                )
        return np.array(ranges, float)

    def _script_fraction_range(self, given: dict[str, list[float]]) -> list[float]:
        function = getattr(self.module, "limits", None)
        if function is None:
            raise CaseError(
                f"{self.where}.limits",
                f"{self.path.name} has no limits() and the case gives no limits.{FRACTION}",
                f"give limits.{FRACTION} = [0, highest fraction the script meshes]",
            )
        others = [name for name in self.descriptors if name != FRACTION and name in given]
        grids = [np.linspace(*given[name], 5) for name in others]
        low, high = 0.0, np.inf
        for values in itertools.product(*grids):
            state = self.fixed | dict(zip(others, map(float, values), strict=True))
            window = _call(function, state, f"{self.where}.microstructure").get(FRACTION)
            if window is None:
                raise CaseError(
                    f"{self.where}.limits", f"limits() of {self.path.name} has no '{FRACTION}'"
                )
            low, high = max(low, float(window[0])), min(high, float(window[1]))
        return [low, high]

    def depolarisation(self, dim: int) -> tuple[list[float], float] | None:
        """The inclusion's depolarisation factors and turning angle, if the script says."""
        function = getattr(self.module, "depolarisation", None)
        if function is None:
            return None
        factors, angle = _call(function, self.fixed, f"{self.where}.microstructure")
        if len(factors) < dim:
            return None
        return [float(f) for f in factors[:dim]], float(angle)

    def mesh(self, state: np.ndarray, size: float, order: int, comm: MPI.Comm) -> tuple:
        """Mesh the cell of a state on ``comm``: (mesh, cell tags, {region: tag})."""
        arguments = self.arguments(state)
        outcome: tuple = ()
        try:
            if comm.rank == 0:
                gmsh.initialize(readConfigFiles=False, interruptible=False)
                gmsh.option.setNumber("General.Terminal", 0)
                try:
                    outcome = ("ok", self._generate(arguments, size, order))
                except CaseError as exc:
                    outcome = ("error", (exc.path, exc.problem, exc.fix))
                except Exception as exc:  # gmsh and user code raise anything
                    problem = f"{self.path.name} failed at {arguments}: {type(exc).__name__}: {exc}"
                    outcome = ("error", (f"{self.where}.microstructure", problem, None))
            status, payload = comm.bcast(outcome, root=0)
            if status == "error":
                raise CaseError(*payload)
            dim, regions = payload
            partitioner = dmesh.create_cell_partitioner(dmesh.GhostMode.none, 2)
            data = dgmsh.model_to_mesh(gmsh.model, comm, 0, gdim=dim, partitioner=partitioner)
        finally:
            if comm.rank == 0 and gmsh.isInitialized():
                gmsh.finalize()
        return data.mesh, data.cell_tags, regions

    def dimension(self, state: np.ndarray, comm: MPI.Comm) -> int:
        """The cell's dimension, from running build() once on the first rank (no meshing)."""
        outcome: tuple = ()
        if comm.rank == 0:
            gmsh.initialize(readConfigFiles=False, interruptible=False)
            gmsh.option.setNumber("General.Terminal", 0)
            try:
                self.module.build(gmsh.model, **self.arguments(state))
                outcome = ("ok", gmsh.model.getDimension())
            except Exception as exc:  # user code may raise anything
                problem = (
                    f"build() of {self.path.name} raised {type(exc).__name__}: {exc} at "
                    f"{self.arguments(state)}"
                )
                outcome = ("error", problem)
            finally:
                gmsh.finalize()
        status, payload = comm.bcast(outcome, root=0)
        if status == "error":
            raise CaseError(f"{self.where}.microstructure", payload)
        if payload not in (2, 3):
            raise CaseError(
                f"{self.where}.microstructure",
                f"{self.path.name} builds a {payload}D cell; a unit cell is 2D or 3D",
            )
        return payload

    def _generate(self, arguments: dict[str, Any], size: float, order: int) -> tuple:
        self.module.build(gmsh.model, **arguments)
        dim = gmsh.model.getDimension()
        # rank 0 meshes the whole cell (edge 1): refused before gmsh fills its memory
        cells = GMSH_CELLS_PER_SIZE.get(dim, 4.5) / size ** max(dim, 1)
        what = f"mesh_size = {size:g} makes about {cells:.2g} cells of the {dim}D unit cell"
        budget = memory_budget(MPI.COMM_SELF)
        bytes_per_cell = GMSH_BYTES_PER_CELL.get((dim, min(order, 2)), 1600)
        budget.check(cells, bytes_per_cell, f"{self.where}.mesh_size", what, "give a larger one")
        gmsh.option.setNumber("Mesh.CharacteristicLengthMax", size)
        gmsh.model.mesh.generate(dim)
        if order > 1:
            gmsh.model.mesh.setOrder(order)
        groups = physical_groups(self.path.name, dim, f"{self.where}.microstructure")
        regions = {name: tag for d, tag, name in groups if d == dim}
        unknown = sorted(set(regions) - set(REGIONS))
        if unknown:
            raise CaseError(
                f"{self.where}.microstructure",
                f"{self.path.name} names regions {unknown}; a two-phase cell has 'matrix' and "
                "'inclusion'",
            )
        return dim, regions


def _call(function: Any, arguments: dict[str, Any], where: str) -> Any:
    """Call a script's helper with the arguments it takes."""
    accepted = inspect.signature(function).parameters
    try:
        return function(**{k: v for k, v in arguments.items() if k in accepted})
    except Exception as exc:  # user code may raise anything
        raise CaseError(
            where, f"{function.__name__}() raised {type(exc).__name__}: {exc}"
        ) from None
