"""Protocols: sequences of steps such as ``"Discharge at 1C until 2.5 V"``, with repeat blocks.

A step is a verb (a name the executing physics defines), an optional setting or ramp, a duration
limit and a termination condition::

    STEP      := VERB [to AMOUNT] [at AMOUNT] [for DURATION] [[or] until CONDITION]
                 (for, until or both; or to with at or for)
    AMOUNT    := NUMBER UNIT | C-RATE ("1C", "0.5C", "C/20")
    CONDITION := AMOUNT | WORDS OP AMOUNT | COLUMN OP NUMBER              (OP: <, <=, >, >=)
               | min(FIELD) OP NUMBER     (max, mean too: the column min_FIELD of any instance)

A step with "to" is a ramp: its setting moves linearly in time from the value it has when the step
starts to the "to" amount, at the rate after "at" ("Ramp to 180 degC at 2 K/min") or over the
"for" duration, and the step ends there unless its duration or condition ends it first.
The battery form reads like PyBaMM's experiments; the grammar itself knows no physics. A lone
"C" after a number is a C-rate, never coulombs (write "coulomb"). A case file lists steps as
strings and repeats them with tables ``{repeat = 3, steps = [...]}`` (app/protocol_sequence.py).
Parsing checks only the form: which verbs exist, and which quantity a bare threshold ("until
2.5 V") applies to, are decided by the physics that executes the step.
"""

import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field

import pint

from app.errors import did_you_mean, listing
from app.expressions import Expression, ExpressionError, parse
from app.units import (
    LARGEST,
    NUMBER,
    UNSIGNED,
    check_unit_text,
    compatible,
    looks_like_quantity,
    parse_units,
    registry,
    split_quantity,
    unit_suffix,
)

ACCEPTED_FORMS = """\
  VERB [at AMOUNT] [for DURATION] [[or] until CONDITION], with 'for', 'until' or both:
    "Rest for 10 minutes", "Discharge at 1C until 2.5 V", "Hold at 4.2 V until C/20",
    "Discharge at 0.5C for 1 hour or until 2.5 V", "Heat at 500 W/m^2 for 2 min"
  VERB to AMOUNT [at RATE] [for DURATION] [[or] until CONDITION], a ramp from the value at the
  step's start, with 'at' (a rate: the amount's units per time) or 'for' (the ramp's time):
    "Ramp to 180 degC at 2 K/min", "Ramp to 0 W/m^2 for 10 min"
  AMOUNT: a number with units ("1 A", "4.2 V", "500 W/m^2") or a C-rate ("2C", "C/3")
  DURATION: a number with a unit of time ("30 s", "10 minutes", "2 h")
  CONDITION: a threshold ("2.5 V", "C/20"); a quantity, one of <, <=, >, >= and a threshold
    ("max temperature > 350 K"); or a column compared with a number ("max_temperature_K >= 400")
    or a field's min, max or mean ("min(degree_of_cure) > 0.95")
  Steps repeat in a table {repeat = 3, steps = ["...", "..."]}"""

MAX_LENGTH = 500  # a step is one line; this also bounds the work of the diagnostics below

FORMS_FIX = f"write the step in one of the accepted forms:\n{ACCEPTED_FORMS}"
# pint reads a lone "C" as coulomb, so C-rates are recognised before units are.
_C_RATE = re.compile(rf"(?P<number>{NUMBER})?\s*C(?:\s*/\s*(?P<divisor>{UNSIGNED}))?")
_QUANTITY = re.compile(rf"(?P<number>{NUMBER})\s*(?P<units>.*)", re.DOTALL)  # for diagnostics
_VERB = re.compile(r"\s*(?P<verb>[A-Za-z][A-Za-z0-9_]*)(?![A-Za-z0-9_])")
_UNTIL = re.compile(r"\b(?:or\s+)?until\b", re.IGNORECASE)
_CLAUSES = re.compile(r"\b(to|at|for)\b", re.IGNORECASE)
_KEYWORDS = ("to", "at", "for", "or", "until")
_COMPARISON = re.compile(r"<=|>=|==|!=|=<|=>|<>|<|>|=")
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9_ ]*")
# "min(degree_of_cure) > 0.95": a field's extreme (or mean) as a plug-in reports it.
_REDUCED = re.compile(r"\s*(min|max|mean)\s*\(\s*([A-Za-z_]\w*)\s*\)\s*")


