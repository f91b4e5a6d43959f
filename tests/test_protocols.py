"""Tests of protocol steps, repeat blocks and their expansion (app.protocols)."""

import time

import pytest

import app  # noqa: F401  (imported before dolfinx: it orders MPI correctly)
from app.errors import CaseError
from app.protocol_sequence import expand, parse_protocol
from app.protocols import (
    ACCEPTED_FORMS,
    Amount,
    ProtocolError,
    ProtocolStep,
    Repeat,
    parse_step,
)
from app.units import looks_like_quantity, to_si

COLUMNS = {"max_temperature_K": "K", "voltage_V": "V", "heat_flow_left_W_per_m": "W/m"}


def amount(step: ProtocolStep) -> tuple[float, str, bool]:
    assert step.value is not None
    return step.value.magnitude, step.value.units, step.value.c_rate


# --------------------------------------------------------------------------------------------
# The documented forms
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "verb", "value", "duration", "threshold"),
    [
        ("Discharge at 1C until 2.5 V", "Discharge", (1.0, "C", True), None, (2.5, "V", False)),
        (
            "Discharge at 0.5C for 1 hour or until 2.5 V",
            "Discharge",
            (0.5, "C", True),
            3600.0,
            (2.5, "V", False),
        ),
        ("Rest for 10 minutes", "Rest", None, 600.0, None),
        ("Charge at 1 A until 4.2 V", "Charge", (1.0, "A", False), None, (4.2, "V", False)),
        ("Hold at 4.2 V until C/20", "Hold", (4.2, "V", False), None, (0.05, "C", True)),
        ("Charge at C/3 until 4.1 V", "Charge", (1 / 3, "C", True), None, (4.1, "V", False)),
        ("Discharge at 2 W for 10 minutes", "Discharge", (2.0, "W", False), 600.0, None),
        ("Discharge at 2C for 30 s", "Discharge", (2.0, "C", True), 30.0, None),
        ("Cool for 10 minutes", "Cool", None, 600.0, None),
        ("Rest for 2 h", "Rest", None, 7200.0, None),
        ("Rest for 1 day", "Rest", None, 86400.0, None),
        ("Charge at 2C/4 for 90 seconds", "Charge", (0.5, "C", True), 90.0, None),
    ],
)
def test_battery_forms(text, verb, value, duration, threshold):
    step = parse_step(text)
    assert step.text == text
    assert step.verb == verb
    if value is None:
        assert step.value is None
    else:
        magnitude, units, c_rate = amount(step)
        assert magnitude == pytest.approx(value[0])
        assert (units, c_rate) == value[1:]
    assert step.duration == (None if duration is None else pytest.approx(duration))
    if threshold is None:
        assert step.until is None
    else:
        until = step.until
        assert (until.quantity, until.operator, until.expression) == (None, None, None)
        assert until.threshold.magnitude == pytest.approx(threshold[0])
        assert (until.threshold.units, until.threshold.c_rate) == threshold[1:]


def test_condition_naming_a_quantity_in_words():
    step = parse_step("Heat at 500 W/m^2 until max temperature > 350 K")
    assert (step.verb, amount(step), step.duration) == ("Heat", (500.0, "W/m^2", False), None)
    until = step.until
    assert until.text == "max temperature > 350 K"
    assert (until.quantity, until.operator) == ("max temperature", ">")
    assert until.threshold == Amount(350.0, "K")
    assert until.expression is None


def test_expression_condition():
    step = parse_step("Heat at 5e4 W/m^2 for 2 min or until max_temperature_K >= 400")
    assert amount(step) == (5e4, "W/m^2", False)
    assert step.duration == pytest.approx(120.0)
    until = step.until
    assert (until.quantity, until.operator, until.threshold) == ("max_temperature_K", ">=", None)
    assert until.expression.names == {"max_temperature_K"}
    assert until.expression.evaluate({"max_temperature_K": 401.0}) is True
    assert until.expression.evaluate({"max_temperature_K": 399.0}) is False


@pytest.mark.parametrize("number", ["1e-4", "2.5E3", ".5e-2"])
def test_a_column_compared_with_a_number_in_exponent_notation(number: str):
    """'1e-4' is a number, not 1 of a unit named 'e-4' (which could never convert to A)."""
    until = parse_step(f"Wait until current_A < {number}").until
    assert until.resolve({"current_A": "A"}) == ("current_A", "<", pytest.approx(float(number)))
    assert until.expression.evaluate({"current_A": 0.0}) is True


