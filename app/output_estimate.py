"""How much a run writes (field files, rows, meshes, checkpoints), estimated from the sizes of
its fields' spaces before any compute, and the refusal of a run whose output the disk cannot
take."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from app.errors import CaseError
from app.safeguards import free_bytes, size_text

BYTES = 8  # per stored value
ROW_BYTES = 16  # per quantities.csv value, as written


class OutputEstimate:
    """How much a run writes: per output time (field files, rows), per field-file segment
    (the meshes) and per checkpoint, from the sizes of the fields' spaces.

    Attributes:
        outputs: Output times expected (a lower bound when the run's length is unknown).
        per_output: Bytes written at each output time.
        per_segment: Bytes of the meshes a field file (segment) holds.
        checkpoint: Bytes of one checkpoint.
        keep: Checkpoints kept (one more exists while the next is written).
    """

    def __init__(self, outputs: int, per_output: int, per_segment: int, checkpoint: int, keep):
        self.outputs, self.per_output, self.per_segment = outputs, per_output, per_segment
        self.checkpoint, self.keep = checkpoint, keep

    @classmethod
    def of(cls, simulation: Any) -> OutputEstimate:
        case, store = simulation.case, simulation.store
        written = set(simulation._output_fields) if (case.output.xdmf or case.output.vtx) else ()
        field_bytes = sum(space_values(store[name].space) for name in written) * BYTES
        rows = len(simulation.columns) * ROW_BYTES + sum(
            len(spec.coordinates()) * 4 * ROW_BYTES for spec, _ in simulation.probes.lines.values()
        )
        msh = simulation.mesh_data.mesh
        cells = msh.topology.index_map(msh.topology.dim).size_global
        nodes = msh.geometry.index_map().size_global
        nodes_per_cell = msh.geometry.dofmaps[0].shape[1]
        per_segment = (nodes * 3 + cells * nodes_per_cell) * BYTES if written else 0
        levels = sum(
            (1 + len(f.history)) * space_values(f.space) + _keys(f) for f in store.solved()
        ) + sum((1 + len(f.history)) * space_values(f.space) for f in store.internals())
        return cls(_output_count(case), field_bytes + rows, per_segment, levels * BYTES,
                   case.checkpoint.keep)  # fmt: skip

    @property
    def total(self) -> int:
        return self.outputs * self.per_output + self.per_segment + (self.keep + 1) * self.checkpoint

    def describe(self) -> str:
        return (
            f"about {size_text(self.total)}: {self.outputs} output(s) of "
            f"{size_text(self.per_output)}, the mesh ({size_text(self.per_segment)}) and "
            f"{self.keep + 1} checkpoint(s) of {size_text(self.checkpoint)}"
        )


def space_values(space: Any) -> int:
    """Values a field of ``space`` holds over all ranks."""
    return space.dofmap.index_map.size_global * space.dofmap.index_map_bs


def _keys(field: Any) -> int:
    """Values of the node keys a checkpoint stores with a field (app/field_state.py)."""
    if field.is_global:
        return 0
    gdim = field.space.mesh.geometry.dim
    width = 2 * gdim if field.space.ufl_element().discontinuous else gdim
    return field.space.dofmap.index_map.size_global * width


def _output_count(case: Any) -> int:
    """Output times from start to end (every step: the first dt; unknown end: 1)."""
    time_spec, output = case.time, case.output
    if time_spec.end is None:
        return 1 + len(output.times)
    span = time_spec.end - time_spec.start
    step = output.interval or time_spec.dt or span
    return 2 + math.ceil(span / step) + len(output.times)


def check_room(comm: Any, folder: Path, estimate: OutputEstimate, resuming: bool) -> None:
    """Refuse, before any compute, a run whose output does not fit on its disk.

    Raises:
        CaseError: The estimate exceeds the free space (exit code 2).
    """
    problem = None
    if comm.rank == 0:
        free = free_bytes(folder)
        if free < estimate.total:
            problem = (
                f"the disk of '{folder}' has {size_text(free)} free and the run writes "
                f"{estimate.describe()}"
            )
    problem = comm.bcast(problem, root=0)
    if problem:
        raise CaseError(
            "--restart" if resuming else "--output",
            problem,
            "free space, choose another folder with -o, or write less (output.interval, "
            "output.fields, checkpoint.keep)",
        )
