"""Bounds of solved fields (``FieldSpec.bounds``): a step whose solution leaves them fails.

A rate law can keep a degree of cure in [0, 1] (its rate is zero at 1) while the time scheme
does not: BDF2 extrapolates from two levels, and a conversion near completion at a growing step
landed at 1.07, where the zero rate made it an exact root of the step's equations; the run
'completed' with more than all of the resin cured. The check here makes such a step a failed
solve, which an adaptive run retries with a shorter step (the overshoot shrinks with the square
of the step ratio) and a fixed-step run reports with the hint to adapt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from mpi4py import MPI

#: Values beyond a bound by less than this (times the bound's scale, at least 1) are round-off.
SLACK = 1e-9


def outside_bounds(fields: Sequence[Any]) -> str:
    """What the first field (of ``fields``, with ``spec`` and ``function``) with a value
    beyond its bounds reached, e.g. "degree_of_cure reached 1.0736, above its upper bound 1";
    "" when all are within (collective)."""
    for field in fields:
        lower, upper = field.spec.bounds
        if lower is None and upper is None:
            continue
        function = field.function
        space = function.function_space
        owned = function.x.array[: space.dofmap.index_map.size_local * space.dofmap.index_map_bs]
        comm = space.mesh.comm
        low = comm.allreduce(owned.min(initial=np.inf), op=MPI.MIN)
        high = comm.allreduce(owned.max(initial=-np.inf), op=MPI.MAX)
        name = field.spec.name
        if lower is not None and low < lower - SLACK * max(1.0, abs(lower)):
            return f"{name} reached {low:.6g}, below its lower bound {lower:g}"
        if upper is not None and high > upper + SLACK * max(1.0, abs(upper)):
            return f"{name} reached {high:.6g}, above its upper bound {upper:g}"
    return ""
