"""Error-controlled time steps (app/step_control.py, app/timeint.py): Milne's estimate of the
local error for variable steps, the landing on output times, and tolerances on quantity
columns (``[time.adaptive] tolerances``)."""

import math

import numpy as np
import pytest

from app.errors import CaseError
from app.simulation import Simulation
from app.step_control import landing_step
from app.timeint import extrapolation_weights, milne_factor
from tests.test_events import TAU, manufactured_case


def cubic(t):
    return 2 * t**3 - 3 * t**2 + 0.5 * t + 1


def cubic_rate(t):
    return 6 * t**2 - 6 * t + 0.5


@pytest.mark.parametrize("steps", [(0.1, 0.1, 0.1), (0.3, 0.1, 0.05), (0.05, 0.2, 0.1)])
def test_milne_factor_gives_the_exact_local_error_of_variable_step_bdf2(steps):
    """y' = f(t) with a cubic solution: one variable-step BDF2 step from exact values has the
    local error a h^2 (h + h1) y'''/6 exactly, and Milne's factor times the difference from
    the quadratic extrapolation of the exact values is that error to round-off (the constant
    2/11 is exact only for equal steps)."""
    h, h1, h2 = steps
    times = [1.0 + h, 1.0, 1.0 - h1, 1.0 - h1 - h2]  # newest first
    omega = h / h1
    a0, a1, a2 = (1 + 2 * omega) / (1 + omega), -(1 + omega), omega**2 / (1 + omega)
    computed = (h * cubic_rate(times[0]) - a1 * cubic(times[1]) - a2 * cubic(times[2])) / a0
    predicted = extrapolation_weights(times[0], times[1:]) @ cubic(np.array(times[1:]))
    error = milne_factor("bdf2", times) * (computed - predicted)
    assert error == pytest.approx(computed - cubic(times[0]), rel=1e-9)
    if h != h1:
        assert 2 / 11 * (computed - predicted) != pytest.approx(error, rel=1e-2)


@pytest.mark.parametrize("steps", [(0.1, 0.1), (0.3, 0.1), (0.05, 0.2)])
def test_milne_factor_gives_the_exact_local_error_of_bdf1(steps):
    """The same for backward Euler and a quadratic solution, against linear extrapolation."""
    h, h1 = steps
    times = [1.0 + h, 1.0, 1.0 - h1]

    def quadratic(t):
        return 3 * t**2 - t + 2

    computed = quadratic(times[1]) + h * (6 * times[0] - 1)
    predicted = extrapolation_weights(times[0], times[1:]) @ quadratic(np.array(times[1:]))
    error = milne_factor("bdf1", times) * (computed - predicted)
    assert error == pytest.approx(computed - quadratic(times[0]), rel=1e-9)


def test_a_target_is_landed_on_without_a_sliver():
    # less than a step away: one step to it; exactly dt away up to round-off: dt itself
    assert landing_step(0.0, 1.0, 0.7, 1e-9, split=True) == pytest.approx(0.7)
    assert landing_step(0.0, 1.0, 1.0 + 1e-12, 1e-9, split=True) == 1.0
    # between one and two steps away: two equal steps under error control, where a step and
    # a sliver would restart the growth of the steps from the sliver
    assert landing_step(0.0, 1.0, 1.2, 1e-9, split=True) == pytest.approx(0.6)
    assert landing_step(0.0, 1.0, 1.2, 1e-9, split=False) == 1.0
    assert landing_step(0.0, 1.0, 3.0, 1e-9, split=True) == 1.0


# The probe at x = 0.5 of tests/test_events.py's manufactured solution carries the time error
# alone; its exact value is 1.25 g(t).
def probe_case(scheme: str, tolerance: float) -> dict:
    time = {"scheme": scheme, "dt": 1e-4}
    time["adaptive"] = {"tolerances": {"middle_temperature_K": tolerance}}
    return manufactured_case(time, {"probes": {"middle": {"at": [0.5], "fields": ["temperature"]}}})


def probe_error(scheme: str, tolerance: float) -> tuple[int, float]:
    """Accepted steps, and the largest error of the probe over all steps."""
    result = Simulation.from_case(probe_case(scheme, tolerance)).run()
    t = np.array(result.quantities["time_s"])
    exact = 1.25 * (1 + 4 * np.exp(-t / TAU))
    return result.steps, float(np.abs(result.quantities["middle_temperature_K"] - exact).max())


@pytest.mark.parametrize(
    "scheme, order, tolerances", [("bdf2", 2, (1e-3, 1e-5)), ("bdf1", 1, (1e-2, 1e-4))]
)
def test_a_quantity_tolerance_controls_the_global_error_at_the_schemes_rate(
    scheme, order, tolerances
):
    """Steps sized for a local error tol of the quantity (error per step) are h ~ tol^(1/(p+1))
    long, so the global error of a scheme of order p falls as tol^(p/(p+1)): 2/3 for BDF2, 1/2
    for BDF1; with a wrong estimate (another order, a wrong factor) the rate is another."""
    (coarse_steps, coarse), (fine_steps, fine) = (probe_error(scheme, t) for t in tolerances)
    rate = math.log(coarse / fine) / math.log(tolerances[0] / tolerances[1])
    print(f"{scheme}: {coarse_steps} -> {fine_steps} steps, {coarse:.3g} -> {fine:.3g}, {rate:.3f}")
    assert rate == pytest.approx(order / (order + 1), abs=0.06)
    assert fine_steps > coarse_steps


def test_bad_quantity_tolerances_name_their_place():
    case = probe_case("bdf2", 1e-3)
    case["time"]["adaptive"]["tolerances"] = {"middle_temperatur_K": 1e-3}
    with pytest.raises(CaseError, match=r"time\.adaptive\.tolerances\.middle_temperatur_K") as info:
        Simulation.from_case(case).run()
    assert "did you mean 'middle_temperature_K'" in str(info.value)
    case["time"]["adaptive"]["tolerances"] = {"middle_temperature_K": -1}
    with pytest.raises(CaseError, match="a tolerance is positive"):
        Simulation.from_case(case).run()
    case["time"] = {"end": 1.0, "dt": 0.5, "adaptive": {"tolerances": {"x_K": 1}}}
    with pytest.raises(CaseError, match=r"time\.adaptive\.tolerances.*steady run"):
        Simulation.from_case(case)
