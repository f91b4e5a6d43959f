"""Run folders: the resolved case, provenance, fields for ParaView, quantities.csv and a log.

A run folder is never half-passed-off: ``provenance.json`` says ``"status": "running"`` from the
first moment, and only a run that reached its end time says ``"completed"``; a failed run says
``"failed"`` with the reason. An existing folder is replaced only with ``overwrite=True``, and
only if it is a run folder (it holds ``provenance.json``), so a mistyped ``-o`` never deletes
unrelated data.

Fields go to one XDMF file per mesh (``fields.xdmf``, ``fields_<mesh>.xdmf``), optionally also
to VTX (``.bp``), and ``view.py`` beside them opens them in ParaView. ``scalebridge plot``
(:mod:`app.plotting`) reads the folder back.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import basix
import numpy as np
import tomli_w
import ufl
from dolfinx import fem, io, la

from app import __version__
from app.errors import CaseError
from app.fields import owned_size
from app.pointwise import CellMean, cell_mean_space, is_pointwise, quadrature_degree
from app.units import unit_suffix

log = logging.getLogger("scalebridge")

PROVENANCE = "provenance.json"
FIELDS = "fields.json"
VIEW_SCRIPT = Path(__file__).with_name("paraview_view.py")


def column(name: str, units: str) -> str:
    """CSV column of a quantity: ``heat_flow_left`` in ``W/m`` -> ``heat_flow_left_W_per_m``."""
    suffix = unit_suffix(units)
    return f"{name}_{suffix}" if suffix else name


class RunDirectory:
    """The folder of one run (all ranks construct it; rank 0 writes the small files)."""

    def __init__(self, path: str | Path, comm: Any, overwrite: bool = False):
        self.path = Path(path).resolve()
        self.comm = comm
        problem = None
        if comm.rank == 0:
            problem = self._prepare(overwrite)
        problem = comm.bcast(problem, root=0)
        if problem:
            raise CaseError("--output", *problem)
        self._started = time.perf_counter()
        self._provenance: dict[str, Any] = {}
        self._log_handler: logging.Handler | None = None

    def _prepare(self, overwrite: bool) -> tuple[str, str] | None:
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            if not overwrite:
                return (
                    f"output folder '{self.path}' already exists",
                    "pass --overwrite to replace it, or choose another folder with -o",
                )
            if not (self.path / PROVENANCE).is_file():
                return (
                    f"'{self.path}' exists and is not a ScaleBridge run folder (no {PROVENANCE}); "
                    "refusing to overwrite it",
                    "choose another folder with -o",
                )
            shutil.rmtree(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create '{self.path}': {exc.strerror}", "choose another folder with -o"
        return None

    def write_case(self, resolved: dict[str, Any]) -> None:
        """The complete case as run, with defaults, in SI (runnable as it is)."""
        if self.comm.rank == 0:
            (self.path / "case.toml").write_text(tomli_w.dumps(resolved))

    def write_fields(self, fields: dict[str, dict[str, str]]) -> None:
        """``fields.json``: each field's units and rank, for ``plot`` and ``view.py``."""
        if self.comm.rank == 0:
            (self.path / FIELDS).write_text(json.dumps(fields, indent=2) + "\n")

    @contextmanager
    def running(self, case_file: Path | None, details: dict[str, Any]):
        """Provenance around the run: ``running``, then ``completed`` or ``failed``."""
        self._attach_log()
        try:
            if self.comm.rank == 0:  # only rank 0 writes it (and asks git)
                self._provenance = _provenance(case_file, self.comm.size) | details
            self._write_provenance("running")
            yield self._provenance
        except KeyboardInterrupt:
            self._write_provenance("interrupted")
            raise
        except BaseException as exc:
            self._write_provenance("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        else:
            self._write_provenance("completed")
        finally:
            self._detach_log()

    def _write_provenance(self, status: str, error: str | None = None) -> None:
        if self.comm.rank != 0:
            return
        record = self._provenance | {
            "status": status,
            "wall_time_s": round(time.perf_counter() - self._started, 3),
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if error:
            record["error"] = error
        (self.path / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")

    def _attach_log(self) -> None:
        if self.comm.rank == 0:
            self._log_handler = logging.FileHandler(self.path / "run.log", mode="w")
            self._log_handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
            )
            log.addHandler(self._log_handler)
            log.setLevel(min(log.level or logging.INFO, logging.INFO))

    def _detach_log(self) -> None:
        if self._log_handler is not None:
            log.removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None


@functools.cache
def code_version() -> str:
    """The version of the code that runs: the package version and its git commit."""
    commit = _git_commit()
    return f"{__version__}+{commit}" if commit else __version__


def _git_commit() -> str | None:
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _provenance(case_file: Path | None, ranks: int) -> dict[str, Any]:
    import dolfinx
    from petsc4py import PETSc

    return {
        "scalebridge_version": __version__,
        "git_commit": _git_commit(),
        "dolfinx_version": dolfinx.__version__,
        "petsc_version": ".".join(map(str, PETSc.Sys.getVersion())),
        "python_version": platform.python_version(),
        "mpi_ranks": ranks,
        "hostname": platform.node(),
        "user": os.environ.get("USER", ""),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "case_file": str(case_file.resolve()) if case_file else None,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class FieldOutput:
    """Which field files to write, and in which protocol cycles (the case's ``[output]``)."""

    xdmf: bool = True
    vtx: bool = False
    every_cycle: int | None = None

    @classmethod
    def of(cls, output: Any) -> FieldOutput:
        """From the case's :class:`~app.case.OutputSpec`."""
        return cls(output.xdmf, output.vtx, output.every_cycle)

    def wanted(self, cycle: int | None) -> bool:
        """Whether fields are written in protocol cycle ``cycle`` (None or -1: no protocol, or
        before its first step, e.g. the initial state)."""
        if self.every_cycle is None or cycle is None or cycle < 0:
            return True
        return cycle % self.every_cycle == 0


class FieldWriter:
    """Field files of a run, one set per mesh the fields live on.

    * XDMF (ParaView, ``scalebridge plot``): ``fields.xdmf`` (+ ``.h5``) for the fields of the
      whole mesh, ``fields_<mesh.name>.xdmf`` for those of a region or boundary submesh. XDMF
      holds Lagrange fields of the mesh's degree and cellwise constants; anything else is
      written at the mesh's degree (the solution keeps its own degree): continuous fields
      interpolated, discontinuous ones (a P2 temperature's heat flux) averaged over the cells
      at each node, the same on any partition (see :class:`_OutputCopy`). Values at quadrature
      points (internal variables, the stress of a plastic material) are written as their mean
      over each cell.
      ``view.py`` beside them opens them all in ParaView.
    * Tensors of 2D meshes are written as 3x3 tensors (zeros out of the plane), the layout
      ParaView names XX, XY, XZ, YX, YY, ...; vectors with three components (z = 0).
    * VTX (``vtx = true``): ``fields.bp`` / ``fields_<mesh.name>.bp``, each field at its own
      degree. One VTX file holds one element type, so further element types of a mesh go to
      ``fields[_<mesh.name>]_<element>.bp`` (e.g. ``fields_DG0.bp``). Each file holds its
      mesh once (``VTXMeshPolicy.reuse``), not at every step.

    Args:
        folder: The run folder.
        mesh_data: The parent mesh and its region tags.
        functions: The fields to write.
        output: Which files to write, and in which protocol cycles (default: XDMF, always).
    """

    def __init__(
        self,
        folder: Path,
        mesh_data: Any,
        functions: Sequence[fem.Function],
        output: FieldOutput | None = None,
    ):
        self.settings = output or FieldOutput()
        parent = mesh_data.mesh
        by_mesh: dict[Any, list[fem.Function]] = {}
        for function in functions:
            by_mesh.setdefault(function.function_space.mesh, []).append(function)
        self._files: list[tuple[Any, list[_OutputCopy]]] = []
        self._vtx: list[tuple[Any, list[_OutputCopy]]] = []
        stems: set[str] = set()
        try:
            for mesh, members in by_mesh.items():
                stem = "fields" if mesh is parent else _stem(f"fields_{mesh.name}", stems)
                stems.add(stem)
                if self.settings.xdmf:
                    xdmf = folder / f"{stem}.xdmf"
                    self._files.append(self._xdmf(xdmf, mesh, members, mesh_data))
                if self.settings.vtx:
                    self._vtx += _vtx_writers(folder, stem, mesh, members)
        except BaseException:
            self.close()  # the files opened so far
            raise
        if self.settings.xdmf and self._files and parent.comm.rank == 0:
            write_view_script(folder)

    @staticmethod
    def _xdmf(path: Path, mesh: Any, members: list[fem.Function], mesh_data: Any):
        stream = io.XDMFFile(mesh.comm, str(path), "w")
        stream.write_mesh(mesh)
        if mesh is mesh_data.mesh and len(mesh_data.regions) > 1:  # one region: a constant
            mesh.topology.create_connectivity(mesh.topology.dim, mesh.topology.dim)
            mesh_data.cell_tags.name = "regions"
            stream.write_meshtags(mesh_data.cell_tags, mesh.geometry)
        return stream, [_OutputCopy(f, _xdmf_space(f, mesh)) for f in members]

    def write(self, time: float, cycle: int | None = None) -> None:
        """Write every field at ``time``, unless ``every_cycle`` leaves out ``cycle``.

        Args:
            time: The time stamp.
            cycle: The protocol cycle (None without a protocol).
        """
        if not self.settings.wanted(cycle):
            return
        for stream, copies in self._files:
            for copy in copies:
                copy.update()
                stream.write_function(copy.function, time)
        for writer, copies in self._vtx:
            for copy in copies:
                copy.update()
            writer.write(time)

    def close(self) -> None:
        for stream, _ in self._files:
            stream.close()
        for writer, _ in self._vtx:
            writer.close()


def write_view_script(folder: Path) -> Path:
    """Copy the ParaView view script into ``folder`` as ``view.py`` (see app/paraview_view.py).

    The script finds its files next to itself; the folder's absolute path is its fallback for
    ``paraview --script``, which runs a script without ``__file__``.
    """
    folder = Path(folder).resolve()
    text = VIEW_SCRIPT.read_text().replace(
        "RUN_FOLDER = None  #", f"RUN_FOLDER = {str(folder)!r}  #", 1
    )
    target = folder / "view.py"
    target.write_text(text)
    return target


def _xdmf_space(function: fem.Function, mesh: Any) -> Any:
    """The space XDMF can hold ``function`` in (None: its own).

    XDMF holds cellwise constants and Lagrange fields of the mesh's degree; anything else is
    written as a Lagrange field of the mesh's degree, and values at quadrature points as cell
    means. 2D tensors are embedded in 3x3.
    """
    space = function.function_space
    element = space.ufl_element()
    shape = written_shape(space.value_shape)
    if is_pointwise(space):
        return cell_mean_space(space, shape)
    if element.embedded_superdegree == 0 and element.discontinuous:
        family, degree = "Discontinuous Lagrange", 0
    else:
        family, degree = "Lagrange", mesh.geometry.cmaps[0].degree
        if not element.discontinuous and element.embedded_superdegree == degree:
            family = None  # the field's own element
    if family is None and shape == space.value_shape:
        return None
    return fem.functionspace(mesh, (family or "Lagrange", degree, shape))


def _vtx_space(function: fem.Function, mesh: Any) -> Any:
    """The space VTX holds ``function`` in (None: its own): Lagrange fields, continuous or not,
    at their degree; other families as discontinuous Lagrange of their degree (VTX holds
    Lagrange only); values at quadrature points as cell means; 2D tensors embedded in 3x3."""
    space = function.function_space
    element = space.ufl_element()
    shape = written_shape(space.value_shape)
    if is_pointwise(space):
        return cell_mean_space(space, shape)
    lagrange = element.basix_element.family == basix.ElementFamily.P
    if lagrange and shape == space.value_shape:
        return None
    family = "Lagrange" if lagrange and not element.discontinuous else "Discontinuous Lagrange"
    return fem.functionspace(mesh, (family, element.embedded_superdegree, shape))


def written_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The value shape a field is written with.

    ParaView reads 9 components as a row-major 3x3 tensor (XX, XY, XZ, YX, YY, ...), while both
    DOLFINx writers pad a 2x2 tensor by appending zeros ([xx, xy, yx, yy, 0, ...]): its yy would
    show as YX. So tensors of 1D and 2D meshes are written as their 3x3 embedding. (Vectors need
    nothing: the writers pad [x, y] to [x, y, 0], which is what ParaView expects.)
    """
    return (3, 3) if len(shape) == 2 and shape != (3, 3) else tuple(shape)


def _embedded(source: fem.Function) -> Any:
    """``source`` as UFL in its written shape: a 2D tensor in the top-left block of a 3x3 one."""
    shape = source.ufl_shape
    if written_shape(shape) == shape:
        return source
    rows, cols = shape
    return ufl.as_matrix(
        [[source[i, j] if i < rows and j < cols else 0 for j in range(3)] for i in range(3)]
    )


class _OutputCopy:
    """A field as a file holds it: the field itself, or a copy in ``space`` refreshed before
    each write.

    The copy takes the field's values at its nodes. Where a discontinuous field meets a
    continuous copy, a node shared by several cells gets the mean of the cells' values there,
    weighted by the cells' volumes (:class:`_NodalAverage`); interpolation would give it the value
    of whichever cell came last, which depends on the partition. Values at quadrature points
    have no nodes: the copy holds their mean over each cell (:class:`~app.pointwise.CellMean`).
    """

    def __init__(self, source: fem.Function, space: Any = None):
        self.source = source
        self.function = source if space is None else fem.Function(space, name=source.name)
        self._mean = None
        if space is None:
            return
        if is_pointwise(source.function_space):
            degree = quadrature_degree(source.function_space)
            self._mean = CellMean(_embedded(source), self.function, degree)
            return
        self._values = fem.Expression(_embedded(source), space.element.interpolation_points)
        shared = (
            not space.ufl_element().discontinuous
            and source.function_space.ufl_element().discontinuous
        )
        self._average = _NodalAverage(space) if shared else None

    def update(self) -> None:
        if self.function is self.source:
            return
        if self._mean is not None:
            self._mean()
        elif self._average is None:
            self.function.interpolate(self._values)
        else:
            self._average(self._values, self.function)


class _NodalAverage:
    """Node values of a continuous space from cellwise values: the volume-weighted mean over the
    cells that share each node.

    Every rank adds the values of the cells it owns at their nodes; the reverse scatter sums the
    contributions to each node over the ranks. A node's value is thus a sum over the same cells on
    any partition (only the order of the additions changes), at any degree and geometry order.
    """

    def __init__(self, space: Any):
        mesh = space.mesh
        tdim = mesh.topology.dim
        self._mesh = mesh
        self._cells = np.arange(mesh.topology.index_map(tdim).size_local, dtype=np.int32)
        block = space.dofmap.index_map_bs
        nodes = space.dofmap.list[self._cells]
        self._dofs = (nodes[:, :, None] * block + np.arange(block)).reshape(len(self._cells), -1)
        cell_indicator = ufl.TestFunction(fem.functionspace(mesh, ("Discontinuous Lagrange", 0)))
        volumes = fem.assemble_vector(fem.form(cell_indicator * ufl.dx(domain=mesh)))
        self._volumes = volumes.array[: len(self._cells)].copy()
        weights = fem.Function(space)
        self._accumulate(weights, np.broadcast_to(self._volumes[:, None], self._dofs.shape))
        self._weights = weights.x.array[: owned_size(space)].copy()

    def __call__(self, values: fem.Expression, target: fem.Function) -> None:
        cellwise = values.eval(self._mesh, self._cells).reshape(self._dofs.shape)
        self._accumulate(target, cellwise * self._volumes[:, None])
        target.x.array[: len(self._weights)] /= self._weights
        target.x.scatter_forward()

    def _accumulate(self, target: fem.Function, cellwise: np.ndarray) -> None:
        """Sum cellwise contributions at the nodes, over all ranks, into the owned entries."""
        size = len(target.x.array)
        target.x.array[:] = np.bincount(self._dofs.ravel(), cellwise.ravel(), minlength=size)
        target.x.scatter_reverse(la.InsertMode.add)


def _stem(name: str, taken: set[str]) -> str:
    """A file name in the run folder for a region's or boundary's name, which may come from a
    case or a mesh file: path separators and other unusual characters become '_'."""
    stem = re.sub(r"[^\w.-]", "_", name)
    unique, suffix = stem, 1
    while unique in taken:
        suffix += 1
        unique = f"{stem}_{suffix}"
    return unique


def _vtx_writers(folder: Path, stem: str, mesh: Any, members: list[fem.Function]) -> list:
    """One VTX writer per element type of ``members`` (all on ``mesh``), see
    :func:`_vtx_space`."""
    groups: dict[str, list[_OutputCopy]] = {}
    for function in members:
        copy = _OutputCopy(function, _vtx_space(function, mesh))
        element = copy.function.function_space.ufl_element()
        kind = "DG" if element.discontinuous else "P"
        groups.setdefault(f"{kind}{element.embedded_superdegree}", []).append(copy)
    writers = []
    for index, (label, copies) in enumerate(groups.items()):
        name = f"{stem}.bp" if index == 0 else f"{stem}_{label}.bp"
        writer = io.VTXWriter(
            mesh.comm,
            str(folder / name),
            [copy.function for copy in copies],
            engine="BP4",
            mesh_policy=io.VTXMeshPolicy.reuse,
        )
        writers.append((writer, copies))
    return writers


class QuantityTable:
    """``quantities.csv``: one row per output time, flushed as it is written."""

    def __init__(self, path: Path | None, columns: list[str], comm: Any):
        self.columns = columns
        self.rows: list[list[float]] = []
        self._stream = None
        if path is not None and comm.rank == 0:
            self._stream = path.open("w", newline="")
            self._writer = csv.writer(self._stream)
            self._writer.writerow(columns)

    def append(self, row: list[float]) -> None:
        self.rows.append(row)
        if self._stream is not None:
            self._writer.writerow([f"{value:.12g}" for value in row])
            self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
