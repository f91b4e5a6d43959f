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
ROOT_XTOL, ROOT_RTOL, ROOT_ITERATIONS = 1e-15, 8.9e-16, 500  # a root to round-off


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
    return _brent(function, low, high, at_low)


def _brent(function: Callable[[float], float], low: float, high: float, at_low: float) -> float:
    """The root of ``function`` where it changes sign in [low, high] by Brent's method, to
    round-off (1e-15 + 8.9e-16 |x|): SciPy's brentq (scipy/optimize/Zeros/brentq.c) step for
    step, so a case's initial state is the same to the bit, without importing scipy.optimize
    (0.3 s of CPU, more than the rest of the state-of-charge algorithm by far)."""
    x_pre, x_cur, f_pre, f_cur = low, high, at_low, function(high)
    if f_pre == 0:
        return x_pre
    if f_cur == 0:
        return x_cur
    x_blk = f_blk = s_pre = s_cur = 0.0
    for _ in range(ROOT_ITERATIONS):
        if f_pre != 0 and f_cur != 0 and (math.copysign(1, f_pre) != math.copysign(1, f_cur)):
            x_blk, f_blk = x_pre, f_pre
            s_pre = s_cur = x_cur - x_pre
        if abs(f_blk) < abs(f_cur):  # the best guess is the bracket's other end
            x_pre, x_cur, x_blk = x_cur, x_blk, x_cur
            f_pre, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = (ROOT_XTOL + ROOT_RTOL * abs(x_cur)) / 2
        s_bis = (x_blk - x_cur) / 2
        if f_cur == 0 or abs(s_bis) < delta:
            return x_cur
        s_pre, s_cur = _brent_step(
            x_pre, x_cur, x_blk, f_pre, f_cur, f_blk, s_pre, s_cur, s_bis, delta
        )
        x_pre, f_pre = x_cur, f_cur
        x_cur += s_cur if abs(s_cur) > delta else (delta if s_bis > 0 else -delta)
        f_cur = function(x_cur)
    return x_cur


def _brent_step(x_pre, x_cur, x_blk, f_pre, f_cur, f_blk, s_pre, s_cur, s_bis, delta):
    """Brent's next (previous, current) step: an interpolation if short enough, else bisection."""
    if abs(s_pre) > delta and abs(f_cur) < abs(f_pre):
        if x_pre == x_blk:  # secant
            s_try = -f_cur * (x_cur - x_pre) / (f_cur - f_pre)
        else:  # inverse quadratic
            d_pre = (f_pre - f_cur) / (x_pre - x_cur)
            d_blk = (f_blk - f_cur) / (x_blk - x_cur)
            s_try = -f_cur * (f_blk * d_blk - f_pre * d_pre) / (d_blk * d_pre * (f_blk - f_pre))
        if 2 * abs(s_try) < min(abs(s_pre), 3 * abs(s_bis) - delta):
            return s_cur, s_try
    return s_bis, s_bis
