"""The ``[time]`` section of a case: its scheme, span, step, adaptive control and breakpoints.

Times are in seconds: numbers, strings with units or expressions of the parameter set's
constants, converted by :func:`times_in_seconds`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from app.contracts import Parameters, quantity
from app.errors import CaseError
from app.parameters import constant_value

log = logging.getLogger("scalebridge")


class AdaptiveSpec(Parameters):
    """Adaptive time stepping: dt grows after easy steps and shrinks on failure."""

    dt_min: float = quantity("s", 1e-9, "Smallest time step before the run gives up", gt=0)
    dt_max: float | None = quantity("s", None, "Largest time step (default: the run length)", gt=0)
    growth: float = Field(1.5, gt=1, description="Factor dt grows by after an easy step")
    shrink: float = Field(0.5, gt=0, lt=1, description="Factor dt shrinks by after a failure")
    easy_iterations: int = Field(
        4, ge=1, description="A step whose Newton solve took at most this many iterations is easy"
    )
    rtol: float | None = Field(
        None, gt=0, description="Relative local-error tolerance; set it for error-based control"
    )
    atol: float = Field(1e-8, gt=0, description="Absolute local-error tolerance (field units)")
    limits: dict[str, float | str] = Field(
        default_factory=dict,
        description='Largest change of a quantity over one step, by column ("voltage_V = '
        '"10 mV""; a number is in the column\'s units)',
    )
    tolerances: dict[str, float | str] = Field(
        default_factory=dict,
        description='Local error tolerance of a quantity over one step, by column ("voltage_V '
        '= "0.1 mV""): steps are sized for it as for rtol/atol (app/step_control.py)',
    )


class TimeSpec(Parameters):
    """Time discretisation. ``steady`` without ``end`` is a single steady solve; with ``end``
    and ``dt`` it is a sequence of steady solves (quasi-static loading)."""

    scheme: Literal["steady", "bdf1", "bdf2", "cn"] = Field(
        "steady", description="Time scheme (cn: Crank-Nicolson)"
    )
    start: float = quantity("s", 0.0, "Start time")
    end: float | None = quantity("s", None, "End time")
    dt: float | None = quantity("s", None, "Time step (the first one when adaptive)", gt=0)
    adaptive: AdaptiveSpec | None = Field(None, description="Adaptive time-step control")
    breakpoints: list[float] = Field(
        default_factory=list,
        description="Times where the forcing jumps: steps end there and BDF2 restarts with BDF1",
    )
    max_steps: int = Field(
        100_000,
        ge=1,
        description="Steps tried (accepted and rejected) before the run stops, as MOOSE's "
        "num_steps: a step size far off the run's scale, or one the controller cut and never "
        "grew again, ends the run saying so instead of stepping for days",
    )

    @field_validator("breakpoints", mode="before")
    @classmethod
    def _breakpoints_with_units(cls, raw: Any) -> Any:
        return times_in_seconds(raw, "time.breakpoints")

    @model_validator(mode="after")
    def _needs_a_step(self) -> TimeSpec:
        if self.end is not None and not self.end > self.start:
            raise CaseError(
                "time.end",
                f"the run ends at {self.end:g} s, not after its start at {self.start:g} s",
            )
        if self.dt is None and (self.transient or self.end is not None):
            stepping = f"the {self.scheme} scheme" if self.transient else "a steady run with 'end'"
            raise CaseError(
                "time.dt",
                f"{stepping} needs a time step, and none is given",
                'give dt = "1 min" (the first step when [time.adaptive] is set)',
            )
        return self

    @model_validator(mode="after")
    def _tolerances_need_a_scheme(self) -> TimeSpec:
        if self.adaptive and self.adaptive.tolerances and not self.transient:
            raise CaseError(
                "time.adaptive.tolerances",
                "a steady run has no local time error to control",
                "remove tolerances, or give a time scheme (bdf1, bdf2, cn)",
            )
        return self

    @model_validator(mode="after")
    def _breakpoints_after_the_start(self) -> TimeSpec:
        # Before the start a breakpoint can only be a slip (a sign, a unit): the stepper would
        # skip it, and the jump it marks would go unnoticed. After the end it is left out, as
        # the scheduler says: a run shortened with --set time.end never reaches it.
        for index, point in enumerate(self.breakpoints):
            if point < self.start:
                raise CaseError(
                    f"time.breakpoints[{index}]",
                    f"{point:g} s is before the run's start at {self.start:g} s",
                    "give breakpoints after time.start, or remove this one (a time before the "
                    "run is never reached)",
                )
        return self

    @model_validator(mode="after")
    def _steps_within_max_steps(self) -> TimeSpec:
        if self.end is None or self.dt is None or self.adaptive is not None:
            return self
        steps = (self.end - self.start) / self.dt
        if steps > self.max_steps:
            raise CaseError(
                "time.dt",
                f"{steps:.3g} steps of {self.dt:g} s from {self.start:g} s to {self.end:g} s "
                f"are more than time.max_steps = {self.max_steps}",
                "give a time step on the run's scale, set [time.adaptive] to let it grow, or "
                "raise time.max_steps when the run needs that many",
            )
        return self

    @property
    def transient(self) -> bool:
        return self.scheme != "steady"

    @property
    def implicitly_steady_sequence(self) -> bool:
        """Steps in time without a scheme written: steady solves whether meant or not."""
        return self.end is not None and "scheme" not in self.model_fields_set


def warn_dropped_time_derivatives(
    spec: TimeSpec, collect: Callable[[str], Mapping[str, Mapping[str, Any]]]
) -> None:
    """Say which fields lose their time derivative in a sequence of steady solves that no
    ``scheme`` asked for. A plug-in declares a time derivative by a capacity or a storage;
    ``collect(method)`` asks every instance for one of them.

    Quasi-static loading is a legitimate model (mechanics, or heat in equilibrium at each
    load), so this warns instead of refusing; writing ``scheme = "steady"`` says it is meant.
    """
    if not spec.implicitly_steady_sequence:
        return
    capacities, storages = collect("capacity"), collect("storage")
    dropped = {
        instance: sorted({*capacities[instance], *storages[instance]})
        for instance in capacities
        if capacities[instance] or storages[instance]
    }
    if not dropped:
        return
    fields = "; ".join(f"physics.{name}: {', '.join(found)}" for name, found in dropped.items())
    log.warning(
        "time.scheme: not given, so time.end and time.dt make a sequence of steady solves, which "
        "drop the time derivatives of %s: their initial values and capacities are not used and "
        'each step is the steady state of its loads. Fix: scheme = "bdf1" or "bdf2" for a '
        'transient run; scheme = "steady" to keep the steady sequence (quasi-static loading) '
        "without this warning",
        fields,
    )


def times_in_seconds(raw: Any, path: str) -> Any:
    """A list of times in seconds, each a number, a string with units or an expression of the
    parameter set's constants (as ``time.end`` may be: "0.05*t_c")."""
    if not isinstance(raw, list):
        return raw  # pydantic says what is wrong with it
    return [constant_value(item, "s", f"{path}[{index}]") for index, item in enumerate(raw)]
