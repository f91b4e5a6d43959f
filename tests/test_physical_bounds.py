"""Values no physical state takes (an absolute temperature below 0 K, a negative
concentration), given as constants, are refused at their case path before any compute."""

import pytest

from app.cli import main
from tests.test_bad_input import VALID, error_of


@pytest.mark.parametrize(
    ("setting", "place", "given"),
    [
        (
            "boundaries.top = { type = 'temperature', value = '-5 K' }",
            "physics.heat.boundaries.top.value",
            "-5 K",
        ),
        (
            "boundaries.top = { type = 'temperature', value = '-300 degC' }",
            "physics.heat.boundaries.top.value",
            "-26.85 K",
        ),
        (
            "boundaries.top = { type = 'convection', h = 10, ambient = '-1 K' }",
            "physics.heat.boundaries.top.ambient",
            "-1 K",
        ),
        ("initial = '-0.5 K'", "physics.heat.initial", "-0.5 K"),
    ],
)
def test_absolute_temperature_below_zero_kelvin(tmp_path, capsys, setting, place, given):
    case = tmp_path / "case.toml"
    case.write_text(VALID + setting + "\n")
    assert main(["check", str(case)]) == 2
    assert f"{place}: must be >= 0 K, got {given}." in error_of(capsys)


TRANSPORT = """
[mesh]
type = "interval"
cells = [4]

[physics.mass_transport.species.c]
diffusivity = 1.0
"""


@pytest.mark.parametrize(
    ("setting", "place"),
    [
        ("boundaries.left = { type = 'concentration', value = -1 }", "boundaries.left.value"),
        (
            "boundaries.left = { type = 'mass_transfer', coefficient = 1, ambient = '-2 mol/m^3' }",
            "boundaries.left.ambient",
        ),
        ("initial = -1", "initial"),
    ],
)
def test_negative_concentration(tmp_path, capsys, setting, place):
    case = tmp_path / "case.toml"
    case.write_text(TRANSPORT + setting + "\n")
    assert main(["check", str(case)]) == 2
    message = error_of(capsys)
    assert f"physics.mass_transport.species.c.{place}: must be >= 0 mol/m^3, got -" in message
