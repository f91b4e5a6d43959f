"""The time loop: steps from start to end, hitting every output time exactly.

Fixed dt, or adaptive dt that grows after easy steps (few Newton iterations) and is cut after a
failed solve (divergence or a non-finite value), with the step retried from the last accepted
state. Output happens at the times the case asks for whatever the step size is: a step that
would pass an output time is shortened to land on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from app.errors import SolverError
from app.solvers import SolveReport

log = logging.getLogger("scalebridge")

Step = Callable[[float, float], SolveReport]
Record = Callable[[float, float, SolveReport | None], None]


def output_times(start: float, end: float, interval: float | None, extra: list[float]) -> list:
    """Sorted output times in (start, end]; empty means "after every step"."""
    times = {t for t in extra if start < t <= end}
    if interval:
        count = int((end - start) / interval + 1e-9)
        times.update(start + k * interval for k in range(1, count + 1))
    if times or interval:
        times.add(end)
    return sorted(times)


class TimeLoop:
    """Drive a simulation through time.

    Args:
        time: The case's ``[time]`` section.
        output: The case's ``[output]`` section.
        step: Solves one step ending at the given time with the given dt; returns its report
            and leaves the state unchanged when it did not converge.
        accept: Called after a converged step (history shift).
        restart: Called after a step that ends on a breakpoint (multistep history restart).
        record: Called at output times with (time, dt, report).
        progress: Show a progress bar (rank 0, runs longer than a few seconds).
        comm: The communicator (the bar shows on rank 0 only).
    """

    def __init__(
        self,
        time: Any,
        output: Any,
        step: Step,
        accept: Callable[[float, float], None],
        restart: Callable[[], None],
        record: Record,
        progress: bool,
        comm: Any,
    ):
        self.time, self.output = time, output
        self._step, self._accept, self._restart, self._record = step, accept, restart, record
        self._progress = progress and comm.rank == 0
        self.steps = 0
        self.rejected = 0

    def run(self) -> None:
        time = self.time
        if time.end is None:
            report = self._solve(time.start, time.dt or 0.0)
            self._record(time.start, 0.0, report)
            return
        if time.transient:
            self._record(time.start, 0.0, None)
        targets = output_times(time.start, time.end, self.output.interval, self.output.times)
        self._march(targets)

    def _march(self, targets: list[float]) -> None:
        time = self.time
        breaks = [b for b in time.breakpoints if time.start < b < time.end]
        stops = sorted({*targets, *breaks})
        adaptive = time.adaptive
        dt_max = adaptive.dt_max if adaptive and adaptive.dt_max else time.end - time.start
        dt, t = time.dt, time.start
        tolerance = 1e-9 * max(abs(time.end), dt)
        with tqdm(
            total=time.end - time.start,
            unit="s",
            delay=3,
            disable=not self._progress,
            bar_format="{l_bar}{bar}| t={n:.4g}/{total:.4g} s [{elapsed}<{remaining}{postfix}]",
        ) as bar:
            while t < time.end - tolerance:
                target = next((s for s in stops if s > t + tolerance), time.end)
                remaining = target - t
                # Land on the target rather than leave a sliver before it; when the difference
                # is round-off in t, keep dt exactly so the reused operator stays valid.
                step = remaining if remaining - dt < 1e-3 * dt else dt
                if abs(step - dt) <= tolerance:
                    step = dt
                report = self._solve(t + step, step, retry=adaptive is not None)
                if not report.converged:
                    dt = step * adaptive.shrink
                    self.rejected += 1
                    log.warning(
                        "step to t = %.6g s rejected (%s); retrying with dt = %.3g s",
                        t + step,
                        report.reason,
                        dt,
                    )
                    if dt < adaptive.dt_min:
                        raise SolverError(
                            f"the solve failed at t = {t + step:.6g} s and dt would fall below "
                            f"time.adaptive.dt_min = {adaptive.dt_min:g} s ({report.reason})"
                        )
                    continue
                t = target if abs(target - (t + step)) <= tolerance else t + step
                self.steps += 1
                # Outputs first: reactions need the step's residual, before the history shifts.
                if not targets or any(abs(t - s) <= tolerance for s in targets):
                    self._record(t, step, report)
                self._accept(t, step)
                if adaptive and report.iterations <= adaptive.easy_iterations:
                    dt = min(dt * adaptive.growth, dt_max)
                if any(abs(t - b) <= tolerance for b in breaks):
                    self._restart()
                bar.update(step)
                bar.set_postfix_str(f"dt={step:.3g} s", refresh=False)

    def _solve(self, t: float, dt: float, retry: bool = False) -> SolveReport:
        report = self._step(t, dt)
        if not report.converged and not retry:
            hint = (
                "; set [time.adaptive] to retry with smaller steps" if self.time.transient else ""
            )
            raise SolverError(f"the solve failed at t = {t:.6g} s ({report.reason}){hint}")
        return report
