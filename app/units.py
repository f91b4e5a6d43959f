"""Units: case values in SI or as strings with units, converted with pint.

Case files accept a plain number (taken as SI) or a string such as ``"45 W/(m*K)"`` or
``"20 degC"``. Every parameter declares its unit; :func:`to_si` converts the given value to that
unit and rejects values of the wrong dimension, and values that are not finite.

The number of a quantity is read as Python's ``float`` reads a literal (``0.0437``, ``.5``,
``5.``, ``1e5``, ``100_000``; not ``inf`` or ``nan``); everything after it is the unit, which
pint reads as a unit only (no arithmetic, no scaling factor): ``"0.0437 1/s"``, ``"5 degC/s"``
(a rate: 5 K/s).
"""

import math
import re
import sys
import tokenize
from functools import cache

import pint

from app.errors import CaseError, shown

_DIGITS = r"\d(?:_?\d)*"
#: An unsigned number in the notation of Python float literals.
UNSIGNED = rf"(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][-+]?{_DIGITS})?"
#: A number in the notation of Python float literals, with an optional sign.
NUMBER = rf"[-+]?{UNSIGNED}"
# A unit starts with a letter, a symbol pint knows (µ, Ω, °, %), a bracket or "1/" (1/s).
_QUANTITY = re.compile(
    rf"\s*(?P<number>(?>{NUMBER}))\s*(?P<units>(?:[^\W\d_]|[µΩ°%(]|1\s*/).*?)\s*", re.DOTALL
)
MAX_UNIT_LENGTH = 100
# pint evaluates powers in unit strings exactly, so "m**9**9**9" would never finish parsing.
_POWER_SIGN = re.compile(r"\*\*|\^")
_SMALL_POWER = re.compile(
    r"(?:\*\*|\^)\s*\(?\s*[-+]?\d{1,2}(?:\.\d+)?(?![\d.eE]|\s*\)?\s*(?:\*\*|\^))"
)
LARGEST = f"{sys.float_info.max:.2g}"  # for messages about overflow


@cache
def registry() -> pint.UnitRegistry:
    """The one pint registry of the application.

    Parsing pint's definitions takes 0.2-0.4 s, a fixed cost of every process; pint keeps the
    parsed definitions in its disk cache (the user's cache folder), where the next process
    finds them (0.02-0.05 s). A cache that cannot be used (a read-only home, or a file another
    process is writing at this moment, which pint does not write atomically) costs only the
    parsing.
    """
    try:
        ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True, cache_folder=":auto:")
    except Exception:  # any failure of the cache (I/O, a half-written pickle): parse instead
        ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    ureg.formatter.default_format = "~"
    return ureg


def split_quantity(text: str) -> tuple[str, str] | None:
    """The number and the unit of a quantity string ("0.0437 1/s" -> ("0.0437", "1/s")), or
    None when ``text`` is not a number followed by a unit."""
    match = _QUANTITY.fullmatch(text)
    return (match["number"], match["units"]) if match else None


def looks_like_quantity(text: str) -> bool:
    """Whether ``text`` reads as a number followed by a unit (rather than an expression)."""
    return split_quantity(text) is not None


def check_unit_text(units: str) -> None:
    """Refuse unit strings pint cannot parse in bounded time and depth.

    Raises:
        ValueError: Too long (pint's parser recurses once per factor), or a power that is not
            a small whole number.
    """
    if len(units) > MAX_UNIT_LENGTH:
        raise ValueError(
            f"the unit {shown(units)} is {len(units)} characters long; at most "
            f"{MAX_UNIT_LENGTH} are allowed"
        )
    if len(_SMALL_POWER.findall(units)) != len(_POWER_SIGN.findall(units)):
        raise ValueError(f"the powers in the units {units!r} must be small whole numbers")


def parse_units(units: str) -> pint.Unit:
    """The pint unit for a unit string; raises ValueError if pint does not know it."""
    if not isinstance(units, str):
        raise ValueError(f"a unit must be a string, got {shown(units)}")
    check_unit_text(units)
    try:
        return registry().Unit(units)
    except (pint.errors.PintError, AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"unknown unit {units!r}") from exc
    except (tokenize.TokenError, SyntaxError, ArithmeticError) as exc:
        # pint reads units with Python's tokenizer and arithmetic: an unclosed bracket or
        # quote, a null byte or "1/0" fail there
        detail = str(exc)
        if isinstance(exc, ArithmeticError):
            reason = "it divides by zero"
        elif "EOF" in detail or "unterminated" in detail:
            reason = "a bracket or quote is not closed"
        else:
            reason = "it is not a product of units and powers"
        raise ValueError(f"the unit {units!r} cannot be read: {reason}") from exc


