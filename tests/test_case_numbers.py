"""Numbers in case files: any float notation with units parses, nothing non-finite gets in.

Issue 11: plain decimals with units ("0.0437 1/s") were refused while "1e5 1/m" passed; NaN and
infinity reached the run through TOML literals, strings, overflowing expressions and --set.
"""

import math

import pytest

from app.case import load_case
from app.cli import main
from app.contracts import parse_property
from app.errors import CaseError
from app.units import to_si
from tests.conftest import CASES
from tests.test_bad_input import VALID, check, error_of


@pytest.mark.parametrize(
    ("text", "units", "expected"),
    [
        ("0.0437 1/s", "1/s", 0.0437),
        ("100000 1/m", "1/m", 1e5),
        ("0.0000137 1/K", "1/K", 1.37e-5),
        ("1e5 1/m", "1/m", 1e5),
        ("2.5e-3 1/(m*s)", "1/(m*s)", 2.5e-3),
        ("1_000.5 mm", "m", 1.0005),
        (".5 h", "s", 1800.0),
        ("5. km", "m", 5000.0),
        ("1E+3 g", "kg", 1.0),
        ("+2 min", "s", 120.0),
        ("-3 degC", "K", 270.15),
        ("5 degC/s", "K/s", 5.0),  # a rate: the unit is read as a unit, not as (5 degC)/s
        ("20 °C", "K", 293.15),
        ("3 µm", "m", 3e-6),
    ],
)
def test_any_float_notation_followed_by_a_unit(text, units, expected):
    assert to_si(text, units, "p") == pytest.approx(expected, rel=1e-14)
    assert parse_property(text, units).value == pytest.approx(expected, rel=1e-14)


def test_the_issue_examples_in_a_case():
    physics = {
        "heat": {"conductivity": 1.0},
        "mechanics": {
            "youngs_modulus": "200 GPa",
            "poisson_ratio": 0.3,
            "thermal_expansion": "0.0000137 1/K",
        },
    }
    loaded = load_case({"mesh": {"type": "rectangle"}, "physics": physics})
    assert loaded.physics["mechanics"].params.thermal_expansion.value == pytest.approx(1.37e-5)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1e999 m", "'1e999 m' is not a finite number in m"),
        ("1e307 km", "'1e307 km' is not a finite number in m"),  # overflows on conversion
        ("inf m", "expected a number or a string with units"),
        ("nan m", "expected a number or a string with units"),
        ("0x10 m", "cannot read '0x10 m' as a quantity"),
        ("1 m**9**9**9", "the powers in the units 'm**9**9**9' must be small whole numbers"),
        ("1 m**1e9", "the powers in the units 'm**1e9' must be small whole numbers"),
        ("1 m/(s*s", "the unit 'm/(s*s' cannot be read: a bracket or quote is not closed"),
        ("1 m/(1/0)", "the unit 'm/(1/0)' cannot be read: it divides by zero"),
        ("1 m\x00", "cannot be read: it is not a product of units and powers"),
    ],
)
def test_numbers_a_case_may_not_give(text, fragment):
    with pytest.raises(CaseError) as info:
        to_si(text, "m", "mesh.size")
    assert fragment in str(info.value)
    assert info.value.path == "mesh.size"


def test_overflowing_constant_expression_has_its_own_message(tmp_path, capsys):
    check(tmp_path, VALID.replace("conductivity = 2.0", 'conductivity = "1e308*10"'))
    message = error_of(capsys)
    assert "physics.heat.conductivity: cannot compute '1e308*10' (overflow" in message
    assert "has units of" not in message


# Every way a non-finite number may enter, checked on a case with a protocol, events and output
# times (heat_cycling); each is refused at `check`, at the path where it was written.
NON_FINITE = [
    ("physics.heat.conductivity=nan", "physics.heat.conductivity"),
    ("physics.heat.conductivity=-inf", "physics.heat.conductivity"),
    ('physics.heat.conductivity="1e999"', "physics.heat.conductivity"),
    ('physics.heat.conductivity="1e999 W/(m*K)"', "physics.heat.conductivity"),
    ('physics.heat.conductivity="exp(1000)"', "physics.heat.conductivity"),
    ("physics.heat.boundaries.top.h=inf", "physics.heat.boundaries.top.h"),
    ("physics.heat.conductivity={ domain = nan }", "physics.heat.conductivity.domain"),
    ("time.dt=1e999", "time.dt"),  # TOML reads 1e999 as inf
    ('time.end="1e999 s"', "time.end"),
    ('time.breakpoints=[10, "1e999 s"]', "time.breakpoints[1]"),
    ("time.adaptive.growth=inf", "time.adaptive.growth"),
    ('time.adaptive.dt_max="inf"', "time.adaptive.dt_max"),
    ("solver.rtol=nan", "solver.rtol"),
    ('solver.newton.atol="inf"', "solver.newton.atol"),
    ("solver.petsc.ksp_rtol=nan", "solver.petsc.ksp_rtol"),
    ("coupling.iterations.tolerance=-inf", "coupling.iterations.tolerance"),
    ("output.times=[60, inf]", "output.times[1]"),
    ('output.interval="1e999 min"', "output.interval"),
    ("protocol.controls.Cool.value=nan", "protocol.controls.Cool.value"),
    ('protocol.controls.Heat.scale="inf"', "protocol.controls.Heat.scale"),
    ("protocol.tolerance=inf", "protocol.tolerance"),
    ('protocol.steps=["Heat at 1e999 W/m^2 for 1 s"]', "protocol.steps[0]"),
    ('protocol.steps=["Heat at 1e307 kW/m^2 for 1 s"]', "protocol.steps"),  # on conversion
    ('protocol.steps=["Heat at 1 W/m^2 until max temperature > 1e999 K"]', "protocol.steps[0]"),
    ('events=[{ when = "max_temperature_K > 1e999" }]', "events[0].when"),
    ('events=[{ when = "max_temperature_K > 400", tolerance = nan }]', "events[0].tolerance"),
    ("mesh.length=[inf, 0.02]", "mesh.length[0]"),
    ('mesh.origin=["1e999 m", 0]', "mesh.origin"),
]


