"""[output.quantities] of columns: expressions of quantities.csv columns and the set's constants,
running time integrals, first crossings and extremes of columns (quantities of fields:
tests/test_output_quantities.py)."""

import math
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


def test_difference_of_two_names_in_a_denominator():
    """Units are checked on values of magnitude 1, where (a - b) is 0: a degree of
    consolidation (s - s_0)/(s_inf - s_0) still gets its units (it crashed with a division by
    zero) and its value; a ratio of a name by itself minus itself is refused by its units."""
    q = table(
        {"settlement_m": "m", "initial_m": "m", "final_mm": "mm"},
        constants=None,
        degree={"value": "(settlement_m - initial_m)/(final_mm - initial_m)", "units": "percent"},
    )
    values = q.evaluate({"settlement_m": 0.003, "initial_m": 0.001, "final_mm": 5.0}, 0.0)
    assert values["degree_percent"] == pytest.approx(50.0, rel=1e-12)
    with pytest.raises(CaseError, match=r"the value is in no units \[dimensionless\], which "):
        table(
            {"a_m": "m", "b_m": "m"}, constants=None, bad={"value": "a_m/(b_m - a_m)", "units": "V"}
        )


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


def test_first_crossing_is_interpolated_in_the_step_and_kept():
    """A column rising as 0.02 K/s from 300 K reaches 303 K at 150 s (exact for the linear
    interpolation), whatever the steps; NaN before; the first crossing is kept when the
    column passes again; from above too; a threshold with units converts to the column's."""
    q = table(
        {"temperature_K": "K"},
        up={"first_crossing": "temperature_K", "at": "29.85 degC", "units": "min"},
        down={"first_crossing": "temperature_K", "at": 300.5, "units": "s"},
    )
    path = [(0.0, 300.0), (70.0, 301.4), (190.0, 303.8), (400.0, 300.2), (500.0, 301.0)]
    rows = []
    for t, T in path:
        rows.append(q.evaluate({"temperature_K": T}, t))
        q.commit({"temperature_K": T}, t)
    assert math.isnan(rows[1]["up_min"]) and math.isnan(rows[0]["down_s"])
    assert [row["up_min"] for row in rows[2:]] == pytest.approx([150.0 / 60] * 3, rel=1e-12)
    # 300.5 K is first reached on the way up (25 s), and stays so when passed falling (~382 s)
    assert [row["down_s"] for row in rows[1:]] == pytest.approx([25.0] * 4, rel=1e-12)
    q.reset()  # from above: start again at 301 K, falling
    for t, T in [(0.0, 301.0), (10.0, 300.0), (20.0, 301.0)]:
        q.commit({"temperature_K": T}, t)
    assert q.evaluate({"temperature_K": 301.0}, 20.0)["down_s"] == pytest.approx(5.0, rel=1e-12)


def test_extremes_over_the_accepted_steps():
    q = table(
        {"stress_Pa": "Pa"},
        peak={"maximum": "stress_Pa", "units": "MPa"},
        trough={"minimum": "stress_Pa", "units": "MPa"},
    )
    for t, value in enumerate([1e6, 4e6, -2e6, 3e6]):
        q.commit({"stress_Pa": value}, float(t))
    now = q.evaluate({"stress_Pa": 5e6}, 4.0)  # not accepted yet: counts only for this row
    assert (now["peak_MPa"], now["trough_MPa"]) == pytest.approx((5.0, -2.0), rel=1e-12)
    assert q.evaluate({"stress_Pa": 0.0}, 4.0)["peak_MPa"] == pytest.approx(4.0, rel=1e-12)
    state = q.state()
    q.reset()
    q.restore(state)  # a checkpoint keeps them
    assert q.evaluate({"stress_Pa": 0.0}, 4.0)["trough_MPa"] == pytest.approx(-2.0, rel=1e-12)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"first_crossing": "temperature_K", "units": "s"}, "first_crossing needs 'at'"),
        ({"maximum": "temperature_K", "at": 3, "units": "K"}, "'at' belongs to first_crossing"),
        (
            {"maximum": "temperature_K", "minimum": "temperature_K", "units": "K"},
            "got maximum and minimum",
        ),
    ],
)
def test_history_quantities_need_one_definition(spec, message):
    with pytest.raises(ValueError, match=message):
        OutputQuantity(**spec)


def test_a_crossing_time_in_a_unit_that_is_no_time_is_refused():
    with pytest.raises(CaseError) as caught:
        table(
            {"temperature_K": "K"}, bad={"first_crossing": "temperature_K", "at": 1, "units": "K"}
        )
    assert caught.value.path == "output.quantities.bad.units"
    assert "does not convert to K" in str(caught.value)


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
        (
            {"first_crossing": "voltage", "at": 3, "units": "s"},
            "output.quantities.bad.first_crossing",
            "unknown column 'voltage' (did you mean 'voltage_V'?)",
        ),
        (
            {"first_crossing": "voltage_V", "at": "3 A", "units": "s"},
            "output.quantities.bad.at",
            "'3 A' has units of A but V was expected",
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


def test_a_condition_on_a_case_quantity_reads_only_the_columns_it_is_made_of():
    """The battery's window event reads voltage_outside_window_V after every step: only the
    voltage is evaluated for it, not the particle and salt amounts of the case's other
    quantities (an integral each), and it is max(V_min - V, V - V_max)."""
    from app.simulation import Simulation

    settings = [*SMALL_MESH, "output.xdmf=false"]
    simulation = Simulation.from_case(CASE, overrides=settings)
    simulation.compile()
    evaluator, asked = simulation._evaluator, []
    evaluate = evaluator.evaluate
    evaluator.evaluate = lambda names=None: asked.append(names) or evaluate(names)
    window = simulation.values(["voltage_outside_window_V"])
    assert [name for names in asked for name in names] == ["voltage_V"]
    voltage = evaluate(["voltage_V"])["voltage_V"]
    V_min, V_max = (CHEN2020.constants[name].value for name in ("V_min", "V_max"))
    expected = max(V_min - voltage, voltage - V_max)
    assert window == {"voltage_outside_window_V": pytest.approx(expected, rel=1e-12)}
