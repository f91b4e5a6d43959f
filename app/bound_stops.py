"""Bounds that end a run: events of solved fields declared with ``at_bounds="stop"``.

A bound that only fails steps (app/field_bounds.py) suits a field the equations keep inside
it. A salt that runs out is different: at 5C a DFN cell's electrolyte empties near the positive
collector, the exchange current and the conductivity vanish with the concentration, and every
step past that point ends in NaN however short it is. PyBaMM stops such a run with an event
("Zero electrolyte concentration cut-off"); here each bound of such a field is an event of the
run like a case's ``[[events]]``: the time loop locates the step on which the field's extreme
comes within :data:`STOP_MARGIN` of its initial distance from the bound, writes that row, and
ends the run there with the event named in the log and in ``Result.fired``.

Each bound is watched through a column of its own (``"c_e at its lower bound 0"``), whose value
the simulation reads with the quantity columns (:meth:`BoundStops.read`): the field's lowest
(highest) value over every rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from mpi4py import MPI

from app.events import Trigger

#: The run stops when a field's extreme is this fraction of its initial distance from the
#: bound away from it (0.1 mol/m^3 for a salt at 1000 mol/m^3).
STOP_MARGIN = 1e-4


class BoundStops:
    """The events of the bounds of solved fields that end a run there.

    Args:
        fields: Solved fields (each with ``spec`` and ``function``); those whose spec says
            ``at_bounds="stop"`` are watched.
        tolerance: Time within which the triggering step ends after the crossing.
    """

    def __init__(self, fields: Sequence[Any], tolerance: float) -> None:
        self._watched: dict[str, tuple[Any, float, float]] = {}  # column: (field, bound, sign)
        for field in fields:
            if field.spec.at_bounds != "stop":
                continue
            lower, upper = field.spec.bounds
            for bound, side, sign in ((lower, "lower", -1.0), (upper, "upper", 1.0)):
                if bound is not None:
                    column = f"{field.spec.name} at its {side} bound {bound:g}"
                    self._watched[column] = (field, bound, sign)
        self._thresholds: dict[str, float] = {}
        self.triggers = [
            Trigger(column, [column], self._distance(column), tolerance) for column in self._watched
        ]

    def _distance(self, column: str):
        """Signed distance of the extreme past the threshold (>= 0: the event holds)."""
        sign = self._watched[column][2]
        return lambda values: sign * (values[column] - self._thresholds[column])

    def read(self, columns: Sequence[str]) -> dict[str, float]:
        """The extremes of the watched columns among ``columns`` (collective). The first read
        (the run's initial state) sets each threshold, STOP_MARGIN of the way from the bound
        to the field's farthest value."""
        values = {}
        for column in columns:
            if column not in self._watched:
                continue
            field, bound, sign = self._watched[column]
            values[column] = _extreme(field.function, sign)
            if column not in self._thresholds:
                farthest = _extreme(field.function, -sign)
                self._thresholds[column] = bound + STOP_MARGIN * (farthest - bound)
        return values

    def state(self) -> dict[str, Any]:
        """The thresholds in a checkpoint: a resumed run stops where the unbroken one would,
        not at thresholds measured from the state it resumes."""
        return {"thresholds": dict(self._thresholds)}

    def restore(self, state: dict[str, Any]) -> None:
        self._thresholds = {column: float(value) for column, value in state["thresholds"].items()}

    @property
    def watched(self) -> bool:
        return bool(self._watched)


def _extreme(function: Any, sign: float) -> float:
    """The largest (sign > 0) or smallest owned value of a function over every rank."""
    index_map = function.function_space.dofmap.index_map
    owned = function.x.array[: index_map.size_local * function.function_space.dofmap.index_map_bs]
    comm = function.function_space.mesh.comm
    if sign > 0:
        return comm.allreduce(owned.max(initial=-np.inf), op=MPI.MAX)
    return comm.allreduce(owned.min(initial=np.inf), op=MPI.MIN)
