"""The state-of-charge window (app/state_of_charge.py) against its closed form for linear
open-circuit potentials."""

import pytest

from app.state_of_charge import Electrode, soc_at_voltage, window

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
