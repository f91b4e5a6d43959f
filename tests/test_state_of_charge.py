"""The state-of-charge window (app/state_of_charge.py) against its closed form for linear
open-circuit potentials."""

import math
import subprocess
import sys

import pytest

from app.state_of_charge import Electrode, brent, soc_at_voltage, window

# U_n(x) = A - B x, U_p(y) = C - D y: every root of the algorithm is that of a linear equation
A, B, C, D = 0.8, 0.7, 4.6, 1.5
Q_N, Q_P = 1.3, 1.1  # capacities [mol/m^2]
X_START, Y_START = 0.8, 0.3


def _electrodes() -> tuple[Electrode, Electrode]:
    negative = Electrode(lambda x: A - B * x, Q_N, X_START)
    positive = Electrode(lambda y: C - D * y, Q_P, Y_START)
    return negative, positive


def _closed_form_x(v: float, lithium: float) -> float:
    """x where U_p((lithium - x Q_N)/Q_P) - U_n(x) = v."""
    return (v + A - C + D * lithium / Q_P) / (D * Q_N / Q_P + B)


def test_window_is_the_closed_form_of_linear_potentials():
    negative, positive = _electrodes()
    lithium = Q_N * X_START + Q_P * Y_START
    limits = window(negative, positive, 3.0, 4.0)
    assert limits.x_100 == pytest.approx(_closed_form_x(4.0, lithium), abs=1e-14)
    assert limits.x_0 == pytest.approx(_closed_form_x(3.0, lithium), abs=1e-14)
    assert limits.y_100 == pytest.approx((lithium - limits.x_100 * Q_N) / Q_P, abs=1e-14)
    # the open-circuit voltage at the window's ends is the requested one, to round-off
    assert C - D * limits.y_100 - (A - B * limits.x_100) == pytest.approx(4.0, abs=1e-13)
    assert C - D * limits.y_0 - (A - B * limits.x_0) == pytest.approx(3.0, abs=1e-13)


def test_soc_at_voltage_is_linear_between_the_ends():
    negative, positive = _electrodes()
    limits = window(negative, positive, 3.0, 4.0)
    # linear potentials and a linear path in (x, y): the voltage is linear in the SOC
    soc = soc_at_voltage(limits, negative.ocp, positive.ocp, 3.25)
    assert soc == pytest.approx(0.25, abs=1e-13)


@pytest.mark.parametrize(
    ("function", "low", "high"),
    [
        (lambda x: math.exp(x) - 2.0, 0.0, 3.0),
        (lambda x: math.tanh(40.0 * (x - 0.3141592653589793)), 1e-9, 1 - 1e-9),  # a steep plateau
        (lambda x: x**3 - 2.0 * x - 5.0, 2.0, 3.0),
        (
            lambda x: (
                0.6379 + 1.5 * math.exp(-120 * x) - 0.0351 * math.tanh((x - 0.286) / 0.083) - 0.62
            ),
            1e-9,
            0.6,
        ),  # Chen2020's graphite OCP shape
        (lambda x: math.copysign(1.0, x - 0.25), 0.0, 1.0),  # a jump: bisection only
    ],
)
def test_brent_takes_the_steps_of_scipy_brentq(function, low, high):
    """The root and every evaluation are those of scipy's brentq at the same tolerances (the
    window is the one it gave, bit for bit), without importing scipy.optimize in a run."""
    from scipy.optimize import brentq

    ours, theirs = [], []

    def logged(calls):
        return lambda x: calls.append(x) or function(x)

    root = brent(logged(ours), low, high, function(low), function(high))
    expected = brentq(logged(theirs), low, high, xtol=1e-15, rtol=8.9e-16, maxiter=500)
    assert root == expected
    assert ours == theirs[2:]  # brentq evaluates the ends itself


def test_a_state_of_charge_does_not_import_scipy_optimize():
    """Importing scipy.optimize costs a battery run 0.4 s of its 2 s (issue 12)."""
    script = (
        "import sys\n"
        "from app.state_of_charge import Electrode, window\n"
        "import math\n"
        "negative = Electrode(lambda x: 0.2 - 0.1 * math.log(x / (1 - x)), 1.0, 0.9)\n"
        "positive = Electrode(lambda y: 4.0 - 0.2 * math.log(y / (1 - y)), 1.2, 0.3)\n"
        "window(negative, positive, 3.0, 4.2)\n"
        "assert 'scipy.optimize' not in sys.modules, 'scipy.optimize was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
