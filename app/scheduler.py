"""The time loop: steps from start to end, hitting every output time exactly.

Step control, in order of precedence:
- a failed solve (divergence, non-finite values, fixed-point iterations that do not converge)
  is rejected and retried with a smaller step (adaptive cases) or ends the run;
- with ``[time.adaptive] rtol/atol`` the local truncation error of each step (Milne's device)
  decides acceptance and the next step size; otherwise the step grows after easy Newton solves;
- output times, breakpoints and protocol stage ends are landed on exactly;
- an event (a condition on quantities) is located by rejecting the step that crossed it and
  interpolating, until the triggering step ends within the tolerance after the crossing.

A protocol of ``until`` steps needs no ``time.end``: each step ends when its condition holds.
A condition that is never met ends the run with a :class:`SolverError` saying so, once the
solution stops changing (a steady state: nothing will change any more), once the watched
quantity has run a thousand times its starting scale away from the threshold, or when a failing
solve would need a step below ``time.adaptive.dt_min``. ``time.end`` bounds anything else (a
quantity that oscillates forever without reaching the threshold).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Protocol

from tqdm import tqdm

from app.errors import SolverError
from app.events import Trigger
from app.solvers import SolveReport

log = logging.getLogger("scalebridge")


class Stepper(Protocol):
    """What the time loop drives (the simulation)."""

    def initialise(self) -> None: ...
    def step(self, start: float, dt: float) -> SolveReport: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def restart(self) -> None: ...
    def error(self) -> float | None: ...
    def change(self) -> float: ...
    def values(self, columns: list[str]) -> dict[str, float]: ...
    def record(self, t: float, dt: float, report: SolveReport | None) -> None: ...
    def apply(self, stage: Any) -> None: ...


# A step that changes no solved field by more than this (relative to the field's largest value)
# has reached a steady state: a condition not met then will never be.
STEADY_CHANGE = 1e-9
# A watched quantity that has moved away from its threshold by this many times its own scale
# at the stage's first step (|value| + |distance to the threshold|) is running away from it.
RUNAWAY = 1e3


@dataclass
class Unbounded:
    """A protocol stage that only its condition can end (no duration, no time.end)."""

    stage: Any
    until: Trigger
    scale: float | None = None  # |value| + |distance| of the watched quantity at its start


@dataclass
class OutputTimes:
    """When rows are written: every ``interval`` from the start (also in a run without an end),
    at the ``extra`` times and at the end; after every step when neither is given."""

    start: float
    end: float
    interval: float | None
    extra: list[float]

    def __post_init__(self) -> None:
        self.extra = sorted(t for t in self.extra if self.start < t <= self.end)

    @property
    def every_step(self) -> bool:
        return not self.interval and not self.extra

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


class TimeLoop:
    """Drive a simulation through time.

    Args:
        time: The case's ``[time]`` section.
        output: The case's ``[output]`` section.
        stepper: The simulation.
        events: Triggers that stop the run.
        stages: Protocol stages: (stage object applied by the stepper, duration or None,
            trigger or None); None without a protocol.
        progress: Show a progress bar (rank 0, runs longer than a few seconds).
        comm: The communicator.
    """

    def __init__(
        self,
        time: Any,
        output: Any,
        stepper: Stepper,
        events: list[Trigger],
        stages: list[tuple[Any, float | None, Trigger | None]] | None,
        progress: bool,
        comm: Any,
    ):
        self.time, self.output, self.stepper = time, output, stepper
        self.events, self.stages = events, stages
        self._progress = progress and comm.rank == 0
        self.steps = 0
        self.rejected = 0
        self._unbounded: Unbounded | None = None
        self.fired: str | None = None  # the event that stopped the run

    def run(self) -> None:
        time = self.time
        if time.end is None and self.stages is None:
            report = self._solve(time.start, time.dt or 0.0, retry=False)
            self.stepper.record(time.start, 0.0, report)
            self.stepper.commit()
            return
        end = time.end if time.end is not None else math.inf
        stages = self.stages or [(None, None, None)]
        if stages[0][0] is not None:  # the first row is the start of the first step
            self.stepper.apply(stages[0][0])
        self.stepper.initialise()  # before anything reads the state at the start
        if time.transient:
            self.stepper.record(time.start, 0.0, None)
        self._outputs = OutputTimes(time.start, end, self.output.interval, self.output.times)
        self._breaks = [b for b in time.breakpoints if time.start < b < end]
        t, dt = time.start, time.dt
        with tqdm(
            total=end - time.start if math.isfinite(end) else None,
            unit="s",
            delay=3,
            disable=not self._progress,
            bar_format=(
                "{l_bar}{bar}| t={n:.4g}/{total:.4g} s [{elapsed}<{remaining}{postfix}]"
                if math.isfinite(end)
                else "t={n:.4g} s [{elapsed}{postfix}]"  # a protocol's end is not known ahead
            ),
        ) as self._bar:
            for index, (stage, duration, until) in enumerate(stages):
                if index > 0:
                    self.stepper.apply(stage)
                    self.stepper.restart()  # the forcing jumps at a stage change
                stage_end = min(t + duration, end) if duration is not None else end
                triggers = [*([until] if until else []), *self.events]
                self._unbounded = None if math.isfinite(stage_end) else Unbounded(stage, until)
                t, dt, fired = self._march(t, dt, stage_end, triggers)
                if fired in self.events or t >= end - self._tolerance(end):
                    self.fired = fired.text if fired in self.events else None
                    break

    def _tolerance(self, end: float) -> float:
        return 1e-9 * max(abs(end) if math.isfinite(end) else 1.0, self.time.dt or 1.0)

    def _march(self, t: float, dt: float, end: float, triggers: list[Trigger]):
        time, adaptive = self.time, self.time.adaptive
        dt_max = adaptive.dt_max if adaptive and adaptive.dt_max else end - time.start
        tolerance = self._tolerance(end)
        stops = sorted({*(s for s in self._breaks if t < s < end), end})
        columns = sorted({c for trigger in triggers for c in trigger.columns})
        before = self.stepper.values(columns) if triggers else {}
        for trigger in triggers:
            if trigger.holds(before):
                log.info("'%s' holds at t = %.6g s", trigger.text, t)
                return t, dt, trigger
        bracket: tuple[float, dict, Trigger] | None = None  # (time, values) where a trigger held
        while t < end - tolerance:
            target = next((s for s in stops if s > t + tolerance), end)
            target = min(target, self._outputs.after(t, tolerance))
            if bracket is not None:
                target = min(target, bracket[0])
            step = self._step_size(t, dt, target, tolerance)
            if bracket is not None:
                step = self._trial(t, before, bracket)
            if not math.isfinite(t + step):  # dt grew without bound, and nothing ended the run
                raise SolverError(
                    f"the time step grew without bound at t = {t:.6g} s and nothing ended the "
                    "run; set time.end or time.adaptive.dt_max"
                )
            report = self._solve(t, step, retry=adaptive is not None)
            if not report.converged:
                dt = self._cut(t, step, report.reason)
                continue
            error = self.stepper.error() if adaptive and adaptive.rtol else None
            if error is not None and error > 1:
                self.stepper.rollback()
                self.rejected += 1
                dt = self._resize(step, error, dt_max)
                log.info(
                    "step to t = %.6g s rejected: error %.2f; dt -> %.3g s", t + step, error, dt
                )
                continue
            after = self.stepper.values(columns) if triggers else {}
            fired = next((trig for trig in triggers if trig.holds(after)), None)
            if fired is not None and step > fired.tolerance:
                self.stepper.rollback()  # locate the crossing before taking the step
                bracket = (t + step, after, fired)
                continue
            t = target if abs(target - (t + step)) <= tolerance else t + step
            self.steps += 1
            # Outputs first: reactions need the step's residual, before the history shifts.
            if (
                self._outputs.every_step
                or fired is not None
                or self._outputs.hits(t, tolerance)
                or any(abs(t - s) <= tolerance for s in stops)
            ):
                self.stepper.record(t, step, report)
            if fired is None and self._unbounded is not None:
                self._check_progress(t, after)
            self.stepper.commit()
            if any(abs(t - b) <= tolerance for b in self._breaks):
                self.stepper.restart()
            if bracket is None:
                dt = self._next_dt(step, dt, report, error, dt_max)
            elif fired is None and t >= bracket[0] - tolerance:
                bracket = None
            before = after
            self._bar.update(step)
            self._bar.set_postfix_str(f"dt={step:.3g} s", refresh=False)
            if fired is not None:
                log.info("'%s' at t = %.9g s", fired.text, t)
                return t, dt, fired
        return t, dt, None

    def _check_progress(self, t: float, values: dict) -> None:
        """End a stage that only its condition can end once the condition can no longer be
        met: the solution stopped changing (a steady state), or the watched quantity ran away
        from the threshold (RUNAWAY times its scale at the stage's start)."""
        unbounded = self._unbounded
        distance = unbounded.until.distance(values)
        if unbounded.scale is None:
            value = values[unbounded.until.columns[0]]
            unbounded.scale = abs(value) + abs(distance)
        if self.stepper.change() <= STEADY_CHANGE:
            reason = f"the solution stopped changing at t = {t:.6g} s"
        elif unbounded.scale > 0 and -distance > RUNAWAY * unbounded.scale:
            reason = f"by t = {t:.6g} s the quantity had run away from its threshold"
        else:
            return
        watched = ", ".join(f"{name} = {value:.6g}" for name, value in values.items())
        raise SolverError(
            f"protocol step {unbounded.stage!s} has no duration and the case no time.end; its "
            f"condition {unbounded.until.text!r} was never met: {reason} ({watched}), so it "
            "never will. Fix: give the step 'for DURATION' (\"... for 2 hours or until ...\"), "
            "set time.end, or change the condition"
        )

    @staticmethod
    def _step_size(t: float, dt: float, target: float, tolerance: float) -> float:
        remaining = target - t
        # Land on the target rather than leave a sliver before it; when the difference is
        # round-off in t, keep dt exactly so a reused operator stays valid.
        step = remaining if remaining - dt < 1e-3 * dt else dt
        return dt if abs(step - dt) <= tolerance else step

    @staticmethod
    def _trial(t: float, before: dict, bracket: tuple[float, dict, Trigger]) -> float:
        """The next step while locating a crossing between ``t`` and the bracket's end.

        Regula falsi estimates the crossing; the step aims half a tolerance short of it, so it
        is accepted, and the following step of at most one tolerance then triggers. Trial steps
        stay inside the bracket, which shrinks.
        """
        high, after, trigger = bracket
        width, tolerance = high - t, trigger.tolerance
        below, above = trigger.distance(before), trigger.distance(after)
        offset = width * below / (below - above) if above != below else width / 2
        if offset <= tolerance:
            return min(tolerance, width)
        return min(max(offset - tolerance / 2, 0.05 * width), 0.95 * width)

    def _solve(self, start: float, dt: float, retry: bool) -> SolveReport:
        report = self.stepper.step(start, dt)
        if not report.converged and not retry:
            hint = "; set [time.adaptive] to retry with smaller steps"
            hint = hint if self.time.transient else ""
            raise SolverError(f"the solve failed at t = {start + dt:.6g} s ({report.reason}){hint}")
        return report

    def _cut(self, t: float, step: float, reason: str) -> float:
        adaptive = self.time.adaptive
        dt = step * adaptive.shrink
        self.rejected += 1
        log.warning(
            "step to t = %.6g s rejected (%s); retrying with dt = %.3g s", t + step, reason, dt
        )
        if dt < adaptive.dt_min:
            raise SolverError(
                f"the solve failed at t = {t + step:.6g} s and dt would fall below "
                f"time.adaptive.dt_min = {adaptive.dt_min:g} s ({reason})"
            )
        return dt

    def _resize(self, step: float, error: float, dt_max: float) -> float:
        """Step size from the error estimate (safety 0.9, at most x growth, at least /5)."""
        adaptive = self.time.adaptive
        order = 1 if self.time.scheme == "bdf1" else 2
        factor = 0.9 * error ** (-1.0 / (order + 1)) if error > 0 else adaptive.growth
        dt = step * min(adaptive.growth, max(0.2, factor))
        if dt < adaptive.dt_min:
            raise SolverError(
                f"the error control needs dt < time.adaptive.dt_min = {adaptive.dt_min:g} s"
            )
        return min(dt, dt_max)

    def _next_dt(self, step, dt, report, error, dt_max) -> float:
        adaptive = self.time.adaptive
        if adaptive is None:
            return dt
        if adaptive.rtol:
            return self._resize(step, error, dt_max) if error is not None else dt
        if report.iterations <= adaptive.easy_iterations:
            return min(dt * adaptive.growth, dt_max)
        return dt