@pytest.mark.parametrize(
    ("text", "si"), [("1e5 1/m", 1e5), ("2 1/s", 2.0), ("1.5e-3 m", 1.5e-3), ("1e3 mm", 1.0)]
)
def test_quantities_with_exponents_and_reciprocal_units(text: str, si: float):
    """An exponent belongs to the number; a unit may start with '1/'."""
    units = "1/m" if "1/m" in text else "1/s" if "1/s" in text else "m"
    assert looks_like_quantity(text)
    assert to_si(text, units, "x") == pytest.approx(si)


def test_keywords_are_case_insensitive_and_whitespace_is_free():
    step = parse_step("  Discharge   At 0.5C  FOR 1   hour\tOr   Until  2.5   V ")
    assert (step.verb, amount(step), step.duration) == ("Discharge", (0.5, "C", True), 3600.0)
    assert step.until.threshold == Amount(2.5, "V")
    assert parse_step("Rest UNTIL 2.5 V").until.threshold == Amount(2.5, "V")
    assert parse_step("Discharge at 0.5 C for 1 s").value == Amount(0.5, "C", c_rate=True)


def test_verbs_are_user_names_and_case_sensitive():
    assert parse_step("heat_up2 for 1 s").verb == "heat_up2"
    assert parse_step("Discharge for 1 s", verbs={"Discharge", "Rest"}).verb == "Discharge"
    with pytest.raises(ProtocolError) as info:
        parse_step("discharge for 1 s", verbs={"Discharge", "Rest"})
    assert "unknown verb 'discharge' (did you mean 'Discharge'?)" in str(info.value)
    assert "known verbs: Discharge, Rest" in str(info.value)


def test_no_until_without_for_is_fine_and_conditions_keep_their_words():
    step = parse_step("Cool until max temperature <= 300 K")
    assert (step.duration, step.until.quantity, step.until.operator) == (
        None,
        "max temperature",
        "<=",
    )


# --------------------------------------------------------------------------------------------
# Amounts
# --------------------------------------------------------------------------------------------
def test_c_rates_need_the_capacity():
    assert Amount(1.0, "C", c_rate=True).to("A", capacity_ah=5.0) == pytest.approx(5.0)
    c_20 = parse_step("Hold at 4.2 V until C/20").until.threshold
    assert c_20.to("A", capacity_ah=5.0) == pytest.approx(0.25)
    assert c_20.to("mA", capacity_ah=5.0) == pytest.approx(250.0)
    with pytest.raises(ProtocolError, match="needs the nominal capacity"):
        c_20.to("A")
    for capacity in (0.0, -5.0):
        with pytest.raises(
            ProtocolError, match=f"needs a positive nominal capacity, got {capacity:g} A"
        ):
            c_20.to("A", capacity_ah=capacity)
    with pytest.raises(ProtocolError, match=r"0\.05C gives a current, which cannot be conver"):
        c_20.to("V", capacity_ah=5.0)


def test_amount_conversions():
    assert Amount(500.0, "W/m^2").to("W/m^2") == pytest.approx(500.0)
    assert Amount(2.0, "kW").to("W") == pytest.approx(2000.0)
    assert Amount(350.0, "degC").to("K") == pytest.approx(623.15)
    assert Amount(1.0, "A").to("A", capacity_ah=5.0) == 1.0  # the capacity matters to C-rates only
    with pytest.raises(ProtocolError, match="1 A cannot be converted to V"):
        Amount(1.0, "A").to("V")
    with pytest.raises(ProtocolError, match="cannot convert 1 A to 'Q'"):
        Amount(1.0, "A").to("Q")


