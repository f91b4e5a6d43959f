"""When a run writes its rows (and fields): every ``output.interval``, at ``output.times`` and
at the end."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

log = logging.getLogger("scalebridge")


@dataclass
class OutputTimes:
    """When rows are written: every ``interval`` from the start (also in a run without an end),
    at the ``extra`` times and at the end; after every step when neither is given."""

    start: float
    end: float
    interval: float | None
    extra: list[float]

    def __post_init__(self) -> None:
        # times were asked for, even where none falls in this run: not a row after every step
        self._listed = bool(self.extra)
        inside = sorted(t for t in self.extra if self.start < t <= self.end)
        if len(inside) < len(self.extra):
            log.warning(
                "output.times: %d of the %d times are not after the start %.6g s and by the end "
                "%.6g s: no rows there",
                len(self.extra) - len(inside),
                len(self.extra),
                self.start,
                self.end,
            )
        self.extra = inside

    @property
    def every_step(self) -> bool:
        return not self.interval and not self._listed

    def after(self, t: float, tolerance: float) -> float:
        """The first output time after ``t`` (infinite when there is none)."""
        times = [s for s in self.extra if s > t + tolerance]
        if self.interval:
            count = math.floor((t + tolerance - self.start) / self.interval) + 1
            times.append(self.start + count * self.interval)
        if not self.every_step and math.isfinite(self.end):
            times.append(self.end)
        return min((s for s in times if s <= self.end), default=math.inf)

    def hits(self, t: float, tolerance: float) -> bool:
        """Whether ``t`` is an output time."""
        if self.interval:
            count = round((t - self.start) / self.interval)
            if count >= 1 and abs(self.start + count * self.interval - t) <= tolerance:
                return True
        return any(abs(t - s) <= tolerance for s in (*self.extra, self.end))
