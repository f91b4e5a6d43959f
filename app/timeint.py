"""Time discretisation: how each scheme turns the plug-ins' equations into a step's residual.

A group (app/groups.py) collects, for each field it solves, one :class:`Row`: the steady operator
F(u, t; v) of that field's equations and the terms under the time derivative the plug-ins declare
(a capacity C du/dt, or a storage d(amount)/dt). This module says how a scheme combines them; the
group splits the result into blocks and app/solvers.py solves it.

Variable-step BDF, with omega = dt_n / dt_{n-1}::

    BDF1:  C (u - u_n)/dt + F(u, t) = 0
    BDF2:  C [ (1+2w)/(1+w) u - (1+w) u_n + w^2/(1+w) u_{n-1} ]/dt + F(u, t) = 0

and Crank-Nicolson, the one-step second-order scheme operator splitting needs (a multistep
history would span split steps whose frozen partner fields differ)::

    CN:    C (u - u_n)/dt + [F(u, t) + F(u_n, t_n)]/2 = 0

F(u_n, t_n) reads every constant a run changes between steps (protocol controls, the
parameter set's constants) at its value at the step's start (:class:`StartValues`): a ramp
sets its constant to the step's end value, and reading that at both levels would make the
average first order in time.

A storage discretises d(amount)/dt the same way, with the amount at earlier levels built from
the earlier values of every solved field and of t. The rows of fields without a time derivative
(potentials, constraints) are F(u, t) = 0 at the new level under every scheme: averaging them
over the step, as CN does with the others, would satisfy them only on average and let such a
field oscillate from one step to the next.

The coefficients and dt are ``fem.Constant`` objects, so changing the step never recompiles a
form, and an operator that depends on them is re-assembled only when their values change. BDF2
takes a BDF1 first step (no u_{n-1} yet); the global error stays second order.

Internal variables that relax (dy/dt = (target - y)/tau, a Maxwell branch) use the same rate,
solved for the new value (:meth:`TimeScheme.relax`).

:meth:`TimeScheme.semi_discrete` gives the same rows at an instant, C w + F(u, t), with w = du/dt
an unknown of its own: app/rates.py solves it for the flows a row reports at its time (CN's step
residual is the average over the step, and the first row has no step).

Each group of the coupling has its own scheme (its own time level, step and history), which is
what operator splitting and sub-cycling need. The local truncation error of a step is estimated
by Milne's device: the difference between the solution and the polynomial extrapolation of the
history through the new time, scaled by the ratio of the two methods' error constants.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import ufl
from dolfinx import fem
from ufl.algorithms.analysis import extract_constants
from ufl.algorithms.map_integrands import map_integrands
from ufl.domain import extract_unique_domain

from app.fields import Field

ORDERS = {"steady": 0, "bdf1": 1, "bdf2": 2, "cn": 1}  # history levels the rate uses
ACCURACY = {"steady": 0, "bdf1": 1, "bdf2": 2, "cn": 2}  # order of accuracy in time
PREDICTOR_LEVELS = {"linear": 2, "quadratic": 3}  # accepted levels Newton's predictor reads


class StartValues:
    """The constants a run changes between steps, each with a twin holding its value at the
    step's start (what Crank-Nicolson's old level reads)."""

    def __init__(self) -> None:
        self.twins: dict[Any, fem.Constant] = {}
        self._read: dict[Any, fem.Constant] = {}  # the twins some old level reads

    def track(self, constant: fem.Constant) -> None:
        if constant not in self.twins:
            domain = extract_unique_domain(constant)
            self.twins[constant] = fem.Constant(domain, constant.value.copy())

    def old_level(self, form: ufl.Form) -> dict[Any, fem.Constant]:
        """The twins of the tracked constants ``form`` reads (recorded before every step)."""
        read = {c: self.twins[c] for c in extract_constants(form) if c in self.twins}
        self._read |= read
        return read

    def record(self) -> None:
        """Take the present values of the constants an old level reads as the start values of
        the next step (none under BDF: a step over every parameter-set constant for nothing)."""
        for constant, twin in self._read.items():
            twin.value = constant.value


@dataclass
class TimeTerm:
    """A term under the time derivative in one field's row.

    Attributes:
        field: The field whose rate it is.
        kind: "capacity": ``expression * du/dt``; "storage": ``d(expression)/dt``.
        expression: The coefficient, or the amount stored.
        test: The field's test function.
        measure: Where the field lives (cells, a region or a boundary).
    """

    field: Field
    kind: Literal["capacity", "storage"]
    expression: Any
    test: Any
    measure: Any

    def weak(self, rate: Any) -> ufl.Form:
        """The term in the row, given the rate (of the field, or of the amount stored)."""
        value = self.expression * rate if self.kind == "capacity" else rate
        return ufl.inner(value, self.test) * self.measure


@dataclass
class Row:
    """The equations of one solved field before time discretisation.

    Attributes:
        field: The field (its test function picks the row).
        operator: The steady operator F(u, t; v) in this row (None if only time terms).
        terms: Terms under the time derivative; none for a field without one.
    """

    field: Field
    operator: ufl.Form | None
    terms: list[TimeTerm] = dataclasses.field(default_factory=list)

    @property
    def transient(self) -> bool:
        return bool(self.terms)


@dataclass(frozen=True)
class SchemeState:
    """What a rejected step must restore: time levels and step counters."""

    time: float
    accepted_steps: int
    last_dt: float | None
    times: tuple[float, ...]


class TimeScheme:
    """BDF coefficients, time and step size of one group.

    Args:
        mesh: Mesh the constants live on (the integration domain of the forms).
        scheme: "steady", "bdf1", "bdf2" or "cn".
        start: Initial time [s].
    """

    def __init__(self, mesh: Any, scheme: str, start: float = 0.0):
        self.scheme = scheme
        self.start = start
        self.order = ORDERS[scheme]
        self.accuracy = ACCURACY[scheme]
        self.theta = 0.5 if scheme == "cn" else 1.0  # weight of the new time level in F
        self.t = fem.Constant(mesh, np.float64(start))
        self.t_old = fem.Constant(mesh, np.float64(start))  # time of u_n
        self.t_older = fem.Constant(mesh, np.float64(start))  # time of u_{n-1}
        self.dt = fem.Constant(mesh, np.float64(1.0))
        self._coefficients = [fem.Constant(mesh, np.float64(0.0)) for _ in range(3)]
        self._combinations: dict[Field, fem.Function] = {}  # see capacity_rate
        self.reset()

    def reset(self) -> None:
        """The state at the start time: no history, the constants as first created (another
        run from the initial state computes exactly what a new scheme would)."""
        for constant in (self.t, self.t_old, self.t_older):
            constant.value = self.start
        self.dt.value = 1.0
        for constant in self._coefficients:
            constant.value = 0.0
        self.accepted_steps = 0
        self.last_dt: float | None = None
        self.times: tuple[float, ...] = (self.start,)  # times of u_n, u_{n-1}, ... newest first

    @property
    def transient(self) -> bool:
        return self.order > 0

    @property
    def time(self) -> float:
        return float(self.t.value)

    def constants(self) -> tuple[fem.Constant, ...]:
        """The constants the scheme sets at every step (time levels, dt, coefficients)."""
        return (self.t, self.t_old, self.t_older, self.dt, *self._coefficients)

    def new_level_coefficient(self) -> float:
        """alpha/dt: the factor of the new level in du/dt (0 without a time derivative), by
        which a capacity enters the Jacobian."""
        if not self.transient:
            return 0.0
        return float(self._coefficients[0].value) / float(self.dt.value)

    def capacity_rate(self, field: Field) -> Any:
        """UFL of du/dt of a solved field at the new level: a0 u/dt plus the weighted sum of its
        earlier levels, held in one function that :meth:`prepare` updates.

        The earlier levels thus enter a step's equations through a single function whose factor
        (the capacity) does not change with dt, so a linear solve can keep the capacity matrix
        and apply it to that function (app/affine.py) even when the step size changes.
        """
        combination = self._combinations.get(field)
        if combination is None:
            combination = fem.Function(field.space, name=f"{field.spec.name}_earlier_rate")
            self._combinations[field] = combination
        return self._coefficients[0] * field.function / self.dt + combination

    def _combine_earlier_levels(self) -> None:
        """The earlier levels' part of each capacity rate: (a1 u_n + a2 u_{n-1})/dt."""
        a1, a2 = (float(c.value) for c in self._coefficients[1:])
        dt = float(self.dt.value)
        for field, combination in self._combinations.items():
            values = a1 * field.history[0].x.array
            if self.order == 2 and a2 != 0.0:
                values = values + a2 * field.history[1].x.array
            combination.x.array[:] = values / dt

    def rate(self, u: Any, history: list[Any]) -> Any:
        """UFL approximation of du/dt at the new time level (``u`` and its ``history`` may be
        functions or expressions of them)."""
        a0, a1, a2 = self._coefficients
        rate = a0 * u + a1 * history[0]
        if self.order == 2:
            rate += a2 * history[1]
        return rate / self.dt

    def relax(self, target: Any, history: list[Any], time: Any) -> Any:
        """UFL of the new value y of ``dy/dt = (target - y)/time`` with the scheme's rate:
        (a0 y + a1 y_n + a2 y_{n-1})/dt = (target - y)/time, solved for y (BDF1 in a steady
        or one-step scheme, whose rate is (y - y_n)/dt)."""
        a0, a1, a2 = self._coefficients
        earlier = a1 * history[0]
        if self.order == 2:
            earlier += a2 * history[1]
        return (self.dt * target - time * earlier) / (a0 * time + self.dt)

    def discretise(
        self,
        row: Row,
        unknowns: list[Field],
        fields: Iterable[Field],
        start_values: StartValues | None = None,
    ) -> ufl.Form:
        """The row's residual over the step the scheme is prepared for.

        Args:
            row: The field's equations.
            unknowns: The group's solved fields (their old level enters CN's average).
            fields: Every field (a storage at an earlier level reads all solved fields then).
            start_values: The changing constants' values at the step's start (CN's old level).
        """
        form = row.operator
        if form is not None and row.transient and self.theta < 1:
            old: dict[Any, Any] = start_values.old_level(form) if start_values else {}
            old |= {field.function: field.history[0] for field in unknowns}
            old[self.t] = self.t_old
            form = self.theta * form + (1 - self.theta) * ufl.replace(form, old)
        fields = list(fields)
        for term in row.terms:
            if term.kind == "capacity":
                rate = self.capacity_rate(term.field)
            else:
                levels = [self.earlier(term.expression, fields, level) for level in (1, 2)]
                rate = self.rate(term.expression, levels)
            form = term.weak(rate) if form is None else form + term.weak(rate)
        return form

    def semi_discrete(self, row: Row, rates: Mapping[Field, Any]) -> ufl.Form | None:
        """The row at an instant: F(u, t) plus its time terms with du/dt = ``rates[field]``.

        A storage's rate is its derivative along the given rates plus its explicit change in t;
        whatever else it reads (fields of other groups, fields without a rate) is held fixed,
        as it is within a split step.
        """
        form = row.operator
        moving = ufl.variable(self.t)
        for term in row.terms:
            if term.kind == "capacity":
                rate = rates[term.field]
            else:
                amount = term.expression
                rate = ufl.diff(ufl.replace(amount, {self.t: moving}), moving)
                for field, w in rates.items():
                    rate = rate + ufl.derivative(amount, field.function, w)
            form = term.weak(rate) if form is None else form + term.weak(rate)
        return form

    def differentiated(self, row: Row, rates: Mapping[Field, Any]) -> ufl.Form:
        """d/dt of a row without time terms, a constraint F(u, t) = 0 that holds at every
        instant (equilibrium beside a flow): its derivative along the given rates plus its
        explicit change in t, which the rates of a storage that reads the constrained field
        obey too (the semi-discrete system is then one of index 1)."""
        form = row.operator
        if self.t in extract_constants(form):
            moving = ufl.variable(self.t)
            form = map_integrands(
                lambda integrand: ufl.diff(ufl.replace(integrand, {self.t: moving}), moving),
                form,
            )
        else:
            form = None
        for field, w in rates.items():
            along = ufl.derivative(row.operator, field.function, w)
            form = along if form is None else form + along
        return form

    def earlier(self, expression: Any, fields: Iterable[Field], level: int) -> Any:
        """An expression at an earlier time level: every solved field's value and t then."""
        times = {1: self.t_old, 2: self.t_older}
        earlier = {self.t: times[level]}
        for field in fields:
            if len(field.history) >= level:
                earlier[field.function] = field.history[level - 1]
        return ufl.replace(expression, earlier)

    def prepare(self, time: float, dt: float) -> None:
        """Set t and dt for a step that ends at ``time``, and the BDF coefficients."""
        self.t.value = time
        self.t_old.value = time - dt
        self.t_older.value = time - dt - (self.last_dt or 0.0)
        self.dt.value = dt
        if self.order == 2 and self.accepted_steps > 0:
            omega = dt / self.last_dt
            coefficients = ((1 + 2 * omega) / (1 + omega), -(1 + omega), omega**2 / (1 + omega))
        else:
            coefficients = (1.0, -1.0, 0.0)
        for constant, value in zip(self._coefficients, coefficients, strict=True):
            constant.value = value
        self._combine_earlier_levels()

    def restart(self) -> None:
        """Forget the step history: the next step is BDF1 (after a jump in the forcing)."""
        self.accepted_steps = 0
        self.times = self.times[:1]

    def accept(self, dt: float) -> None:
        """Record an accepted step (the next BDF2 step uses its size)."""
        self.accepted_steps += 1
        self.last_dt = dt
        self.times = (self.time, *self.times)[: self.accuracy + 2]

    def snapshot(self) -> SchemeState:
        """What a rejected step goes back to (see :meth:`rewind_to`)."""
        return SchemeState(self.time, self.accepted_steps, self.last_dt, self.times)

    def rewind_to(self, state: SchemeState) -> None:
        self.t.value = state.time
        self.accepted_steps, self.last_dt, self.times = (
            state.accepted_steps,
            state.last_dt,
            state.times,
        )

    def state(self) -> dict[str, Any]:
        """The scheme in a checkpoint (app/checkpoint.py): its step history and every constant
        the forms read, so that quantities read before the next step match an unbroken run."""
        constants = self.constants()
        return {
            "accepted_steps": self.accepted_steps,
            "last_dt": self.last_dt,
            "times": list(self.times),
            "constants": [float(constant.value) for constant in constants],
        }

    def restore(self, state: dict[str, Any]) -> None:
        for constant, value in zip(self.constants(), state["constants"], strict=True):
            constant.value = value
        self.accepted_steps = int(state["accepted_steps"])
        self.last_dt = state["last_dt"]
        self.times = tuple(state["times"])

    def predictor_weights(self) -> np.ndarray | None:
        """Weights of u_n, u_{n-1}, ... whose sum extrapolates the history to the current time
        with a polynomial of the scheme's order; None while the history is too short."""
        if not self.transient or self.accepted_steps < self.accuracy:
            return None
        nodes = self.times[: self.accuracy + 1]
        if len(nodes) < self.accuracy + 1:
            return None
        return extrapolation_weights(self.time, nodes)

    def error_factor(self) -> float:
        """Milne's factor of the step just solved (see :func:`milne_factor`)."""
        return milne_factor(self.scheme, (self.time, *self.times))


