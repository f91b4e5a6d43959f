"""Output of a run: fields for ParaView and quantities.csv (the run folder: app/run_folder.py).

Fields go to one XDMF file per mesh (``fields.xdmf``, ``fields_<mesh>.xdmf``), optionally also
to VTX (``.bp``), and ``view.py`` beside them opens them in ParaView. ``scalebridge plot``
(:mod:`app.plotting`) reads the folder back. ``quantities.csv`` is written row by row, flushed
after each (app/quantity_table.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import basix
import numpy as np
import ufl
from dolfinx import fem, io, la

from app.errors import OutputFailed
from app.field_segments import SEGMENTS, merge, remove_segments_from, segment_path
from app.fields import owned_size
from app.pointwise import CellMean, cell_mean_space, is_pointwise, quadrature_degree
from app.run_folder import replace_text
from app.safeguards import agreed_problems, disk_state
from app.units import unit_suffix

log = logging.getLogger("scalebridge")

#: Field files left open after a write failed (a full disk): HDF5 and ADIOS2 abort the process
#: when they close (or their destructors close) such a file, so they are kept until the command
#: ends the process without running destructors (app/cli.py), with its own exit code and message.
UNFINISHED: list[Any] = []

VIEW_SCRIPT = Path(__file__).with_name("paraview_view.py")


def column(name: str, units: str) -> str:
    """CSV column of a quantity: ``heat_flow_left`` in ``W/m`` -> ``heat_flow_left_W_per_m``."""
    suffix = unit_suffix(units)
    return f"{name}_{suffix}" if suffix else name


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
    * Checkpoints close the files; later output goes to further segments, which the XDMF file
      indexes as one time series (app/field_segments.py); VTX segments are
      ``segments/<name>.<k>.bp``. In a checkpoint (:meth:`state`) the writer is the number of
      segments closed and the index as it stood.

    Args:
        folder: The run folder.
        mesh_data: The parent mesh and its region tags.
        functions: The fields to write.
        output: Which files to write, and in which protocol cycles (default: XDMF, always).
        resume: Continuing a stopped run (:meth:`restore` follows): open no file yet.
    """

    def __init__(
        self,
        folder: Path,
        mesh_data: Any,
        functions: Sequence[fem.Function],
        output: FieldOutput | None = None,
        resume: bool = False,
    ):
        self.settings = output or FieldOutput()
        self.folder, self.mesh_data = Path(folder), mesh_data
        self.comm = mesh_data.mesh.comm
        by_mesh: dict[Any, list[fem.Function]] = {}
        for function in functions:
            by_mesh.setdefault(function.function_space.mesh, []).append(function)
        self._meshes: list[tuple[str, Any, list[_OutputCopy], dict[str, list[_OutputCopy]]]] = []
        stems: set[str] = set()
        for mesh, members in by_mesh.items():
            stem = "fields" if mesh is mesh_data.mesh else _stem(f"fields_{mesh.name}", stems)
            stems.add(stem)
            copies = []
            if self.settings.xdmf:
                copies = [_OutputCopy(f, _xdmf_space(f, mesh)) for f in members]
            groups = _vtx_groups(mesh, members) if self.settings.vtx else {}
            self._meshes.append((stem, mesh, copies, groups))
        self.segment = 0  # the number of the segment written now or next
        self._open: list[tuple[Any, list[_OutputCopy]]] | None = None
        self._vtx: list[tuple[Any, list[_OutputCopy]]] = []
        self._index: dict[str, str] = {}  # per stem: the XDMF index of the closed segments
        if not resume:
            self._start_segment()
            if self.settings.xdmf and self.comm.rank == 0:
                write_view_script(self.folder)

    def _start_segment(self) -> None:
        number, folder = self.segment, self.folder
        if number > 0 and self.comm.rank == 0:
            (folder / SEGMENTS).mkdir(exist_ok=True)
        self.comm.barrier()
        self._open, self._vtx = [], []
        try:
            for stem, mesh, copies, groups in self._meshes:
                if self.settings.xdmf:
                    path = segment_path(folder, stem, number, ".xdmf")
                    self._open.append((self._xdmf(path, mesh, number == 0), copies))
                if self.settings.vtx:
                    self._vtx += _vtx_writers(folder, stem, number, mesh, groups)
        except BaseException:
            self.abandon()  # closing a file whose writes failed aborts the process (UNFINISHED)
            raise

    def _xdmf(self, path: Path, mesh: Any, tags: bool) -> Any:
        stream = io.XDMFFile(mesh.comm, str(path), "w")
        try:
            stream.write_mesh(mesh)
            mesh_data = self.mesh_data
            if tags and mesh is mesh_data.mesh and len(mesh_data.regions) > 1:  # one: constant
                mesh.topology.create_connectivity(mesh.topology.dim, mesh.topology.dim)
                mesh_data.cell_tags.name = "regions"
                stream.write_meshtags(mesh_data.cell_tags, mesh.geometry)
        except BaseException:
            # a mesh write that failed (a full disk) leaves HDF5 unable to close the file: its
            # destructor would abort the process ("Failed to close HDF5 file")
            UNFINISHED.append(stream)
            raise
        return stream

    def write(self, time: float, cycle: int | None = None) -> None:
        """Write every field at ``time``, unless ``every_cycle`` leaves out ``cycle``.

        Args:
            time: The time stamp.
            cycle: The protocol cycle (None without a protocol).
        """
        if not self.settings.wanted(cycle):
            return
        if self._open is None:
            self._start_segment()
        for stream, copies in self._open:
            for copy in copies:
                copy.update()
                stream.write_function(copy.function, time)
            stream.flush()  # what ParaView reads while the run goes on
        for writer, copies in self._vtx:
            for copy in copies:
                copy.update()
            writer.write(time)
        if self.segment > 0:
            self._publish(current=True)

    def _publish(self, current: bool) -> None:
        """Rewrite each mesh's XDMF index: the closed segments, and the open one's steps."""
        if self.comm.rank != 0 or not self.settings.xdmf:
            return
        for stem, *_ in self._meshes:
            text = self._index.get(stem)
            if current:
                path = segment_path(self.folder, stem, self.segment, ".xdmf")
                text = merge(text, path.read_text(), self.segment)
            if text is not None:
                replace_text(self.folder / f"{stem}.xdmf", text)

    def _end_segment(self) -> None:
        """Close the open segment; its steps join the index."""
        self._close_files()
        if self.comm.rank == 0 and self.settings.xdmf:
            for stem, *_ in self._meshes:
                path = segment_path(self.folder, stem, self.segment, ".xdmf")
                self._index[stem] = merge(self._index.get(stem), path.read_text(), self.segment)
        self.segment += 1
        self._publish(current=False)

    def state(self) -> dict[str, Any]:
        """The writer in a checkpoint: it closes the open segment first, so every file the
        checkpoint counts is complete."""
        if self._open is not None:
            self._end_segment()
        return {"segments": self.segment, "index": dict(self._index)}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue after a checkpoint: the segments begun after it go, the index is as it was
        then, and the next output opens the next segment."""
        self.segment, self._index = state["segments"], dict(state["index"])
        if self.comm.rank == 0:
            remove_segments_from(self.folder, self.segment)
        self._publish(current=False)
        self.comm.barrier()

    def _close_files(self) -> None:
        """Close the segment's files (collective).

        Raises:
            OutputFailed: ADIOS2 could not finish a VTX file on some rank (a full disk).
        """
        for stream, _ in self._open or []:
            stream.close()
        problem = None
        for writer, _ in self._vtx:
            try:
                writer.close()
            except RuntimeError as exc:
                UNFINISHED.append(writer)
                problem = problem or str(exc).strip().splitlines()[0]
        self._open, self._vtx = None, []
        problems = agreed_problems(self.comm, problem, "closing a VTX field file failed")
        if problems:
            raise OutputFailed(
                f"a VTX field file could not be finished ({disk_state(self.folder)}): {problems[0]}"
            )

    def abandon(self) -> None:
        """Leave the open segment's files as they are, after a write failed (see UNFINISHED);
        a restart removes the segments begun after its checkpoint."""
        UNFINISHED.extend(stream for stream, _ in self._open or [])
        UNFINISHED.extend(writer for writer, _ in self._vtx)
        self._open, self._vtx = None, []

    def close(self) -> None:
        if self._open is not None and self.segment > 0:
            self._end_segment()
        self._close_files()


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
        if element.basix_element.family == basix.ElementFamily.P and shape == space.value_shape:
            return None  # cellwise constants as they are: a copy would cost an interpolation
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


def _vtx_groups(mesh: Any, members: list[fem.Function]) -> dict[str, list[_OutputCopy]]:
    """The copies VTX writes of ``members`` (all on ``mesh``; see :func:`_vtx_space`), by
    element type: one VTX file holds one."""
    groups: dict[str, list[_OutputCopy]] = {}
    for function in members:
        copy = _OutputCopy(function, _vtx_space(function, mesh))
        element = copy.function.function_space.ufl_element()
        kind = "DG" if element.discontinuous else "P"
        groups.setdefault(f"{kind}{element.embedded_superdegree}", []).append(copy)
    return groups


def _vtx_writers(
    folder: Path, stem: str, number: int, mesh: Any, groups: dict[str, list[_OutputCopy]]
) -> list:
    """One VTX writer per element type of segment ``number``'s files of a mesh."""
    writers = []
    for index, (label, copies) in enumerate(groups.items()):
        name = stem if index == 0 else f"{stem}_{label}"
        writer = io.VTXWriter(
            mesh.comm,
            str(segment_path(folder, name, number, ".bp")),
            [copy.function for copy in copies],
            engine="BP4",
            mesh_policy=io.VTXMeshPolicy.reuse,
        )
        writers.append((writer, copies))
    return writers