# --------------------------------------------------------------------------------------------
# Conditions against quantity columns
# --------------------------------------------------------------------------------------------
def condition(text: str):
    return parse_step(f"Run until {text}").until


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max temperature > 350 K", ("max_temperature_K", ">", 350.0)),
        ("max temperature > 350 degC", ("max_temperature_K", ">", 623.15)),
        ("Max  Temperature >= 400 K", ("max_temperature_K", ">=", 400.0)),
        ("max_temperature_K < 80 degF", ("max_temperature_K", "<", 299.8166667)),
        ("voltage <= 2500 mV", ("voltage_V", "<=", 2.5)),
        ("heat flow left > 5 kW/m", ("heat_flow_left_W_per_m", ">", 5000.0)),
        ("heat_flow_left_W_per_m < 5 W/m", ("heat_flow_left_W_per_m", "<", 5.0)),
        ("max_temperature_K >= 400", ("max_temperature_K", ">=", 400.0)),
        ("400 <= max_temperature_K", ("max_temperature_K", ">=", 400.0)),
        ("300 + 50 > max_temperature_K", ("max_temperature_K", "<", 350.0)),
        ("voltage_V < 2.5", ("voltage_V", "<", 2.5)),
    ],
)
def test_resolve(text, expected):
    column, operator, threshold = condition(text).resolve(COLUMNS)
    assert (column, operator) == expected[:2]
    assert threshold == pytest.approx(expected[2])


def test_resolve_a_bare_threshold_is_left_to_the_caller():
    assert condition("2.5 V").resolve(COLUMNS) is None
    assert condition("C/20").resolve(COLUMNS) is None


def test_resolve_a_c_rate_threshold():
    limit = condition("current < C/20")
    assert limit.resolve({"current_A": "A"}, capacity_ah=5.0) == ("current_A", "<", 0.25)
    with pytest.raises(ProtocolError, match="condition 'current < C/20': the C-rate"):
        limit.resolve({"current_A": "A"})


def test_resolve_unknown_quantity_suggests_a_column():
    with pytest.raises(ProtocolError) as info:
        condition("max temprature > 350 K").resolve(COLUMNS)
    message = str(info.value)
    assert "no quantity column matches 'max temprature'" in message
    assert "(did you mean 'max_temperature_K'?)" in message
    assert "columns: heat_flow_left_W_per_m, max_temperature_K, voltage_V" in message


def test_resolve_expression_names_its_column_exactly():
    with pytest.raises(ProtocolError, match="did you mean 'max_temperature_K'"):
        condition("max_temprature_K >= 400").resolve(COLUMNS)
    with pytest.raises(ProtocolError, match="no quantity column matches 'Max_Temperature_K'"):
        condition("Max_Temperature_K >= 400").resolve(COLUMNS)


def test_resolve_ambiguous_and_wrong_units():
    columns = {"temperature_K": "K", "temperature_degC": "degC"}
    with pytest.raises(ProtocolError, match="matches several columns: temperature_K, temper"):
        condition("temperature > 300 K").resolve(columns)
    assert condition("temperature_degC > 300 K").resolve(columns) == pytest.approx(
        ("temperature_degC", ">", 26.85)
    )
    with pytest.raises(
        ProtocolError, match="'max temperature > 2 V': 2 V cannot be converted to K"
    ):
        condition("max temperature > 2 V").resolve(COLUMNS)