def extrapolation_weights(t: float, nodes: Sequence[float]) -> np.ndarray:
    """Weights of the values at ``nodes`` whose sum is their interpolating polynomial at ``t``
    (Lagrange's basis)."""
    weights = np.ones(len(nodes))
    for j, tj in enumerate(nodes):
        for m, tm in enumerate(nodes):
            if m != j:
                weights[j] *= (t - tm) / (tj - tm)
    return weights


def milne_factor(scheme: str, times: Sequence[float]) -> float:
    """Milne's factor: local error of a step = factor * (solution - predictor), the predictor
    being the polynomial of the scheme's order through the accepted values.

    ``times`` are newest first: the step's end, then the accepted levels t_n, t_{n-1}, ...
    With h = t_{n+1} - t_n, h1 and h2 the two steps before and w = h/h1, the local errors of
    a smooth solution y are, to leading order (y2, y3 its second and third derivatives):

    - BDF1: h^2 y2/2, against the linear predictor's -h (h + h1) y2/2: the factor is
      h/(2h + h1) = 1/(2 + 1/w);
    - variable-step BDF2: a h (h + h1) y3/6 with a = h (1 + w)/(1 + 2w), against the quadratic
      predictor's -h (h + h1)(h + h1 + h2) y3/6: the factor is a/(a + h + h1 + h2), 2/11 at
      constant steps and 0.26 when each step is twice the last (2/11 was used for every
      ratio before, which underestimated the error of growing steps);
    - Crank-Nicolson: 1/13 (its constant-step value).
    """
    h = times[0] - times[1]
    if ACCURACY[scheme] == 1:
        return h / (2.0 * h + (times[1] - times[2]))
    if scheme == "cn":
        return 1.0 / 13.0
    h1, h2 = times[1] - times[2], times[2] - times[3]
    a = h * (h + h1) / (2.0 * h + h1)  # h (1 + w)/(1 + 2w)
    return a / (a + h + h1 + h2)
