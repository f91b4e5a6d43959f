"""The state-of-charge window (app/state_of_charge.py) against its closed form for linear
open-circuit potentials, found without SciPy's optimize module (0.3 s of every battery run) by
a Brent iteration that gives SciPy's brentq roots to the bit."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from app.state_of_charge import ROOT_RTOL, ROOT_XTOL, Electrode, _brent, soc_at_voltage, window

# U_n(x) = A - B x, U_p(y) = C - D y: every root of the algorithm is that of a linear equation
A, B, C, D = 0.8, 0.7, 4.6, 1.5
Q_N, Q_P = 1.3, 1.1  # capacities [mol/m^2]
X_START, Y_START = 0.8, 0.3
ROOT = Path(__file__).resolve().parent.parent


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


def test_no_scipy_optimize_is_imported():
    script = (
        "import sys; from tests.test_state_of_charge import _electrodes; "
        "from app.state_of_charge import window; window(*_electrodes(), 3.0, 4.0); "
        "print('scipy.optimize' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("steepness", [0.3, 3.0, 30.0])
@pytest.mark.parametrize("root", [0.013, 0.5, 0.9871])
def test_roots_are_brentqs_to_the_bit(steepness, root):
    """Open-circuit-like curves (a steep tanh step on a slope, an exponential, a logarithm)."""
    from scipy.optimize import brentq  # here: the subprocess below imports this module

    curves = [
        lambda x: math.tanh(steepness * (x - root)) + 0.05 * (x - root),
        lambda x: math.exp(steepness * x) - math.exp(steepness * root),
        lambda x: math.log(x / root) + steepness * (x - root) ** 3,
    ]
    low, high = 1e-9, 1 - 1e-9
    for curve in curves:
        ours = _brent(curve, low, high, curve(low))
        assert ours == brentq(curve, low, high, xtol=ROOT_XTOL, rtol=ROOT_RTOL, maxiter=500)
        assert ours == pytest.approx(root, abs=1e-14)