# --------------------------------------------------------------------------------------------
# Malformed steps
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the step is empty"),
        ("   ", "the step is empty"),
        ("at 1C until 2.5 V", "must start with a verb (a word such as 'Discharge'), not 'at'"),
        ("10 minutes rest", "must start with a verb"),
        ("Discharge at until 2.5 V", "'at' must be followed by an amount"),
        ("Discharge at 1C for until 2.5 V", "'for' must be followed by a duration"),
        ("Rest until", "'until' must be followed by a condition"),
        ("Discharge at 1 Q until 2.5 V", "the amount '1 Q' has unknown units 'Q'"),
        ("Discharge at 2.5 until 2 V", "the amount '2.5' has no units"),
        ("Discharge at fast until 2 V", "the amount 'fast' must be a number with units or a C"),
        ("Rest for 5 V", "the duration '5 V' is not a time"),
        ("Rest for C/2", "the duration 'C/2' is not a time"),
        ("Rest for 0 s", "the duration '0 s' must be positive"),
        ("Discharge at 1C", "a step needs 'for DURATION', 'until CONDITION' or both"),
        ("Rest", "a step needs 'for DURATION', 'until CONDITION' or both"),
        ("Discharge at 1C until voltage = 2.5 V", "unknown operator '=' in 'voltage = 2.5 V'"),
        ("Discharge at 1C until voltage == 2.5 V", "unknown operator '=='"),
        ("Rest for 10 minutes please", "unexpected 'please' after '10 minutes'"),
        ("Discharge at 1 A now until 2.5 V", "unexpected 'now' after '1 A'"),
        ("Rest until 2.5 V for 10 minutes", "unexpected 'for 10 minutes' after '2.5 V'"),
        ("Discharge at 1C for 1 hour or 2.5 V", "unexpected 'or 2.5 V' after '1 hour'"),
        ("Discharge quickly at 1C until 2.5 V", "unexpected 'quickly' after the verb"),
        ("Rest for 1 s for 2 s", "'to', 'at' and 'for' may each appear once, in that order"),
        ("Rest for 1 s at 1 A", "'to', 'at' and 'for' may each appear once, in that order"),
        ("Discharge at C/0 until 2.5 V", "the C-rate 'C/0' divides by zero"),
        ("Rest until voltage", "the threshold 'voltage' must be a number with units"),
        ("Heat until max temperature > 350", "the threshold '350' in 'max temperature > 350'"),
        ("Heat until 0 < x < 1", "must be a single comparison"),
        ("Heat until x > 1 and y < 2", "must be a single comparison"),
        ("Heat until x > y", "the condition 'x > y' must compare one column with a number"),
        ("Heat until 2 V > 3 K", "'2 V' in '2 V > 3 K' is not the name of a quantity"),
        ("Heat until 350 K < max temperature", "'350 K < max temperature' is not a valid exp"),
        ("Heat until x > foo(1)", "the function 'foo' is not allowed"),
        ("Rest for 10 m**9**9**9", "the powers in the units 'm**9**9**9' must be small"),
        ("Rest for " + "1 " * 300 + "s", "is longer than 500 characters"),
    ],
)
def test_malformed_steps(text, fragment):
    started = time.perf_counter()
    with pytest.raises(ProtocolError) as info:
        parse_step(text)
    assert time.perf_counter() - started < 5
    message = str(info.value)
    assert fragment in message
    assert ACCEPTED_FORMS in message
    if text.strip() and len(text) < 500:
        assert f"cannot read the step {text!r}" in message


def test_a_number_too_large_is_not_a_malformed_step():
    with pytest.raises(ProtocolError) as info:
        parse_step("Rest for 1e999 s")
    assert "the number in '1e999 s' is too large. Fix: give a finite number" in str(info.value)
    assert ACCEPTED_FORMS not in str(info.value)


def test_only_malformed_steps_show_the_forms():
    with pytest.raises(ProtocolError) as info:
        Amount(1.0, "A").to("V")
    assert ACCEPTED_FORMS not in str(info.value)
    assert str(ProtocolError("the monitor is not a column")) == "the monitor is not a column"


def test_a_step_must_be_a_string():
    with pytest.raises(ProtocolError, match="a step must be a string, got 3"):
        parse_step(3)


def test_accepted_forms_show_every_form():
    for example in ("1C until 2.5 V", "C/20", "or until", "max temperature > 350 K"):
        assert example in ACCEPTED_FORMS
    assert "max_temperature_K >= 400" in ACCEPTED_FORMS
    assert "{repeat = 3, steps" in ACCEPTED_FORMS
    assert len(ACCEPTED_FORMS.splitlines()) > 3


# --------------------------------------------------------------------------------------------
# Protocols and repeats
# --------------------------------------------------------------------------------------------
def test_parse_protocol_with_nested_repeats():
    steps = parse_protocol(
        [
            "Charge at 1 A until 4.2 V",
            {
                "repeat": 2,
                "steps": ["Discharge at 1C until 2.5 V", {"repeat": 3, "steps": ["Rest for 1 s"]}],
            },
        ]
    )
    assert isinstance(steps[0], ProtocolStep)
    assert isinstance(steps[1], Repeat) and steps[1].count == 2
    inner = steps[1].steps[1]
    assert isinstance(inner, Repeat) and inner.count == 3
    assert inner.steps[0].duration == 1.0
    verbs = [step.verb for _, _, step in expand(steps)]
    assert verbs == ["Charge", *(["Discharge", "Rest", "Rest", "Rest"] * 2)]


