"""Time discretisation of the capacity terms plug-ins declare.

Variable-step BDF: with omega = dt_n / dt_{n-1},

    BDF1:  du/dt ~ (u - u_n) / dt
    BDF2:  du/dt ~ [ (1+2w)/(1+w) u - (1+w) u_n + w^2/(1+w) u_{n-1} ] / dt

and Crank-Nicolson, the one-step second-order scheme operator splitting needs (a multistep
history would span split steps whose frozen partner fields differ):

    CN:    C (u - u_n)/dt + [F(u, t) + F(u_n, t_n)] / 2 = 0

The coefficients and dt are ``fem.Constant`` objects, so changing the step never recompiles a
form, and an operator that depends on them is re-assembled only when their values change. BDF2
takes a BDF1 first step (no u_{n-1} yet); the global error stays second order.

Internal variables that relax (dy/dt = (target - y)/tau, a Maxwell branch) use the same rate,
solved for the new value (:meth:`TimeScheme.relax`).

Each group of the coupling has its own scheme (its own time level, step and history), which is
what operator splitting and sub-cycling need. The local truncation error of a step is estimated
by Milne's device: the difference between the solution and the polynomial extrapolation of the
history through the new time, scaled by the ratio of the two methods' error constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from dolfinx import fem

ORDERS = {"steady": 0, "bdf1": 1, "bdf2": 2, "cn": 1}  # history levels the rate uses
ACCURACY = {"steady": 0, "bdf1": 1, "bdf2": 2, "cn": 2}  # order of accuracy in time


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
        scheme: "steady", "bdf1" or "bdf2".
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

    def restart(self) -> None:
        """Forget the step history: the next step is BDF1 (after a jump in the forcing)."""
        self.accepted_steps = 0
        self.times = self.times[:1]

    def accept(self, dt: float) -> None:
        """Record an accepted step (the next BDF2 step uses its size)."""
        self.accepted_steps += 1
        self.last_dt = dt
        self.times = (self.time, *self.times)[: self.accuracy + 2]

    def state(self) -> SchemeState:
        return SchemeState(self.time, self.accepted_steps, self.last_dt, self.times)

    def restore(self, state: SchemeState) -> None:
        self.t.value = state.time
        self.accepted_steps, self.last_dt, self.times = (
            state.accepted_steps,
            state.last_dt,
            state.times,
        )

    def predictor_weights(self) -> np.ndarray | None:
        """Weights of u_n, u_{n-1}, ... whose sum extrapolates the history to the current time
        with a polynomial of the scheme's order; None while the history is too short."""
        if not self.transient or self.accepted_steps < self.accuracy:
            return None
        nodes = np.array(self.times[: self.accuracy + 1])
        if len(nodes) < self.accuracy + 1:
            return None
        t = self.time
        weights = np.ones(len(nodes))
        for j, tj in enumerate(nodes):
            for m, tm in enumerate(nodes):
                if m != j:
                    weights[j] *= (t - tm) / (tj - tm)
        return weights

    def error_factor(self) -> float:
        """Milne's factor: local error of the step = factor * (solution - predictor).

        BDF1 against linear extrapolation gives 1/(2 + 1/omega) for a step ratio omega; BDF2
        and CN against quadratic extrapolation give 2/11 and 1/13 (constant-step values, good
        estimates for the moderate step ratios the controller allows).
        """
        if self.accuracy == 1:
            omega = float(self.dt.value) / self.last_dt
            return 1.0 / (2.0 + 1.0 / omega)
        return 1.0 / 13.0 if self.scheme == "cn" else 2.0 / 11.0
