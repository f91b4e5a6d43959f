"""Step sizes of the adaptive time loop (app/scheduler.py) under error control and limits.

With ``[time.adaptive] rtol/atol`` the local truncation error of each step is estimated on the
solved fields (app/group_stepping.py); with ``[time.adaptive] tolerances`` on quantity columns
(``voltage_V = "0.1 mV"``), from their values at the last accepted steps. Both use Milne's
device (app/timeint.py :func:`~app.timeint.milne_factor`): the difference between the step's
value and the polynomial extrapolation of the accepted values, times the ratio of the two
methods' error constants. The error of a step is the largest of these, each relative to its
tolerance; a step with an error above 1 is rejected.

The next step is sized for an error of ``SAFETY`` cubed (BDF2: error ~ dt^3), within three
bounds: at most ``growth`` times the step the controller proposed (a step shortened to land
on an output time or a stage end would otherwise hold the steps after it short, ``growth``
at a time), at most ``MAX_RATIO`` times the step just taken (variable-step BDF2 is stable for
ratios below 1 + sqrt(2)) and at least ``SMALLEST_FACTOR`` of it.

``[time.adaptive] limits`` bound the change of a quantity column over one step; a step that
changes one by more is retried, shorter by what it exceeded (the rate changes within a step:
``SAFETY`` of it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from app.errors import SolverError
from app.timeint import ACCURACY, extrapolation_weights, milne_factor

SAFETY = 0.9
MAX_RATIO = 2.0
SMALLEST_FACTOR = 0.2


def quantity_error(
    recent: Sequence[tuple[float, Mapping[str, float]]],
    t: float,
    values: Mapping[str, float],
    tolerances: Mapping[str, float],
    scheme: str,
) -> float | None:
    """The largest local error of the columns in ``tolerances`` over the step that ends at
    ``t``, each relative to its tolerance; None while too few values were accepted since the
    scheme last started (its first steps, after a protocol stage or a breakpoint).

    Args:
        recent: Accepted (time, columns) since the scheme last started, newest first.
        t: The end of the step.
        values: The columns at ``t``.
        tolerances: Local error tolerance of each column (its units).
        scheme: The time scheme.
    """
    order = ACCURACY[scheme]
    if order == 0 or len(recent) < order + 1:
        return None
    times = [time for time, _ in recent[: order + 2]]
    factor = milne_factor(scheme, (t, *times))
    weights = extrapolation_weights(t, times[: order + 1])
    worst = 0.0
    for column, tolerance in tolerances.items():
        predicted = sum(w * levels[column] for w, (_, levels) in zip(weights, recent, strict=False))
        worst = max(worst, abs(factor * (values[column] - predicted)) / tolerance)
    return worst


def rounded(error: float) -> float:
    """The error estimate to 8 significant digits. It is a sum over the ranks (the fields') or
    read from quantities that are, and the partitions of 1 and 2 ranks round it differently
    in the last digits; rounded, both decide and size every step alike (a flip of a decision,
    reject or land, at the 16th digit would send the two runs down different steps)."""
    return float(f"{error:.8g}")


def resized(step: float, proposal: float, error: float, order: int, adaptive: Any) -> float:
    """The next step after one of ``step`` (``proposal``: the step the controller had
    proposed, longer when it was shortened to land on a time) with an estimated ``error``,
    under the ``[time.adaptive]`` settings.

    Raises:
        SolverError: The step would be shorter than ``dt_min``.
    """
    factor = SAFETY * error ** (-1.0 / (order + 1)) if error > 0 else math.inf
    dt = min(
        step * max(SMALLEST_FACTOR, factor),
        adaptive.growth * max(step, proposal),
        MAX_RATIO * step,
    )
    if dt < adaptive.dt_min:
        raise SolverError(
            f"the error control needs dt < time.adaptive.dt_min = {adaptive.dt_min:g} s"
        )
    return dt


def landing_step(t: float, dt: float, target: float, tolerance: float, split: bool) -> float:
    """The next step from ``t`` of at most ``dt`` towards ``target``, landing on it exactly.

    A target less than ``dt`` away is reached in one step, rather than leaving a sliver
    before it; when the difference is round-off in t, dt is kept exactly so a reused operator
    stays valid. With ``split`` (error control), a target between one and two steps away is
    reached in two equal steps: a step and a sliver would make the step ratio of BDF2 and the
    controller's growth start again from the sliver.
    """
    remaining = target - t
    if remaining - dt < 1e-3 * dt:
        step = remaining
    else:
        step = remaining / 2 if split and remaining < 2 * dt else dt
    return dt if abs(step - dt) <= tolerance else step


def limit_excess(
    limits: Mapping[str, float], before: Mapping[str, float], after: Mapping[str, float]
) -> tuple[str | None, float]:
    """The limited column that changed most over the step, relative to its limit, and that
    ratio (None and 0 without limits)."""
    ratios = {c: abs(after[c] - before[c]) / limit for c, limit in limits.items()}
    column = max(ratios, key=ratios.get, default=None)
    return column, ratios.get(column, 0.0)


def limited_step(t: float, step: float, excess: float, dt_min: float) -> float:
    """A shorter step for a change ``excess`` times its limit."""
    dt = step * max(SAFETY / excess, 0.1)
    if dt < dt_min:
        raise SolverError(
            f"at t = {t:.6g} s a quantity changes faster than time.adaptive.limits allow "
            f"down to dt_min = {dt_min:g} s"
        )
    return dt
