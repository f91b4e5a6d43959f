"""Sections of a case that parse but cannot mean what they say: refused at their path."""

import pytest

from app.cli import main
from app.simulation import Simulation
from tests.conftest import CASES
from tests.test_bad_input import TRANSIENT, VALID, check, error_of, write


def test_a_breakpoint_before_the_start(tmp_path, capsys):
    """A breakpoint before the start was skipped without a word."""
    check(tmp_path, TRANSIENT + 'breakpoints = [1, "-1 min"]\n')
    message = error_of(capsys)
    assert "time.breakpoints[1]: -60 s is before the run's start at 0 s" in message
    assert "give breakpoints after time.start" in message


def test_an_output_time_before_the_start(tmp_path, capsys):
    """An output time before the start was skipped without a word (exit 0, no row)."""
    check(tmp_path, TRANSIENT, "--set", "output.times=[-1, 5]")
    message = error_of(capsys)
    assert "output.times[0]: -1 s is before the run's start at 0 s" in message
    assert "give output times after time.start" in message


def test_breakpoints_from_the_start_on_are_valid(tmp_path, capsys):
    # after the end: a run shortened with --set time.end (the scheduler says it is not reached)
    case = write(tmp_path, TRANSIENT + 'breakpoints = [0, "0.5 s", 2, 3]\n')
    assert main(["check", str(case)]) == 0, capsys.readouterr().err


def test_a_line_probe_from_a_point_to_itself(tmp_path, capsys):
    probe = "\n[output.probes]\ncut = { from = [0.5, 0.5], to = [0.5, 0.5], points = 10 }\n"
    check(tmp_path, VALID + probe)
    message = error_of(capsys)
    assert "output.probes.cut: a line from [0.5, 0.5] to the same point" in message
    assert "make it a point probe" in message


@pytest.mark.parametrize("tolerance", ['"-1 s"', "0"])
def test_a_protocol_tolerance_that_is_not_positive(capsys, tolerance):
    """A crossing located to within -1 s is never close enough: the run stepped on in ever
    smaller steps (heat_cycling.toml: still at t = 68 s after 2 minutes)."""
    case = CASES / "heat_cycling.toml"
    assert main(["check", str(case), "--set", f"protocol.tolerance={tolerance}"]) == 2
    assert "protocol.tolerance: must be > 0 s, got " in error_of(capsys)


def test_an_event_tolerance_that_is_not_positive(tmp_path, capsys):
    event = '\n[[events]]\nwhen = "max_temperature_K > 350"\ntolerance = "-1 ms"\n'
    check(tmp_path, TRANSIENT.replace("[time]", event + "\n[time]"))
    assert "events.0.tolerance: must be > 0 s, got -0.001 s" in error_of(capsys)


@pytest.mark.parametrize("key", ["mesh.cells[5]", "mesh.cells[-1]", "mesh.cells[x]"])
def test_set_on_a_list_entry(tmp_path, capsys, key):
    """--set has no list indices: 'mesh.cells[5]' read as an unknown key 'cells[5]', whose fix
    was 'correct the spelling or remove the key'."""
    check(tmp_path, VALID, "--set", f"{key}=3")
    message = error_of(capsys)
    assert f"--set {key}: list entries cannot be set one by one" in message
    assert "Fix: give the whole list, e.g. --set 'mesh.cells=[...]'" in message


def test_a_step_until_a_temperature_below_absolute_zero(capsys):
    """'until max temperature < -10 K' can never hold: the step heated on (heat_cycling.toml
    without time.end: still heating at t = 38810 s after 120 s)."""
    step = '["Heat at 5e4 W/m^2 until max temperature < -10 K"]'
    assert main(["check", str(CASES / "heat_cycling.toml"), "--set", f"protocol.steps={step}"]) == 2
    message = error_of(capsys)
    assert "protocol.steps (step 'Heat at 5e4 W/m^2 until max temperature < -10 K'): " in message
    assert "-10 K is below absolute zero" in message


def test_an_event_on_a_temperature_below_absolute_zero(tmp_path, capsys):
    check(tmp_path, TRANSIENT, "--set", 'events=[{when = "max_temperature_K < -3"}]')
    assert "events[0].when: condition 'max_temperature_K < -3': -3 K is below absolute zero" in (
        error_of(capsys)
    )


def test_a_threshold_in_degrees_celsius_below_zero_is_valid(capsys):
    step = '["Heat at 5e4 W/m^2 until max temperature > -10 degC"]'
    assert main(["check", str(CASES / "heat_cycling.toml"), "--set", f"protocol.steps={step}"]) == 0


def test_an_event_that_holds_at_the_start(tmp_path, capsys):
    """'max_temperature_K > 200' of a plate at 300 K stopped the run at t = 0 before any
    step: 'run completed', status completed, exit 0, one row."""
    text = TRANSIENT + '\n[[events]]\nwhen = "max_temperature_K > 200"\n'
    assert main(["run", str(write(tmp_path, text)), "-o", str(tmp_path / "out"), "-q"]) == 2
    message = error_of(capsys)
    assert "events[0].when: 'max_temperature_K > 200' holds already at the start (t = 0 s)" in (
        message
    )
    assert '"status": "failed"' in (tmp_path / "out" / "provenance.json").read_text()


def test_an_event_reached_later_still_stops_the_run(tmp_path, capsys):
    text = TRANSIENT + '\n[[events]]\nwhen = "max_temperature_K > 200"\n'
    text = text.replace("value = 300 }", 'value = "100 + 200*t" }\ninitial = 100')
    assert main(["run", str(write(tmp_path, text)), "-o", str(tmp_path / "out"), "-q"]) == 0
    rows = (tmp_path / "out" / "quantities.csv").read_text().splitlines()
    assert float(rows[-1].split(",")[0]) == pytest.approx(0.5, abs=1e-3)


DROPPED = "time.scheme: not given, so time.end and time.dt make a sequence of steady solves"


@pytest.mark.parametrize(
    ("time", "warned"),
    [
        ({"end": 2.0, "dt": 1.0}, True),
        ({"scheme": "steady", "end": 2.0, "dt": 1.0}, False),  # quasi-static, said so
        ({"scheme": "bdf1", "end": 2.0, "dt": 1.0}, False),
        ({}, False),  # one steady solve: the steady state, as asked
    ],
)
def test_time_derivatives_a_steady_sequence_drops_are_said(caplog, time, warned):
    """[time] end and dt without a scheme run steady solves: the heat plug-in's initial value
    and capacity were ignored without a word. Each row is the steady state (300 K here, from
    500 K initially), and the warning names time.scheme and the physics it drops."""
    case = {
        "mesh": {"type": "interval", "cells": [4]},
        "physics": {"heat": {"initial": 500, "boundaries": {"left": {"type": "temperature",
                                                                     "value": 300}}}},
        "time": time,
    }  # fmt: skip
    with caplog.at_level("WARNING", logger="scalebridge"):
        result = Simulation.from_case(case).run()
    assert (DROPPED in caplog.text) == warned, caplog.text
    if warned:
        assert "physics.heat: temperature" in caplog.text
        assert 'scheme = "bdf1" or "bdf2"' in caplog.text
        assert result.quantities["max_temperature_K"] == pytest.approx(300.0, abs=1e-9)