def compatible(units_a: str, units_b: str) -> bool:
    """Whether two unit strings have the same physical dimension."""
    return parse_units(units_a).dimensionality == parse_units(units_b).dimensionality


def si_factor(units: str) -> float:
    """What one ``units`` is in SI base units (m, kg, s, A, K, mol): 3600 for "A*h"."""
    return float(registry().Quantity(1.0, parse_units(units)).to_base_units().magnitude)


def coherent(units: str) -> bool:
    """Whether one ``units`` is one in SI base units, so that a value in it is what SI
    expressions compute with ("J/(mol*K)" yes; "A*h", "degC", "%" no)."""
    return math.isclose(si_factor(units), 1.0, rel_tol=1e-12)


def has_offset(units: str) -> bool:
    """Whether ``units`` is a scale whose zero is not SI's zero ("degC", "degF"): a value in it
    is no multiple of its SI value, so it converts by a factor only as a difference."""
    return registry().Quantity(0.0, parse_units(units)).to_base_units().m != 0


def _is_interval_of_temperature(unit: pint.Unit, declared: str) -> bool:
    """Whether ``unit`` is pint's interval of an offset scale (delta_degC) given for a value
    declared as a temperature: 10 delta_degC would read as 10 K, not 283.15 K."""
    if "delta_" not in format(unit, "D"):  # its full name, whatever the display format
        return False
    # declared by a plug-in, not read from a case: pint's own parser ("(mol/m^3)**-1/s")
    return registry().Unit(declared).dimensionality == registry().kelvin.dimensionality


def unit_suffix(units: str) -> str:
    """The unit as a name suffix: ``W/m`` -> ``W_per_m``, ``W/m^2`` -> ``W_per_m2``; empty for
    dimensionless quantities (CSV columns are ``<name>_<suffix>``)."""
    compact = units.replace(" ", "").replace("**", "").replace("^", "")
    numerator, *denominators = compact.replace("(", "").replace(")", "").split("/")
    suffix = "_per_".join([numerator, *denominators]).replace("*", "_")
    return "" if suffix == "dimensionless" else suffix


def to_si(value: float | int | str, units: str, path: str, *, difference: bool = False) -> float:
    """Convert a case value to a finite float in ``units``.

    Args:
        value: A number (already in ``units``) or a string "<number> <unit>".
        units: The unit the parameter is declared in (SI-coherent, e.g. "W/(m*K)").
        path: Case-file path of the value, for error messages.
        difference: The value is a change (a step's limit, Tg - T), so a scale with an offset
            gives an interval: "5 degC" is 5 K, where as a temperature it is 278.15 K.

    Raises:
        CaseError: The value is not a number, is not finite (also after conversion), or has
            the wrong dimension.
    """
    if isinstance(value, bool):
        raise CaseError(path, f"expected a number in {units}, got {value!r}")
    if isinstance(value, int | float):
        return _finite(value, value, units, path)
    parts = split_quantity(value) if isinstance(value, str) else None
    if parts is None:
        raise CaseError(
            path,
            f'expected a number or a string with units such as "1 {units}", got {shown(value)}',
        )
    number, unit_text = parts
    try:
        unit = parse_units(unit_text)
    except ValueError as exc:
        raise CaseError(path, f"cannot read {shown(value)} as a quantity: {exc}") from None
    magnitude = _finite(float(number), value, units, path)
    quantity = registry().Quantity(magnitude, unit)
    if difference and has_offset(unit_text):
        quantity = quantity - registry().Quantity(0.0, unit)  # pint's delta units
    elif not difference and _is_interval_of_temperature(unit, units):
        raise CaseError(
            path,
            f"{shown(value)} is a temperature difference, but a temperature was expected: "
            f'give the temperature itself ("{number} degC" or a value in {units})',
        )
    try:
        converted = quantity.to(units).magnitude
    except pint.errors.DimensionalityError:
        raise CaseError(
            path,
            f"{shown(value)} has units of {quantity.units:~} but {units} was expected",
            f"give a value in {units} or a compatible unit",
        ) from None
    return _finite(converted, value, units, path)


def _finite(number: float | int, given: object, units: str, path: str) -> float:
    """``number`` as a float; a CaseError when it is not finite (nan, inf, overflow)."""
    try:
        result = float(number)
    except OverflowError:
        result = math.inf
    if math.isnan(result):
        raise CaseError(path, f"expected a finite number in {units}, got {shown(given)}")
    if math.isinf(result):
        problem = f"{shown(given)} is not a finite number in {units} (beyond ±{LARGEST})"
        raise CaseError(path, problem, "give a finite number")
    return result