class ProtocolError(ValueError):
    """A malformed protocol step or an amount that cannot be used as asked.

    Args:
        problem: What is wrong, quoting the step.
        fix: How to fix it; :func:`parse_step` shows the accepted forms unless told otherwise.
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}. Fix: {fix}" if fix else problem)


@dataclass(frozen=True)
class Amount:
    """A setting or threshold as written: a number with units, or a C-rate.

    Attributes:
        magnitude: The number ("C/20" gives 0.05).
        units: The units as written ("A", "W/m^2"); "C" for a C-rate.
        c_rate: Whether this is a multiple of the nominal capacity per hour.
    """

    magnitude: float
    units: str
    c_rate: bool = False

    def to(self, units: str, capacity_ah: float | None = None) -> float:
        """The amount in ``units`` (an SI-coherent unit string).

        A C-rate needs the nominal capacity (A h) and gives a current: 1C = capacity / 1 h.

        Raises:
            ProtocolError: Incompatible dimensions, or a C-rate without a positive capacity.
        """
        if self.c_rate:
            if capacity_ah is None:
                problem = f"the C-rate {self} needs the nominal capacity to become a current"
                raise ProtocolError(
                    problem,
                    'give protocol.capacity (e.g. "5 A*h"), or use a parameter set that has the '
                    "nominal capacity Q_nom",
                )
            if not 0 < capacity_ah < math.inf:
                raise ProtocolError(
                    f"the C-rate {self} needs a positive nominal capacity, got {capacity_ah:g} A*h",
                    "give a positive parameters.Q_nom or protocol.capacity",
                )
            quantity = registry().Quantity(self.magnitude * capacity_ah, "A")
        else:
            quantity = registry().Quantity(self.magnitude, self.units)
        try:
            value = float(quantity.to(units).magnitude)
        except pint.errors.DimensionalityError:
            what = f"the C-rate {self} gives a current, which" if self.c_rate else str(self)
            problem = f"{what} cannot be converted to {units}"
            raise ProtocolError(problem, f"give a value in {units} or a compatible unit") from None
        except (pint.errors.PintError, AttributeError, TypeError, ValueError) as exc:
            raise ProtocolError(f"cannot convert {self} to {units!r} ({exc})") from None
        if not math.isfinite(value):
            raise ProtocolError(f"{self} is not a finite number in {units} (beyond ±{LARGEST})")
        return value

    def __str__(self) -> str:
        return f"{self.magnitude:g}C" if self.c_rate else f"{self.magnitude:g} {self.units}"


@dataclass(frozen=True)
class Condition:
    """When a step ends (besides its duration).

    Attributes:
        text: The condition as written.
        quantity: The quantity as written ("max temperature", "max_temperature_K"); None for a
            bare threshold, whose quantity the executing physics chooses.
        operator: "<", "<=", ">" or ">="; None for a bare threshold.
        threshold: The threshold with its units; None for the expression form.
        expression: The parsed comparison for the expression form, whose names are columns.
    """

    text: str
    quantity: str | None
    operator: str | None
    threshold: Amount | None
    expression: Expression | None
    _number: float | None = field(default=None, repr=False, compare=False)  # expression form

    def resolve(
        self, columns: dict[str, str], capacity_ah: float | None = None
    ) -> tuple[str, str, float] | None:
        """The column, operator and threshold (in the column's units) of a named condition.

        Words match a column when, lowercased with spaces as underscores, they equal the column
        or the column without its unit suffix ("max temperature" -> "max_temperature_K");
        "min(name)" matches the column min_name of any one instance ("cure_min_name").

        Args:
            columns: Units by column name, e.g. ``{"max_temperature_K": "K"}``.
            capacity_ah: The nominal capacity [A h], for a threshold given as a C-rate.

        Returns:
            None for a bare threshold, whose quantity the executing physics chooses.

        Raises:
            ProtocolError: No column or several match, or the threshold has the wrong units.
        """
        if self.quantity is None:
            return None
        column = self._column(columns)
        if self.threshold is None:
            threshold = float(self._number)
        else:
            try:
                threshold = self.threshold.to(columns[column], capacity_ah)
            except ProtocolError as exc:
                raise ProtocolError(f"condition {self.text!r}: {exc.problem}", exc.fix) from None
        # A temperature (not a difference of them, as "temperature_rise_K" is) below absolute
        # zero: the condition holds at once or never, and a step until it heats for ever.
        if column.endswith("temperature_K") and threshold < 0:
            raise ProtocolError(
                f"condition {self.text!r}: {threshold:g} K is below absolute zero, where no "
                "temperature goes",
                'give an absolute temperature, or one in degC ("-10 degC")',
            )
        return column, self.operator, threshold

    def _column(self, columns: dict[str, str]) -> str:
        if self.quantity in columns:
            return self.quantity
        key = "_".join(self.quantity.split()).lower()
        # An expression names its column exactly: that is the name it is evaluated with.
        names = columns.items() if self.expression is None else ()
        matches = [name for name, units in names if key in _spellings(name, units)]
        if reduced := _REDUCED.fullmatch(self.quantity):  # the column of any instance
            key = f"{reduced[1]}_{reduced[2]}".lower()
            matches = [
                name
                for name, units in names
                if any(s == key or s.endswith(f"_{key}") for s in _spellings(name, units))
            ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            problem = f"{self.quantity!r} in {self.text!r} matches several columns: "
            raise ProtocolError(problem + listing(matches), "name the column exactly")
        hint = did_you_mean(key, columns)
        problem = f"no quantity column matches {self.quantity!r} in {self.text!r}{hint}"
        raise ProtocolError(f"{problem}; columns: {listing(columns)}", "name one of the columns")


def _spellings(column: str, units: str) -> set[str]:
    """The lowercased column and its name without its unit suffix."""
    suffix = f"_{unit_suffix(units)}" if unit_suffix(units) else ""
    stem = column.removesuffix(suffix) if suffix and column != suffix else column
    return {column.lower(), stem.lower()}


@dataclass(frozen=True)
class ProtocolStep:
    """One parsed step.

    Attributes:
        text: The step as written.
        verb: The verb, as written (verbs are case-sensitive).
        value: The setting after "at", if any (a ramp's rate when ``to`` is given).
        duration: The duration limit after "for" [s], if any.
        until: The termination condition, if any.
        to: The value a ramp ends at, if the step is a ramp.
    """

    text: str
    verb: str
    value: Amount | None
    duration: float | None
    until: Condition | None
    to: Amount | None = None


@dataclass(frozen=True)
class Repeat:
    """Steps (and nested repeats) run ``count`` times in a row."""

    count: int
    steps: tuple["ProtocolStep | Repeat", ...]


type Item = ProtocolStep | Repeat


def parse_step(text: str, verbs: Collection[str] | None = None) -> ProtocolStep:
    """Parse one step such as ``"Discharge at 0.5C for 1 hour or until 2.5 V"``.

    Args:
        text: The step. Keywords (at, for, or, until) are case-insensitive.
        verbs: The verbs the executing physics knows, when it is known; another verb is an
            error with the closest spelling.

    Raises:
        ProtocolError: The step is malformed; the message quotes it and shows the accepted forms.
    """
    if not isinstance(text, str):
        raise ProtocolError(f"a step must be a string, got {text!r}", FORMS_FIX)
    if not text.strip():
        raise ProtocolError("the step is empty", FORMS_FIX)
    if len(text) > MAX_LENGTH:
        problem = f"the step {text[:30]!r}... is longer than {MAX_LENGTH} characters"
        raise ProtocolError(problem, FORMS_FIX)
    try:
        return _parse_step(text, verbs)
    except ProtocolError as exc:
        problem = f"cannot read the step {text!r}: {exc.problem}"
        raise ProtocolError(problem, exc.fix or FORMS_FIX) from None


def _parse_step(text: str, verbs: Collection[str] | None) -> ProtocolStep:
    match = _VERB.match(text)
    if not match or match["verb"].lower() in _KEYWORDS:
        first = text.split()[0]
        raise ProtocolError(
            f"it must start with a verb (a word such as 'Discharge'), not {first!r}"
        )
    verb = match["verb"]
    if verbs is not None and verb not in verbs:
        problem = f"unknown verb {verb!r}{did_you_mean(verb, verbs)}; known verbs: {listing(verbs)}"
        raise ProtocolError(problem, "verbs are case-sensitive; use one of the known verbs")
    rest = text[match.end() :]
    until = _UNTIL.search(rest)
    head = rest[: until.start()] if until else rest
    before, *clauses = _CLAUSES.split(head)
    if before.strip():
        raise ProtocolError(f"unexpected {before.strip()!r} after the verb {verb!r}")
    keywords = [word.lower() for word in clauses[::2]]
    if keywords != sorted(set(keywords), key=("to", "at", "for").index):
        raise ProtocolError("'to', 'at' and 'for' may each appear once, in that order")
    parts = dict(zip(keywords, (part.strip() for part in clauses[1::2]), strict=True))
    for keyword, what in (("to", "an amount"), ("at", "an amount"), ("for", "a duration")):
        if keyword in parts and not parts[keyword]:
            raise ProtocolError(f"'{keyword}' must be followed by {what}")
    condition = rest[until.end() :].strip() if until else None
    if until and not condition:
        raise ProtocolError("'until' must be followed by a condition")
    if "to" in parts and not {"at", "for"} & parts.keys():
        raise ProtocolError(
            "a ramp ('to AMOUNT') needs its rate ('at 2 K/min') or its time ('for 30 min')"
        )
    if not until and not {"for", "to"} & parts.keys():
        raise ProtocolError("a step needs 'for DURATION', 'until CONDITION' or both")
    return ProtocolStep(
        text=text,
        verb=verb,
        value=_amount(parts["at"], "the rate" if "to" in parts else "the amount")
        if "at" in parts
        else None,
        duration=_duration(parts["for"]) if "for" in parts else None,
        until=_condition(condition) if condition else None,
        to=_amount(parts["to"], "the ramp's end") if "to" in parts else None,
    )


def _try_amount(text: str) -> Amount | None:
    """The amount ``text`` reads as, or None when it is not one (see :func:`_amount`)."""
    if match := _C_RATE.fullmatch(text):
        number, divisor = match["number"], match["divisor"]
        magnitude = _finite(number, text) if number else 1.0
        if divisor is not None:
            if _finite(divisor, text) == 0:
                raise ProtocolError(f"the C-rate {text!r} divides by zero")
            magnitude /= float(divisor)
        return Amount(magnitude, "C", c_rate=True)
    if (parts := split_quantity(text)) is None:
        return None
    number, units = parts
    try:
        check_unit_text(units)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None
    try:
        parse_units(units)
    except ValueError:
        return None
    return Amount(_finite(number, text), units)


def _finite(number: str, text: str) -> float:
    value = float(number)
    if not math.isfinite(value):
        raise ProtocolError(f"the number in {text!r} is too large", "give a finite number")
    return value


def _amount(text: str, what: str) -> Amount:
    """Read an amount, or say what is wrong with it (a missing number, unit, or extra words)."""
    if (amount := _try_amount(text)) is not None:
        return amount
    match = _QUANTITY.fullmatch(text)
    if not match:
        raise ProtocolError(f"{what} {text!r} must be a number with units or a C-rate")
    if not match["units"].strip():
        raise ProtocolError(f"{what} {text!r} has no units")
    words = text.split()
    for end in range(len(words) - 1, 0, -1):  # the longest amount the text starts with
        if _try_amount(" ".join(words[:end])) is not None:
            extra, valid = " ".join(words[end:]), " ".join(words[:end])
            raise ProtocolError(f"unexpected {extra!r} after {valid!r}")
    raise ProtocolError(f"{what} {text!r} has unknown units {match['units'].strip()!r}")


def _duration(text: str) -> float:
    amount = _amount(text, "the duration")
    if amount.c_rate or not compatible(amount.units, "s"):
        raise ProtocolError(f"the duration {text!r} is not a time")
    seconds = amount.to("s")
    if seconds <= 0:
        raise ProtocolError(f"the duration {text!r} must be positive")
    return seconds


def _condition(text: str) -> Condition:
    operators = _COMPARISON.findall(text)
    if not operators:
        return Condition(text, None, None, _amount(text, "the threshold"), None)
    if len(operators) > 1:
        raise ProtocolError(f"the condition {text!r} must be a single comparison")
    operator = operators[0]
    if operator not in _FLIPPED:
        raise ProtocolError(f"unknown operator {operator!r} in {text!r}; use <, <=, > or >=")
    left, right = (side.strip() for side in text.split(operator))
    if _REDUCED.fullmatch(left) and right:
        number = _constant(right)
        threshold = None if number is not None else _amount(right, "the threshold")
        return Condition(text, left.replace(" ", ""), operator, threshold, None, number)
    if not left or not right:
        raise ProtocolError(f"the comparison {text!r} needs a quantity and a threshold")
    if _C_RATE.fullmatch(right) or looks_like_quantity(right):
        if not _WORDS.fullmatch(left):
            raise ProtocolError(f"{left!r} in {text!r} is not the name of a quantity")
        return Condition(text, left, operator, _amount(right, "the threshold"), None)
    if _WORDS.fullmatch(left) and not left.isidentifier() and re.fullmatch(NUMBER, right):
        problem = f"the threshold {right!r} in {text!r} has no units"
        raise ProtocolError(f"{problem}; only a column name may be compared with a bare number")
    try:
        expression = parse(text)
    except ExpressionError as exc:
        raise ProtocolError(f"cannot read the condition: {exc}") from None
    if left in expression.names and (number := _constant(right)) is not None:
        column = left
    elif right in expression.names and (number := _constant(left)) is not None:
        column, operator = right, _FLIPPED[operator]
    else:
        raise ProtocolError(f"the condition {text!r} must compare one column with a number")
    return Condition(text, column, operator, None, expression, number)


def _constant(text: str) -> float | None:
    """The value of an expression without names, else None."""
    try:
        expression = parse(text)
    except ExpressionError:
        return None
    return None if expression.names else float(expression.evaluate({}))