@pytest.mark.parametrize(("override", "path"), NON_FINITE, ids=[o for o, _ in NON_FINITE])
def test_non_finite_numbers_are_refused_everywhere(capsys, override, path):
    assert main(["check", str(CASES / "heat_cycling.toml"), "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.count("scalebridge: error:") == 1 and "Traceback" not in err, err
    message = err.splitlines()[0]  # a protocol's fix may list the accepted forms below
    assert f"heat_cycling.toml: {path}" in message
    assert any(word in message for word in ("finite", "too large", "overflow")), message


def test_non_finite_toml_literals_in_the_file(tmp_path, capsys):
    check(tmp_path, VALID.replace("value = 300", "value = nan"))
    assert "physics.heat.boundaries.left.value: nan is not a finite number" in error_of(capsys)
    check(tmp_path, VALID.replace("cells = [4, 4]", "cells = [4, inf]"))
    assert "mesh.cells[1]: inf is not a finite number" in error_of(capsys)


def test_non_finite_numbers_through_the_python_api():
    case = {"mesh": {"type": "interval"}, "physics": {"heat": {"conductivity": math.nan}}}
    with pytest.raises(CaseError, match=r"physics\.heat\.conductivity: nan is not a finite"):
        load_case(case)
    with pytest.raises(CaseError, match=r"time\.end: inf is not a finite"):
        load_case(case | {"physics": {"heat": {}}}, overrides={"time.end": math.inf})


def test_integers_beyond_64_bits(tmp_path, capsys):
    check(tmp_path, VALID.replace("2.0", "123456789012345678901234567890"))
    message = error_of(capsys)
    assert (
        "physics.heat.conductivity: the integer 123456789012345678901234567890 does not fit"
        in message
    )


def test_nesting_deeper_than_any_case_needs(tmp_path, capsys):
    deep = "[" * 40 + "1" + "]" * 40
    check(tmp_path, VALID.replace("conductivity = 2.0", f"conductivity = {deep}"))
    message = error_of(capsys)
    assert "values are nested more than 32 levels deep" in message
    assert "physics.heat.conductivity[0][0][0]" in message
    too_deep = "[" * 5000 + "]" * 5000  # beyond what the TOML reader itself can take
    check(tmp_path, VALID.replace("conductivity = 2.0", f"conductivity = {too_deep}"))
    assert "case.toml: arrays or tables are nested too deeply" in error_of(capsys)


def test_a_table_without_its_type(tmp_path, capsys):
    check(tmp_path, VALID.replace('{ type = "temperature", value = 300 }', "{ value = 300 }"))
    message = error_of(capsys)
    assert (
        "physics.heat.boundaries.left: the table needs a 'type' saying which kind it is" in message
    )
    assert "convection, flux, radiation, temperature" in message


def test_protocol_that_repeats_without_end(capsys):
    override = "protocol.repeat=1000000000000000000"
    assert main(["check", str(CASES / "heat_cycling.toml"), "--set", override]) == 2
    message = error_of(capsys)
    assert "protocol: the protocol runs 2e+18 steps with its repeats; at most 100,000" in message


def test_group_name_that_would_break_the_petsc_prefix(tmp_path, capsys):
    groups = '\n[coupling]\ngroups = [{ name = "a -log_view", physics = ["heat"] }]\n'
    check(tmp_path, VALID + groups)
    message = error_of(capsys)
    assert "coupling.groups.0.name: group names are letters, digits and underscores" in message


def test_non_finite_gmsh_script_parameter(capsys):
    case = str(CASES / "coaxial_capacitor.toml")
    assert main(["check", case, "--set", 'mesh.parameters.inner_radius="-inf"']) == 2
    assert "mesh.parameters.inner_radius: '-inf' is not a finite number" in error_of(capsys)
