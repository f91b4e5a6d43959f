"""Initial stoichiometries of a lithium-ion cell from a state of charge or an open-circuit voltage.

PyBaMM's ``set_initial_state`` with the "cyclable lithium capacity" algorithm (Mohtat 2019;
BATTERY_MODEL.md section 4), for any pair of electrodes whose open-circuit potentials are
functions of the stoichiometry:

1. the cyclable lithium Q_Li = Q_n x_init + Q_p y_init of a given state is kept;
2. 100 % SOC: U_p(y_100) - U_n(x_100) = V_max with y_100 = (Q_Li - x_100 Q_n)/Q_p;
3. 0 % SOC: U_p(y_0) - U_n(x_0) = V_min with y_0 = y_100 + Q_n (x_100 - x_0)/Q_p;
4. SOC s: x = x_0 + s (x_100 - x_0), y = y_0 - s (y_0 - y_100); a voltage target first solves
   U_p(y(s)) - U_n(x(s)) = V for s.

Capacities Q are per unit of electrode area (mol/m^2 of lithium sites); only their ratios enter.
Each equation is one scalar root, found by Brent's method to round-off.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Potential = Callable[[float], float]  # U(theta)

#: Distance kept from stoichiometries 0 and 1, where open-circuit potentials may be singular.
MARGIN = 1e-9


class StateOfChargeError(ValueError):
    """The target cannot be reached with these electrodes; the message says why."""


@dataclass(frozen=True)
class Electrode:
    """What the algorithm needs of one electrode.

    Attributes:
        ocp: Open-circuit potential U(theta) [V].
        capacity: Lithium sites per unit electrode area, eps_s L c_max [mol/m^2].
        stoichiometry: Stoichiometry of the state whose cyclable lithium is kept.
    """

    ocp: Potential
    capacity: float
    stoichiometry: float


@dataclass(frozen=True)
class Window:
    """Stoichiometries at 0 % and 100 % SOC (negative x, positive y)."""

    x_0: float
    x_100: float
    y_100: float
    y_0: float

    def at(self, soc: float) -> tuple[float, float]:
        """(x, y) at a state of charge."""
        return self.x_0 + soc * (self.x_100 - self.x_0), self.y_0 - soc * (self.y_0 - self.y_100)


def window(negative: Electrode, positive: Electrode, v_min: float, v_max: float) -> Window:
    """The stoichiometry window between the open-circuit voltages ``v_min`` and ``v_max``."""
    if not v_min < v_max:
        raise StateOfChargeError(f"the lower voltage {v_min:g} V is not below {v_max:g} V")
    q_n, q_p = negative.capacity, positive.capacity
    if not (q_n > 0 and q_p > 0):
        raise StateOfChargeError(f"electrode capacities must be positive, got {q_n:g}, {q_p:g}")
    lithium = q_n * negative.stoichiometry + q_p * positive.stoichiometry

    def y_100(x: float) -> float:
        return (lithium - x * q_n) / q_p

    low, high = max(0.0, (lithium - q_p) / q_n), min(1.0, lithium / q_n)
    x_100 = _root(
        lambda x: positive.ocp(y_100(x)) - negative.ocp(x) - v_max, low, high, "100 %", v_max
    )

    def y_0(x: float) -> float:
        return y_100(x_100) + q_n * (x_100 - x) / q_p

    low = max(0.0, x_100 - q_p * (1 - y_100(x_100)) / q_n)
    x_0 = _root(lambda x: positive.ocp(y_0(x)) - negative.ocp(x) - v_min, low, x_100, "0 %", v_min)
    return Window(x_0, x_100, y_100(x_100), y_0(x_0))


def soc_at_voltage(
    limits: Window, negative: Potential, positive: Potential, voltage: float
) -> float:
    """The state of charge whose open-circuit voltage is ``voltage``."""

    def excess(soc: float) -> float:
        x, y = limits.at(soc)
        return positive(y) - negative(x) - voltage

    return _root(excess, 0.0, 1.0, "the initial voltage", voltage, margin=0.0)


def _root(
    function: Callable[[float], float],
    low: float,
    high: float,
    what: str,
    target: float,
    margin: float = MARGIN,
) -> float:
    """The root of ``function`` between ``low`` and ``high`` (kept ``margin`` inside)."""
    low, high = low + margin, high - margin
    if not low < high:
        raise StateOfChargeError(f"no stoichiometry range is left for {what} ({target:g} V)")
    at_low, at_high = function(low), function(high)
    if at_low * at_high > 0:
        reach = sorted((at_low + target, at_high + target))
        raise StateOfChargeError(
            f"the open-circuit voltage cannot reach {target:g} V ({what}): between the "
            f"stoichiometry limits it ranges over [{reach[0]:.6g}, {reach[1]:.6g}] V"
        )
    return brent(function, low, high, at_low, at_high)


def brent(
    function: Callable[[float], float],
    low: float,
    high: float,
    at_low: float,
    at_high: float,
    xtol: float = 1e-15,
    rtol: float = 8.9e-16,
    max_iterations: int = 500,
) -> float:
    """The root of ``function`` bracketed by ``low`` and ``high`` (values ``at_low`` and
    ``at_high`` of opposite signs), by Brent's method: the steps of scipy.optimize.brentq (its
    brentq.c), which a run would import for this alone (0.4 s of a 2 s battery case)."""
    previous, current, at_previous, at_current = low, high, at_low, at_high
    if at_previous == 0:
        return previous
    if at_current == 0:
        return current
    block = at_block = step_before = step = 0.0
    for _ in range(max_iterations):
        if at_previous * at_current < 0:  # the bracket is [previous, current]: restart it
            block, at_block = previous, at_previous
            step_before = step = current - previous
        if abs(at_block) < abs(at_current):  # keep the best estimate in ``current``
            previous, current, block = current, block, current
            at_previous, at_current, at_block = at_current, at_block, at_current
        tolerance = (xtol + rtol * abs(current)) / 2
        bisection = (block - current) / 2
        if at_current == 0 or abs(bisection) < tolerance:
            return current
        interpolated = False
        if abs(step_before) > tolerance and abs(at_current) < abs(at_previous):
            if previous == block:  # secant
                trial = -at_current * (current - previous) / (at_current - at_previous)
            else:  # inverse quadratic interpolation
                slope_previous = (at_previous - at_current) / (previous - current)
                slope_block = (at_block - at_current) / (block - current)
                trial = -at_current * (at_block * slope_block - at_previous * slope_previous)
                trial /= slope_block * slope_previous * (at_block - at_previous)
            # a short step that keeps shrinking is taken, else bisect
            interpolated = 2 * abs(trial) < min(abs(step_before), 3 * abs(bisection) - tolerance)
        if interpolated:
            step_before, step = step, trial
        else:
            step_before = step = bisection
        previous, at_previous = current, at_current
        current += step if abs(step) > tolerance else math.copysign(tolerance, bisection)
        at_current = function(current)
    raise StateOfChargeError(f"no root found in {max_iterations} iterations")