@pytest.mark.parametrize(
    ("items", "path", "fragment"),
    [
        ("Rest for 1 s", "protocol.steps", "expected a list of steps and repeat tables"),
        ([], "protocol.steps", "no steps given"),
        (["Rest for 1 s", 5], "protocol.steps[1]", "expected a step or a repeat table, got 5"),
        (["Rest for 1 s", "Rest", "Rest for 2 s"], "protocol.steps[1]", "needs 'for DURATION'"),
        (
            ["Rest for 1 s", {"repeat": 2, "steps": ["Discharge at 1 Q until 2 V"]}],
            "protocol.steps[1].steps[0]",
            "unknown units 'Q'",
        ),
        (
            [{"repeat": 2, "step": ["Rest for 1 s"]}],
            "protocol.steps[0].step",
            "unknown key 'step' (did you mean 'steps'?); allowed keys here: repeat, steps",
        ),
        ([{"steps": ["Rest for 1 s"]}], "protocol.steps[0]", "missing required key 'repeat'"),
        ([{"repeat": 2}], "protocol.steps[0]", "missing required key 'steps'"),
        ([{"repeat": 0, "steps": ["Rest for 1 s"]}], "protocol.steps[0].repeat", "got 0"),
        ([{"repeat": -2, "steps": ["Rest for 1 s"]}], "protocol.steps[0].repeat", "got -2"),
        ([{"repeat": 2.5, "steps": ["Rest for 1 s"]}], "protocol.steps[0].repeat", "got 2.5"),
        ([{"repeat": True, "steps": ["Rest for 1 s"]}], "protocol.steps[0].repeat", "got True"),
        (
            [{"repeat": 2, "steps": "Rest for 1 s"}],
            "protocol.steps[0].steps",
            "expected a list of steps and repeat tables, got 'Rest for 1 s'",
        ),
        ([{"repeat": 2, "steps": []}], "protocol.steps[0].steps", "no steps given"),
    ],
)
def test_parse_protocol_errors(items, path, fragment):
    with pytest.raises(CaseError) as info:
        parse_protocol(items)
    assert info.value.path == path
    assert fragment in info.value.problem
    assert str(info.value).startswith(f"{path}: ")


def test_parse_protocol_errors_show_the_accepted_forms():
    with pytest.raises(CaseError) as info:
        parse_protocol(["Rest for 10 minutes please"], path="cycling.steps")
    error = info.value
    assert error.path == "cycling.steps[0]"
    assert error.problem == (
        "cannot read the step 'Rest for 10 minutes please': unexpected 'please' after '10 minutes'"
    )
    assert ACCEPTED_FORMS in error.fix
    assert ACCEPTED_FORMS in str(error)


def test_parse_protocol_checks_verbs_when_known():
    with pytest.raises(CaseError) as info:
        parse_protocol([{"repeat": 2, "steps": ["Rst for 1 s"]}], verbs=["Rest", "Charge"])
    assert info.value.path == "protocol.steps[0].steps[0]"
    assert "unknown verb 'Rst' (did you mean 'Rest'?)" in info.value.problem


def named(*verbs: str) -> list[ProtocolStep]:
    return [parse_step(f"{verb} for 1 s") for verb in verbs]


def order(steps, repeat: int = 1) -> list[tuple[int, int, str]]:
    return [(cycle, index, step.verb) for cycle, index, step in expand(steps, repeat)]


def test_expand_cycles():
    a, b = named("A", "B")
    expected = [(0, 0, "A"), (0, 1, "B"), (1, 2, "A"), (1, 3, "B"), (2, 4, "A"), (2, 5, "B")]
    assert order([a, b], repeat=3) == expected
    assert order([Repeat(3, (a, b))]) == expected
    assert order([a, b]) == [(0, 0, "A"), (0, 1, "B")]


def test_expand_nested_repeats():
    a, b, c, d = named("A", "B", "C", "D")
    nested = Repeat(2, (a, Repeat(2, (b,))))
    assert order([nested]) == [
        (0, 0, "A"),
        (0, 1, "B"),
        (0, 2, "B"),
        (1, 3, "A"),
        (1, 4, "B"),
        (1, 5, "B"),
    ]
    cycles = [cycle for cycle, _, _ in expand([a, Repeat(2, (b, c)), d])]
    assert cycles == [0, 1, 1, 2, 2, 3]
    assert [cycle for cycle, _, _ in expand([a, Repeat(2, (b, c)), d], repeat=2)] == [0] * 6 + [
        1
    ] * 6
    assert [index for _, index, _ in expand([nested], repeat=2)] == list(range(12))


def test_expand_is_lazy_and_checks_repeat():
    (a,) = named("A")
    huge = expand([Repeat(10**12, (a,))])
    assert [next(huge)[1] for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="repeat must be at least 1"):
        list(expand([a], repeat=0))
