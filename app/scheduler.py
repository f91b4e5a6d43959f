"""The time loop: steps from start to end, hitting every output time exactly.

Step control, in order of precedence:
- a failed solve (divergence, non-finite values, fixed-point iterations that do not converge)
  is rejected and retried with a smaller step (adaptive cases) or ends the run;
- with ``[time.adaptive] rtol/atol`` (the fields) or ``tolerances`` (quantity columns:
  ``voltage_V = "0.1 mV"``) the local truncation error of each step (Milne's device) decides
  acceptance and the next step size (app/step_control.py); otherwise the step grows after easy
  Newton solves;
- ``[time.adaptive] limits`` bound the change of quantities over one step (``voltage_V =
  "10 mV"``): a step that changes one by more is retried shorter, and the next step is sized
  for the limit at the last step's rate (it refines a battery's first seconds and its knee);
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
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from tqdm import tqdm

from app import step_control as control
from app.errors import Diverged, SolverError
from app.events import Trigger, early_end
from app.output_times import OutputTimes
from app.solve_system import SolveReport

log = logging.getLogger("scalebridge")


class Stepper(Protocol):
    """What the time loop drives (the simulation)."""

    def initialise(self, start: bool = True) -> None: ...
    def step(self, start: float, dt: float) -> SolveReport: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def restart(self) -> None: ...
    def error(self) -> float | None: ...
    def change(self) -> float: ...
    def values(self, columns: list[str]) -> dict[str, float]: ...
    def apply(self, stage: Any, started: float) -> float | None: ...


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


@dataclass
class LoopState:
    """Where the time loop stands between two steps: everything it needs to go on exactly as
    if it had never stopped (a checkpoint holds it; see :meth:`TimeLoop.state`).

    Attributes:
        t: The time reached.
        dt: The next step size the controller proposes.
        stage: The protocol stage being run (0 without a protocol).
        stage_start: When that stage began.
        entered: The stage's settings are applied and its conditions checked at its start.
        before: The watched quantity columns at ``t``.
        bracket: A crossing being located: [end of the rejected step, the watched columns
            there, index of the trigger among the stage's triggers].
        scale: |value| + |distance to the threshold| of an unbounded stage's watched quantity
            at its first step (the runaway check).
        recent: The accepted (time, columns) of ``[time.adaptive] tolerances`` since the
            scheme last started, newest first (their error estimate).
        steps: Accepted steps so far.
        rejected: Rejected steps so far.
        last_output: The time of the last row written.
        fired: The event that stopped the run.
        done: The run reached its end (time.end, the protocol's end or an event).
    """

    t: float
    dt: float
    stage: int = 0
    stage_start: float = 0.0
    entered: bool = False
    before: dict[str, float] = field(default_factory=dict)
    bracket: list | None = None
    scale: float | None = None
    recent: list = field(default_factory=list)
    steps: int = 0
    rejected: int = 0
    last_output: float | None = None
    fired: str | None = None
    done: bool = False


class TimeLoop:
    """Drive a simulation through time.

    Args:
        time: The case's ``[time]`` section.
        output: The case's ``[output]`` section.
        stepper: The simulation.
        events: Triggers that stop the run.
        stages: Protocol stages: (stage object applied by the stepper, duration or None,
            trigger or None); None without a protocol.
        progress: Show a progress bar (rank 0, on a terminal, runs longer than a few seconds).
        comm: The communicator.
        record: Writes the output row (and fields) of the current state: ``record(t, dt,
            report)``.
        boundary: Called before every step, where :meth:`state` is complete (checkpoints,
            stop requests; app/runner.py).
        limits: Largest change of a quantity column over one step, by column (its units).
        tolerances: Local error tolerance of a quantity column over one step (its units).
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
        record: Callable[[float, float, SolveReport | None], None],
        boundary: Callable[[], None] | None = None,
        limits: dict[str, float] | None = None,
        tolerances: dict[str, float] | None = None,
    ):
        self.time, self.output, self.stepper = time, output, stepper
        self._write = record
        self.limits = limits or {}
        self.tolerances = tolerances or {}
        adaptive = time.adaptive
        self._controlled = adaptive is not None and bool(adaptive.rtol or self.tolerances)
        # equal parts before a landing, growth from the proposal, time.dt after a restart:
        self._landing = bool(self.tolerances)  # quantity tolerances only (see SCALING.md)
        self.events, self.stages = events, stages
        # a bar only on a terminal: in a log file or a pipe its redraws are noise, and it would
        # interleave with the one-line error a failed run ends with
        self._progress = progress and comm.rank == 0 and sys.stderr.isatty()
        self._boundary = boundary
        self.position = LoopState(time.start, time.dt or 0.0)
        self._resumed = False
        self._unbounded: Unbounded | None = None
        self._triggers: list[Trigger] = []
        self._failure: tuple[float, SolveReport] | None = None  # first failed try of a step

    @property
    def steps(self) -> int:
        return self.position.steps

    @property
    def rejected(self) -> int:
        return self.position.rejected

    @property
    def fired(self) -> str | None:
        """The event that stopped the run."""
        return self.position.fired

    def state(self) -> dict[str, Any]:
        """The loop's part of a checkpoint (app/checkpoint.py)."""
        return asdict(self.position)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's :meth:`state` (the next :meth:`run` resumes there)."""
        self.position = LoopState(**state)
        self._resumed = True

    def run(self) -> None:
        time = self.time
        if time.end is None and self.stages is None:
            report = self._solve(time.start, time.dt or 0.0, retry=False)
            self._record(time.start, 0.0, report)
            self.stepper.commit()
            self.position.done = True
            return
        end = time.end if time.end is not None else math.inf
        position = self.position
        stages = self.stages or [(None, None, None)]
        if not self._resumed:
            if self.stages:  # the first row shows the state at the first step's settings
                self.stepper.apply(self.stages[0][0], time.start)
            self.stepper.initialise()  # before anything reads the state at the start
            if time.transient:
                self._record(time.start, 0.0, None)
        self._outputs = OutputTimes(time.start, end, self.output.interval, self.output.times)
        self._breaks = [b for b in time.breakpoints if time.start < b < end]
        if any(b > end for b in time.breakpoints) and not self._resumed:
            log.info("time.breakpoints after the end at %.6g s are not reached", end)
        bounded = math.isfinite(end)  # else the protocol's conditions end it: no total to show
        with tqdm(
            total=end - time.start if bounded else None,
            initial=position.t - time.start,
            unit="s",
            delay=3,
            disable=not self._progress,
            bar_format="{l_bar}{bar}| t={n:.4g}/{total:.4g} s [{elapsed}<{remaining}{postfix}]"
            if bounded
            else "t={n:.4g} s [{elapsed}{postfix}]",
        ) as self._bar:
            while position.stage < len(stages) and position.fired is None:
                stage, duration, until = stages[position.stage]
                ramp_time = None
                if stage is not None:  # resumed within it: its settings again
                    started = position.stage_start if position.entered else position.t
                    ramp_time = self.stepper.apply(stage, started)
                    if position.stage > 0 and not position.entered:
                        self.stepper.restart()  # the forcing jumps at a stage change
                        # ... and with it the fields without a time derivative (potentials)
                        self.stepper.initialise(start=False)
                if not position.entered:
                    position.stage_start = position.t
                stage_end = end
                for limit in (duration, ramp_time):
                    if limit is not None:
                        stage_end = min(position.stage_start + limit, stage_end)
                self._triggers = [*([until] if until else []), *self.events]
                self._unbounded = None if math.isfinite(stage_end) else Unbounded(stage, until)
                fired = self._march(stage_end)
                if fired in self.events:
                    position.fired = fired.text
                    if stage is not None:
                        later = position.stage + 1 < len(stages)
                        log.warning("%s", early_end(fired, position.t, stage, later))
                if position.fired or position.t >= end - self._tolerance(end):
                    break
                position.stage += 1
                position.entered = False
        position.done = True

    def _tolerance(self, end: float) -> float:
        return 1e-9 * max(abs(end) if math.isfinite(end) else 1.0, self.time.dt or 1.0)

    def _record(self, t: float, step: float, report: SolveReport | None) -> None:
        """Write the row (and fields) at ``t``; a non-finite value is reported with the step
        and the last good output time, and nothing of it is written."""
        try:
            self._write(t, step, report)
        except Diverged as exc:
            last = self.position.last_output
            raise Diverged(
                f"{exc} in step {self.position.steps}"
                + ("" if last is None else f"; the last good output is at t = {last:.6g} s")
            ) from None
        self.position.last_output = t

    def _march(self, end: float) -> Trigger | None:
        """Step until ``end`` or until a trigger holds (returned)."""
        time, adaptive, position = self.time, self.time.adaptive, self.position
        triggers = self._triggers
        dt_max = adaptive.dt_max if adaptive and adaptive.dt_max else end - time.start
        tolerance = self._tolerance(end)
        stops = sorted({*(s for s in self._breaks if position.t < s < end), end})
        columns = {*(c for trigger in triggers for c in trigger.columns), *self.limits}
        columns = sorted(columns | set(self.tolerances))
        if not position.entered:
            position.before = self.stepper.values(columns) if columns else {}
            self._restarted(position.t, position.before)
            position.bracket, position.scale, position.entered = None, None, True
            for trigger in triggers:
                if trigger.holds(position.before):
                    if trigger.where.startswith("events") and not position.steps:
                        raise trigger.at_start(position.t)
                    log.info("'%s' holds at t = %.6g s", trigger.text, position.t)
                    return trigger
        while position.t < end - tolerance:
            if self._boundary is not None:
                self._boundary()
            self._check_step_count(end)
            t, bracket = position.t, position.bracket
            target = next((s for s in stops if s > t + tolerance), end)
            target = min(target, self._outputs.after(t, tolerance))
            if bracket is not None:
                target = min(target, bracket[0])
            step = control.landing_step(t, position.dt, target, tolerance, self._landing)
            if bracket is not None:
                step = self._trial(t, position.before, bracket)
            if not math.isfinite(t + step):  # dt grew without bound, and nothing ended the run
                raise SolverError(
                    f"the time step grew without bound at t = {t:.6g} s and nothing ended the "
                    "run; set time.end or time.adaptive.dt_max"
                )
            report = self._solve(t, step, retry=adaptive is not None)
            if not report.converged:
                position.dt = self._cut(t, step, report)
                continue
            after = self.stepper.values(columns) if columns else {}
            error = self._error(t + step, after)
            if error is not None and error > 1:
                self.stepper.rollback()
                position.rejected += 1
                position.dt = self._resize(step, step, error, dt_max)
                log.info(
                    "step to t = %.6g s rejected: error %.2f; dt -> %.3g s",
                    t + step,
                    error,
                    position.dt,
                )
                continue
            column, excess = control.limit_excess(self.limits, position.before, after)
            if excess > 1 and bracket is None:
                self.stepper.rollback()
                position.rejected += 1
                position.dt = control.limited_step(t, step, excess, adaptive.dt_min)
                log.info(
                    "step to t = %.6g s changed %s by %.3g (limit %.3g); dt -> %.3g s",
                    t + step,
                    column,
                    abs(after[column] - position.before[column]),
                    self.limits[column],
                    position.dt,
                )
                continue
            fired = next((trig for trig in triggers if trig.holds(after)), None)
            if fired is not None and step > fired.tolerance:
                self.stepper.rollback()  # locate the crossing before taking the step
                position.bracket = [t + step, after, triggers.index(fired)]
                continue
            t = target if abs(target - (t + step)) <= tolerance else t + step
            position.t = t
            position.steps += 1
            self._failure = None
            # Outputs first: reactions need the step's residual, before the history shifts.
            if (
                self._outputs.every_step
                or fired is not None
                or self._outputs.hits(t, tolerance)
                or any(abs(t - s) <= tolerance for s in stops)
            ):
                self._record(t, step, report)
            if fired is None and self._unbounded is not None:
                self._check_progress(t, after)
            self.stepper.commit()
            position.recent = [[t, {c: after[c] for c in self.tolerances}], *position.recent][:4]
            if any(abs(t - b) <= tolerance for b in self._breaks):
                self.stepper.restart()
                self.stepper.initialise(start=False)
                self._restarted(t, self.stepper.values(columns) if columns else {})
            if bracket is None:
                position.dt = self._next_dt(step, position.dt, report, error, dt_max)
                if excess > 0:  # the next step at the last one's rate stays within the limits
                    position.dt = min(position.dt, control.SAFETY * step / excess)
            elif fired is None and t >= bracket[0] - tolerance:
                position.bracket = None
            position.before = after
            self._bar.update(step)
            self._bar.set_postfix_str(f"dt={step:.3g} s", refresh=False)
            if fired is not None:
                log.info("'%s' at t = %.9g s", fired.text, t)
                return fired
        return None

    def _check_step_count(self, end: float) -> None:
        """End a run that has tried ``time.max_steps`` steps: a step size that collapsed (cut
        on failures and never grown again, or held short by a limit) would otherwise step on
        for days with nothing to show."""
        position, limit = self.position, self.time.max_steps
        if position.steps + position.rejected < limit:
            return
        until = f" of {end:g} s" if math.isfinite(end) else ""
        raise SolverError(
            f"the run tried time.max_steps = {limit} steps ({position.rejected} of them "
            f"rejected) and reached t = {position.t:.6g} s{until}, with steps of "
            f"{position.dt:.3g} s at the end; raise time.max_steps if the run needs that many, "
            "else find what keeps the steps short (time.adaptive settings, the run log)"
        )

    def _check_progress(self, t: float, values: dict) -> None:
        """End a stage that only its condition can end once the condition can no longer be
        met: the solution stopped changing (a steady state), or the watched quantity ran away
        from the threshold (RUNAWAY times its scale at the stage's start)."""
        unbounded, position = self._unbounded, self.position
        distance = unbounded.until.distance(values)
        if position.scale is None:
            value = values[unbounded.until.columns[0]]
            position.scale = abs(value) + abs(distance)
        if self.stepper.change() <= STEADY_CHANGE:
            reason = f"the solution stopped changing at t = {t:.6g} s"
        elif position.scale > 0 and -distance > RUNAWAY * position.scale:
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

    def _trial(self, t: float, before: dict, bracket: list) -> float:
        """The next step while locating a crossing between ``t`` and the bracket's end.

        Regula falsi estimates the crossing; the step aims half a tolerance short of it, so it
        is accepted, and the following step of at most one tolerance then triggers. Trial steps
        stay inside the bracket, which shrinks.
        """
        high, after, index = bracket
        trigger = self._triggers[index]
        width, tolerance = high - t, trigger.tolerance
        below, above = trigger.distance(before), trigger.distance(after)
        offset = width * below / (below - above) if above != below else width / 2
        if offset <= tolerance:
            return min(tolerance, width)
        return min(max(offset - tolerance / 2, 0.05 * width), 0.95 * width)

    def _solve(self, start: float, dt: float, retry: bool) -> SolveReport:
        report = self.stepper.step(start, dt)
        if report.non_finite and self._failure is None:
            self._failure = (start + dt, report)
        if not report.converged and not retry:
            hint = "; set [time.adaptive] to retry with smaller steps"
            hint = hint if self.time.transient else ""
            self._give_up(f"the solve failed at t = {start + dt:.6g} s ({report.reason}){hint}")
        return report

    def _give_up(self, message: str) -> None:
        """End the run on the step that failed for good: as divergence, with where the first
        non-finite value of its tries appeared, when one did."""
        if self._failure is None:
            raise SolverError(message)
        when, report = self._failure
        last = self.position.last_output
        raise Diverged(
            f"the solution diverged in step {self.position.steps + 1}: at t = {when:.6g} s "
            f"{report.non_finite}; {message}"
            + ("" if last is None else f"; the last good output is at t = {last:.6g} s")
        )

    def _cut(self, t: float, step: float, report: SolveReport) -> float:
        adaptive = self.time.adaptive
        dt = step * adaptive.shrink
        self.position.rejected += 1
        log.warning(
            "step to t = %.6g s rejected (%s); retrying with dt = %.3g s",
            t + step,
            report.reason,
            dt,
        )
        if dt < adaptive.dt_min:
            self._give_up(
                f"the solve failed at t = {t + step:.6g} s and dt would fall below "
                f"time.adaptive.dt_min = {adaptive.dt_min:g} s ({report.reason})"
            )
        return dt

    def _restarted(self, t: float, values: dict) -> None:
        """The scheme starts again at ``t`` (the run's or a stage's start, a breakpoint): the
        quantities' error is estimated from the values there on, their steps from time.dt."""
        self.position.recent = [[t, {c: values[c] for c in self.tolerances}]]
        if self._landing:
            self.position.dt = min(self.position.dt, self.time.dt)

    def _error(self, t: float, values: dict) -> float | None:
        """The step's estimated local error relative to its tolerances (the largest of the
        fields' and the quantities'); None without error control or an estimate yet."""
        adaptive = self.time.adaptive
        errors = [self.stepper.error() if adaptive and adaptive.rtol else None]
        if self.tolerances:
            recent, scheme = self.position.recent, self.time.scheme
            errors.append(control.quantity_error(recent, t, values, self.tolerances, scheme))
        known = [error for error in errors if error is not None]
        return control.rounded(max(known)) if known else None

    def _resize(self, step: float, proposal: float, error: float, dt_max: float) -> float:
        """Step size from the error estimate (app/step_control.py)."""
        order = 1 if self.time.scheme == "bdf1" else 2
        return min(control.resized(step, proposal, error, order, self.time.adaptive), dt_max)

    def _next_dt(self, step, dt, report, error, dt_max) -> float:
        adaptive = self.time.adaptive
        if adaptive is None:
            return dt
        if self._controlled:
            proposal = dt if self._landing else step
            return self._resize(step, proposal, error, dt_max) if error is not None else dt
        if report.iterations - report.kept_jacobian_iterations <= adaptive.easy_iterations:
            return min(dt * adaptive.growth, dt_max)
        return dt
