"""Fields without a time derivative are solved consistently with the initial state of the others
before the first output row and the first event check.

The Joule-heated bus bar (cases/joule_heating.toml): 50 mV across 20 cm of copper, the potential
starts as a guess (0 V). The consistent potential at t = 0 is linear, phi = 50 mV (1 - x/L),
carrying I = sigma(20 degC) U/L per metre of depth times the bar's 1 cm height. An event
``max_potential_V < 25 mV`` holds for the guess but never for the solved potential: checked on
the guess, the run stopped at t = 0 with no step and exit code 0.
"""

import pytest

from app.simulation import Simulation
from tests.conftest import CASES

CASE = CASES / "joule_heating.toml"
SIGMA = 5.96e7  # S/m at 20 degC
CURRENT = SIGMA * 0.05 / 0.2 * 0.01  # A per metre of depth
EVENT = [{"when": "max_potential_V < 0.025"}]
SPLIT = {
    "coupling.method": "lie",
    "coupling.groups": [
        {"name": "electric", "physics": ["electrostatics"]},
        {"name": "thermal", "physics": ["heat"]},
    ],
}


@pytest.mark.parametrize(
    ("overrides", "steps"),
    [
        ({}, 3),  # one group: the potential solved alone, the temperature held
        (SPLIT, 3),  # a group of potentials only
        ({"time.scheme": "cn"}, 3),
        ({"time.scheme": "steady"}, 3),  # a sequence of steady solves
    ],
    ids=["monolithic", "split", "crank_nicolson", "steady_sequence"],
)
def test_potential_is_consistent_before_the_first_row_and_event(overrides: dict, steps: int):
    case = {"time.end": "30 s", "output.interval": "10 s", "events": EVENT, **overrides}
    sim = Simulation.from_case(CASE, case)
    result = sim.run()
    q = result.quantities
    assert result.event is None
    assert result.steps == steps
    assert q["max_potential_V"].min() == pytest.approx(0.05, rel=1e-12)
    if overrides.get("time.scheme") != "steady":  # a steady sequence has no t = 0 row
        assert q["time_s"][0] == 0.0
        # what leaves through the left side: the current enters there
        assert q["current_left_A_per_m"][0] == pytest.approx(-CURRENT, rel=1e-9)
        assert q["max_temperature_K"][0] == 293.15  # held at its initial value
        assert q["power_W_per_m"][0] == pytest.approx(CURRENT * 0.05, rel=1e-9)


def test_crank_nicolson_keeps_potential_rows_at_the_new_time():
    """The bar driven by a current density that a protocol doubles after 10 s, under
    Crank-Nicolson: the potential's row must hold at each new time, phi(0) = i L/sigma. Averaged
    over the step like the heat equation's, it held only on average after the jump, and the
    potential swung between (2 i2 - i1) L/sigma and i1 L/sigma from one step to the next."""
    drive = "physics.electrostatics.boundaries.left"
    overrides = {
        "time.scheme": "cn",
        "time.end": "60 s",
        f"{drive}": {"type": "current", "value": "1e5 A/m^2"},
        "protocol": {
            "steps": ["Drive at 1e5 A/m^2 for 10 s", "Drive at 2e5 A/m^2 for 50 s"],
            "controls": {"Drive": {"target": f"{drive}.value"}},
        },
    }
    q = Simulation.from_case(CASE, overrides).run().quantities
    density = [1e5 if t <= 10 else 2e5 for t in q["time_s"]]
    expected = [i * 0.2 / SIGMA for i in density]  # Joule heating: sigma changes by 1e-5
    assert q["max_potential_V"] == pytest.approx(expected, rel=1e-4)
