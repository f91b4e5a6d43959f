"""Events and protocols: conditions on quantities that end a step, a protocol stage or the run.

An event is a condition on the quantities (``max_temperature_K > 350``, or in words
``max temperature > 350 K``). The time loop locates the time it becomes true by rejecting the
step that crossed it and interpolating (regula falsi on the signed distance to the threshold),
so the step that triggers it ends within the case's tolerance after the crossing.

A protocol is a list of steps ("Heat at 500 W/m^2 until max temperature > 350 K", "Cool for
10 minutes"), repeated as asked. Each verb is a control the case defines: the constant
parameter it sets, the value it sets when the step gives none, and for bare thresholds
("Discharge at 1C until 2.5 V") the quantity watched and the direction::

    [protocol]
    steps = ["Heat at 500 W/m^2 until max temperature > 350 K", "Cool for 10 minutes"]
    repeat = 3
    controls.Heat = { target = "physics.heat.boundaries.heater.value" }
    controls.Cool = { target = "physics.heat.boundaries.heater.value", value = 0 }

A step with "to" ramps its control instead of setting it ("Ramp to 180 degC at 2 K/min"): the
constant moves linearly from the value it has at the step's start, is set to its value at the
end of every time step (where implicit schemes evaluate the forcing; Crank-Nicolson's old level
reads its value at the step's start, app/timeint.py), and the step ends when it reaches the
target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from app.contracts import Parameters, quantity
from app.errors import CaseError, did_you_mean, listing
from app.expressions import ExpressionError, parse
from app.protocol_sequence import count_steps, expand, parse_protocol
from app.protocols import Condition, ProtocolError, ProtocolStep, parse_step
from app.units import to_si

MAX_STEPS = 100_000


class EventSpec(Parameters):
    """A condition on quantities that ends the run when it becomes true."""

    when: str = Field(description="Condition, e.g. 'max_temperature_K > 350'")
    action: Literal["stop"] = Field("stop", description="What happens: the run stops")
    tolerance: float | None = quantity(
        "s",
        None,
        "How far past the crossing the triggering step may end (default 1e-6 of the run)",
        gt=0,
    )


class ControlSpec(Parameters):
    """What a protocol verb does."""

    target: str = Field(description="Case path of a constant parameter the verb sets")
    value: float | None = Field(None, description="Setting when the step gives no 'at' value")
    scale: float = Field(1.0, description="Factor on the step's value (e.g. -1 for a charge)")
    monitor: str | None = Field(
        None,
        description="Quantity column a bare threshold refers to, or an expression of columns "
        "of one unit ('abs(current_A)': a hold ends at C/20 whether it charges or discharges)",
    )
    stop: Literal["below", "above"] = Field(
        "below", description="A bare threshold ends the step when the monitor falls below/above it"
    )


class ProtocolSpec(Parameters):
    """A sequence of controlled steps with termination conditions, repeated as asked."""

    steps: list[Any] = Field(description="Steps ('Heat at 500 W/m^2 until ...') or repeat tables")
    repeat: int = Field(1, ge=1, description="How many times the whole list runs (cycles)")
    controls: dict[str, ControlSpec] = Field(description="What each verb does")
    capacity: float | None = quantity(
        "A*h", None, "Nominal capacity, for C-rates (default: the parameter set's Q_nom)", gt=0
    )
    tolerance: float | None = quantity(
        "s", None, "How far past a crossing a step may end (default 1e-6 of the run)", gt=0
    )
    _parsed: tuple = PrivateAttr(default=())

    @model_validator(mode="after")
    def _parse(self) -> ProtocolSpec:
        self._parsed = parse_protocol(self.steps, "protocol.steps", verbs=self.controls)
        total = count_steps(self._parsed, self.repeat)
        if total > MAX_STEPS:
            raise CaseError(
                "protocol",
                f"the protocol runs {total:.3g} steps with its repeats; at most {MAX_STEPS:,} "
                "are allowed (each is set up before the run)",
                "repeat fewer times, or split the study into several runs",
            )
        return self

    def stages(self) -> list[tuple[int, int, ProtocolStep]]:
        """(cycle, step index, step) in execution order."""
        return list(expand(self._parsed, self.repeat))


@dataclass
class Trigger:
    """A condition the time loop watches.

    Attributes:
        text: The condition as written.
        columns: Quantity columns it reads.
        distance: Signed distance to the threshold, >= 0 when the condition holds; the time
            loop interpolates it to locate the crossing.
        tolerance: Time within which the triggering step must end after the crossing.
    """

    text: str
    columns: list[str]
    distance: Callable[[Mapping[str, float]], float]
    tolerance: float
    where: str = ""  # in the case file

    def holds(self, values: Mapping[str, float]) -> bool:
        return self.distance(values) >= 0

    def at_start(self, t: float) -> CaseError:
        """The error of an event that holds before the run's first step: it would end the
        run with nothing computed (PyBaMM refuses events already crossed at the start too)."""
        return CaseError(
            self.where,
            f"'{self.text}' holds already at the start (t = {t:g} s), so the run would stop "
            "before its first step",
            "check the threshold and its direction against the initial state (see the first "
            "row of quantities.csv), or remove the event",
        )


def trigger(
    condition: Condition,
    units: Mapping[str, str],
    tolerance: float,
    control: ControlSpec | None = None,
    capacity: float | None = None,
    where: str = "",
) -> Trigger:
    """A trigger for a parsed condition; ``units`` maps every quantity column to its unit."""
    try:
        resolved = condition.resolve(dict(units), capacity)
        if resolved is not None:
            column, operator, threshold = resolved
            columns, watched = [column], itemgetter(column)
        else:  # a bare threshold: the control says what it watches
            if control is None or control.monitor is None:
                raise ProtocolError(
                    f"{condition.text!r} names no quantity, and the control has no 'monitor'"
                )
            columns, watched, monitor_units = _monitor(control.monitor, units)
            operator = "<" if control.stop == "below" else ">"
            threshold = condition.threshold.to(monitor_units, capacity)
    except ProtocolError as exc:
        raise CaseError(where, exc.problem, exc.fix) from None
    sign = 1.0 if operator in (">", ">=") else -1.0
    return Trigger(
        condition.text,
        columns,
        lambda values: sign * (watched(values) - threshold),
        tolerance,
        where,
    )


def _monitor(
    text: str, units: Mapping[str, str]
) -> tuple[list[str], Callable[[Mapping[str, float]], float], str]:
    """The columns a control's monitor reads, its value from them and its unit: a column, or
    an expression of columns that share one unit."""
    if text in units:
        return [text], itemgetter(text), units[text]
    try:
        expression = parse(text)
    except ExpressionError:
        expression = None
    if expression is None or not expression.names or expression.is_boolean:
        raise ProtocolError(
            f"monitor '{text}'{did_you_mean(text, units)} is not a quantity column or an "
            f"expression of columns; columns: {listing(units)}"
        )
    unknown = sorted(expression.names - set(units))
    if unknown:
        raise ProtocolError(
            f"monitor '{text}' reads '{unknown[0]}'{did_you_mean(unknown[0], units)}, which is "
            f"not a quantity column; columns: {listing(units)}"
        )
    names = sorted(expression.names)
    kinds = {units[name] for name in names}
    if len(kinds) > 1:
        raise ProtocolError(
            f"monitor '{text}' mixes columns of different units ({listing(sorted(kinds))}), so "
            "a threshold has no one unit",
            "compare columns of one unit",
        )
    return (
        names,
        lambda values: float(expression.evaluate({name: values[name] for name in names})),
        kinds.pop(),
    )


def step_limits(limits: Mapping[str, float | str], units: Mapping[str, str]) -> dict[str, float]:
    """``[time.adaptive] limits`` in each column's units (a number is in them already); a limit
    is a change, so "5 degC" on a column in K is 5 K.

    Raises:
        CaseError: At ``time.adaptive.limits.<column>``: an unknown column, a value in other
            units, a limit that is not positive.
    """
    resolved = {}
    for name, limit in limits.items():
        where = f"time.adaptive.limits.{name}"
        if name not in units:
            raise CaseError(
                where,
                f"unknown column '{name}'{did_you_mean(name, units)}; columns: {listing(units)}",
            )
        resolved[name] = to_si(limit, units[name], where, difference=True)
        if not resolved[name] > 0:
            raise CaseError(where, f"a limit is positive, got {limit!r}")
    return resolved


def event_trigger(spec: EventSpec, units: Mapping[str, str], tolerance: float, where: str):
    """The trigger of a case event (``when`` parsed like a protocol's 'until' condition)."""
    try:
        condition = parse_step(f"Event until {spec.when}").until
    except ProtocolError as exc:
        raise CaseError(f"{where}.when", exc.problem, exc.fix) from None
    return trigger(condition, units, spec.tolerance or tolerance, where=f"{where}.when")


@dataclass
class Ramp:
    """A constant moved linearly in time to a target, at a rate or over a duration.

    Attributes:
        constant: What it sets (a fem.Constant or an object with a settable ``value``).
        target: The value it ends at, in the parameter's unit.
        rate: Its speed in the parameter's unit per second; None: over ``duration``.
        duration: The time the ramp takes when it has no rate [s].
    """

    constant: Any
    target: float
    rate: float | None
    duration: float | None = None
    _start: float = 0.0
    _started: float = 0.0
    _time: float = 0.0

    def begin(self, started: float, now: float) -> float:
        """Take the ramp up at ``now``, in a step that began at ``started`` (later when resumed
        from a checkpoint: the constant then holds its value at ``now``); returns the time the
        ramp takes from ``started``."""
        value, elapsed = float(np.asarray(self.constant.value)), now - started
        if self.rate is None:
            done = min(elapsed / self.duration, 1.0)
            self._start = value if done == 0 else (value - done * self.target) / (1 - done or 1)
            self._time = self.duration
        else:
            direction = np.sign(self.target - value)
            self._start = value - direction * self.rate * elapsed
            self._time = abs(self.target - self._start) / self.rate
        self._started = started
        return self._time

    def value_at(self, t: float) -> float:
        """The setting at time t (the target once reached)."""
        if self._time <= 0:
            return self.target
        done = min(max((t - self._started) / self._time, 0.0), 1.0)
        return self._start + done * (self.target - self._start)


@dataclass
class Stage:
    """One protocol step as executed: what it sets or ramps, and where it sits in the protocol."""

    text: str
    cycle: int
    index: int
    settings: list[tuple[Any, float]]  # (fem.Constant, value in the parameter's unit)
    ramps: list[Ramp] = field(default_factory=list)

    def __str__(self) -> str:
        return repr(self.text)


def early_end(event: Trigger, t: float, stage: Stage, later: bool) -> str:
    """The protocol step a case event cut short (PyBaMM calls such an experiment infeasible):
    said plainly, since the results stop there."""
    return (
        f"the event '{event.text}' ended the run at t = {t:.6g} s, during protocol step "
        f"{stage.index} (cycle {stage.cycle}): {stage.text}"
        + ("; the protocol's later steps were not run" if later else "")
    )


def protocol_stages(
    spec: ProtocolSpec,
    constant_at: Callable[[str], tuple[Any, str]],
    units: Mapping[str, str],
    tolerance: float,
    capacity: float | None = None,
) -> list[tuple[Stage, float | None, Trigger | None]]:
    """Resolve every step of the protocol: the constant each control sets and the value, the
    duration limit, and the trigger of its 'until' condition.

    Args:
        spec: The case's protocol.
        constant_at: Case path of a constant parameter -> (what sets it: its fem.Constant, or an
            object with a ``value`` that does more, such as switching a control mode; its unit).
        units: Unit of every quantity column.
        tolerance: Default time tolerance of the conditions.
        capacity: Nominal capacity [A h] C-rates refer to (default: the protocol's).
    """
    capacity = spec.capacity if capacity is None else capacity
    stages = []
    for cycle, index, step in spec.stages():
        control = spec.controls[step.verb]
        constant, target_units = constant_at(control.target)
        where = f"protocol.steps (step {step.text!r})"
        if step.to is not None:
            ramp = _ramp(step, control, constant, target_units, where)
            until = None
            if step.until is not None:
                until = trigger(
                    step.until, units, spec.tolerance or tolerance, control, capacity, where
                )
            stage = Stage(step.text, cycle, index, [], [ramp])
            stages.append((stage, step.duration if ramp.rate else None, until))
            continue
        if step.value is not None:
            try:
                value = control.scale * step.value.to(target_units, capacity)
            except ProtocolError as exc:
                raise CaseError(where, exc.problem, exc.fix) from None
        elif control.value is not None:
            value = control.value
        else:
            raise CaseError(
                f"protocol.controls.{step.verb}",
                f"step {step.text!r} gives no 'at' value and the control has no 'value'",
            )
        until = None
        if step.until is not None:
            until = trigger(
                step.until, units, spec.tolerance or tolerance, control, capacity, where
            )
        stages.append((Stage(step.text, cycle, index, [(constant, value)]), step.duration, until))
    return stages


def _ramp(step: ProtocolStep, control: ControlSpec, constant: Any, units: str, where: str) -> Ramp:
    """The ramp of a step with 'to': its target and rate in the parameter's units."""
    try:
        target = control.scale * step.to.to(units)
        if step.value is None:
            return Ramp(constant, target, None, step.duration)
        per_second = f"{units}/s" if units.isidentifier() else f"({units})/s"
        rate = abs(control.scale * step.value.to(per_second))
    except ProtocolError as exc:
        raise CaseError(where, exc.problem, exc.fix) from None
    if not 0 < rate < math.inf:
        raise CaseError(where, f"the ramp rate {step.value} is not positive", "give a rate > 0")
    return Ramp(constant, target, rate)


class StageSettings:
    """Every constant a protocol's stages set, as a checkpoint part (app/checkpoint.py): a
    restart within stage k needs the values stages 0..k left, including those of constants
    stage k does not set."""

    def __init__(self, stages: list[tuple[Stage, float | None, Trigger | None]] | None):
        unique: dict[int, Any] = {}
        for stage, _, _ in stages or []:
            for constant in [c for c, _ in stage.settings] + [r.constant for r in stage.ramps]:
                unique.setdefault(id(constant), constant)
        self.constants = list(unique.values())

    def state(self) -> dict[str, Any]:
        return {"values": [np.asarray(c.value, dtype=float).tolist() for c in self.constants]}

    def restore(self, state: dict[str, Any]) -> None:
        for constant, value in zip(self.constants, state["values"], strict=True):
            constant.value = value
