"""[output.quantities] of columns: expressions of quantities.csv columns and the set's constants,
and running time integrals of columns (quantities of fields: tests/test_output_quantities.py)."""

from pathlib import Path

import pytest

from app.errors import CaseError
from app.output import column
from app.output_quantities import ColumnQuantities, OutputQuantity
from app.parameter_resolution import resolve
from tests.battery import CASE, SMALL_MESH
from tests.conftest import scalebridge

CHEN2020 = resolve({"set": "Chen2020"}, Path.cwd())


def table(units, constants=CHEN2020, **specs):
    return ColumnQuantities(
        {name: OutputQuantity(**spec) for name, spec in specs.items()}, units, constants, column
    )


def test_columns_and_constants_combine_in_si_whatever_units_they_are_written_in():
    """5 A h of the set's capacity (stored in coulombs) minus 1.25 A h drawn (a column written
    in A h) leave 3.75 A h, and 75 % of the capacity."""
    q = table(
        {"drawn_Ah": "Ah", "voltage_V": "V"},
        left={"value": "Q_nom - drawn_Ah", "units": "Ah"},
        state_of_charge={"value": "left_Ah/Q_nom", "units": "percent"},
        millivolts={"value": "voltage_V", "units": "mV"},
    )
    assert q.columns == ["left_Ah", "state_of_charge_percent", "millivolts_mV"]
    values = q.evaluate({"drawn_Ah": 1.25, "voltage_V": 3.7}, 0.0)
    assert values["left_Ah"] == pytest.approx(3.75, rel=1e-12)
    assert values["state_of_charge_percent"] == pytest.approx(75.0, rel=1e-12)
    assert values["millivolts_mV"] == pytest.approx(3700.0, rel=1e-12)


def test_running_integral_is_the_trapezoidal_rule_over_accepted_steps():
    """Of a column rising linearly (exact for the rule), in the declared units, restarting at
    reset; a value between commits integrates up to its time without being kept."""
    q = table({"power_kW": "kW"}, energy={"time_integral": "power_kW", "units": "Wh"})
    times = [0.0, 10.0, 25.0, 60.0]
    for t in times:
        q.commit({"power_kW": 2.0 * t}, t)
    exact_J = 1e3 * 2.0 * 60.0**2 / 2
    assert q.evaluate({"power_kW": 120.0}, 60.0)["energy_Wh"] == pytest.approx(exact_J / 3600)
    assert q.evaluate({"power_kW": 140.0}, 70.0)["energy_Wh"] == pytest.approx(
        1e3 * 2.0 * 70.0**2 / 2 / 3600
    )
    q.reset()
    q.commit({"power_kW": 0.0}, 0.0)
    assert q.evaluate({"power_kW": 0.0}, 0.0)["energy_Wh"] == 0.0


@pytest.mark.parametrize(
    "spec, where, message",
    [
        (
            {"value": "voltag_V*2", "units": "V"},
            "output.quantities.bad.value",
            "unknown name 'voltag_V' (did you mean 'voltage_V'?)",
        ),
        (
            {"value": "voltage_V*Q_nom", "units": "W"},
            "output.quantities.bad.units",
            "does not convert to W",
        ),
        (
            {"value": "voltage_V + Q_nom", "units": "V"},
            "output.quantities.bad.value",
            "inconsistent units",
        ),
        (
            {"time_integral": "current", "units": "C"},
            "output.quantities.bad.time_integral",
            "unknown column 'current'",
        ),
    ],
)
def test_bad_definitions_name_their_place(spec, where, message):
    with pytest.raises(CaseError) as caught:
        table({"voltage_V": "V"}, bad=spec)
    assert caught.value.path == where
    assert message in str(caught.value)


def test_a_column_is_written_once():
    with pytest.raises(CaseError) as caught:
        table({"voltage_V": "V"}, voltage={"value": "2*voltage_V", "units": "V"})
    assert caught.value.path == "output.quantities.voltage"
    assert "the column 'voltage_V' is already written" in str(caught.value)


def test_a_bad_definition_stops_the_cli_with_exit_2(tmp_path):
    run = scalebridge(
        "run",
        CASE,
        *[a for s in SMALL_MESH for a in ("--set", s)],
        "--set",
        'output.quantities.probed={ value = "positive_collector_phi_s_V - volts", units = "V" }',
        "-o",
        tmp_path / "run",
        "-q",
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "output.quantities.probed.value" in run.stderr
    assert "unknown name 'volts'" in run.stderr


def test_a_case_quantity_may_not_rewrite_a_terminal_column(tmp_path):
    """voltage_V is the DFN terminal's (a quantity of the whole case): a case quantity of that
    name is refused at its place, not written twice."""
    run = scalebridge(
        "run",
        CASE,
        *[a for s in SMALL_MESH for a in ("--set", s)],
        "--set",
        'output.quantities.voltage={ value = "positive_collector_phi_s_V", units = "V" }',
        "-o",
        tmp_path / "run",
        "-q",
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "output.quantities.voltage: the column 'voltage_V' is already written" in run.stderr
