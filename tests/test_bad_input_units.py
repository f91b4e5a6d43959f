"""Units a case may write that convert differently by what the value means: a temperature in
degC is 273.15 K above its number, a temperature difference in degC is its number in K."""

import pytest

from app.cli import main
from app.events import step_limits
from physics_modules.mechanics.parameters import WLFShift
from physics_modules.reaction_conversions import GlassTransition
from tests.test_bad_input import VALID, check, error_of, write


@pytest.mark.parametrize(("limit", "kelvin"), [("5 degC", 5.0), ("9 degF", 5.0), ("5 K", 5.0)])
def test_a_step_limit_on_a_temperature_is_a_change(limit, kelvin):
    """'[time.adaptive] limits' of 5 degC let a step change the temperature by 278.15 K."""
    limits = step_limits({"max_temperature_K": limit}, {"max_temperature_K": "K"})
    assert limits["max_temperature_K"] == pytest.approx(kelvin, rel=1e-12)


def test_differences_of_temperature_in_degrees_and_temperatures_beside_them():
    """WLF's C2 and Tg - T are differences; the reference and Tg's ends are temperatures."""
    shift = {"type": "wlf", "reference_temperature": "120 degC", "c1": 17.4, "c2": "51.6 degC"}
    wlf = WLFShift.model_validate(shift)
    assert wlf.c2.value == pytest.approx(51.6, rel=1e-12)
    assert wlf.reference_temperature.value == pytest.approx(393.15, rel=1e-12)
    glass = {"uncured": "0 degC", "cured": "200 degC", "ratio": 0.5, "sharpness": 0.1}
    transition = GlassTransition.model_validate({**glass, "offset": "18 degF"})
    assert transition.offset == pytest.approx(10.0, rel=1e-12)
    assert (transition.uncured, transition.cured) == pytest.approx((273.15, 473.15), rel=1e-12)


@pytest.mark.parametrize("given", ["10 delta_degC", "18 delta_degF"])
def test_a_temperature_difference_given_as_a_temperature_is_refused(tmp_path, capsys, given):
    """10 delta_degC where a boundary temperature is expected read as 10 K, exit 0."""
    boundary = f'boundaries.right = {{ type = "temperature", value = "{given}" }}'
    text = VALID.replace("conductivity = 2.0", f"conductivity = 2.0\n{boundary}")
    check(tmp_path, text)
    message = error_of(capsys)
    assert "physics.heat.boundaries.right.value" in message
    assert "temperature difference, but a temperature was expected" in message
    assert WLFShift.model_validate(  # where a difference is declared, it is one
        {"type": "wlf", "reference_temperature": "393.15 K", "c1": 17.4, "c2": given}
    ).c2.value == pytest.approx(10.0, rel=1e-12)


@pytest.mark.parametrize(
    "definition",
    [
        'value = "max_temperature_K", units = "degC"',
        'value = "temperature", units = "degF"',
        'maximum = "max_temperature_K", units = "degC"',
    ],
)
def test_a_column_in_degrees_celsius_is_refused(tmp_path, capsys, definition):
    """A column is its SI value times a factor: 300 K was written as -81645 'degC'."""
    check(tmp_path, VALID + f"\n[output.quantities]\nhot = {{ {definition} }}\n")
    message = error_of(capsys)
    assert "output.quantities.hot.units" in message
    assert "units = 'K'" in message


def test_a_column_of_a_temperature_difference_in_degrees_is_written(tmp_path, capsys):
    """delta_degC is a multiple of K: the spread of a 300 K to 310 K plate, 10 delta_degC."""
    spread = 'spread = { value = "max_temperature_K - min_temperature_K", units = "delta_degC" }'
    text = VALID.replace("conductivity = 2.0", "conductivity = 2.0\n"
                         'boundaries.right = { type = "temperature", value = 310 }')  # fmt: skip
    case = write(tmp_path, text + f"\n[output.quantities]\n{spread}\n")
    assert main(["run", str(case), "-o", str(tmp_path / "out"), "-q"]) == 0
    header, row = (tmp_path / "out" / "quantities.csv").read_text().splitlines()[:2]
    assert float(row.split(",")[header.split(",").index("spread_delta_degC")]) == pytest.approx(10)


PRESCRIBED = """
[mesh]
type = "rectangle"
cells = [2, 2]

[physics.oven]
type = "prescribed"
fields.temperature = { units = "UNITS", value = "VALUE" }
"""


@pytest.mark.parametrize(("units", "value"), [("degC", "96.85"), ("mK", "370 K")])
def test_a_prescribed_field_in_units_other_than_si_is_refused(tmp_path, capsys, units, value):
    """A prescribed temperature of 96.85 degC was read as 96.85 K by its consumer (a cure at
    370 K that never started), one of 370 K in mK as 370000 K."""
    check(tmp_path, PRESCRIBED.replace("UNITS", units).replace("VALUE", value))
    message = error_of(capsys)
    assert "physics.oven.fields.temperature.units: field 'temperature' of 'oven'" in message
    assert "Fix: declare it in K" in message


def test_a_prescribed_field_in_si_takes_a_value_in_degrees(tmp_path, capsys):
    """The fix the message gives: units = 'K' with the value '96.85 degC'."""
    case = write(tmp_path, PRESCRIBED.replace("UNITS", "K").replace("VALUE", "96.85 degC"))
    assert main(["check", str(case)]) == 0
