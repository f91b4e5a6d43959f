"""Units: case values in SI or as strings with units, converted with pint.

Case files accept a plain number (taken as SI) or a string such as ``"45 W/(m*K)"`` or
``"20 degC"``. Every parameter declares its unit; :func:`to_si` converts the given value to that
unit and rejects values of the wrong dimension.
"""

import re
from functools import cache

import pint

from app.errors import CaseError

# A number followed by a unit, e.g. "45 W/(m*K)", "1.5e-3 m", "20 degC", "1e5 1/m". The
# exponent is atomic: "1e-4" is a number, not 1 of a unit "e-4" (an event "x_A > 1e-4").
_QUANTITY = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)(?>([eE][-+]?\d+)?)(\s*[A-Za-zµΩ°%(]|\s+1\s*/)")


@cache
def registry() -> pint.UnitRegistry:
    """The one pint registry of the application."""
    ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    ureg.formatter.default_format = "~"
    return ureg


def looks_like_quantity(text: str) -> bool:
    """Whether ``text`` reads as a number followed by a unit (rather than an expression)."""
    return bool(_QUANTITY.match(text))


def parse_units(units: str) -> pint.Unit:
    """The pint unit for a unit string; raises ValueError if pint does not know it."""
    try:
        return registry().Unit(units)
    except (pint.errors.UndefinedUnitError, AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"unknown unit '{units}'") from exc


def compatible(units_a: str, units_b: str) -> bool:
    """Whether two unit strings have the same physical dimension."""
    return parse_units(units_a).dimensionality == parse_units(units_b).dimensionality


def unit_suffix(units: str) -> str:
    """The unit as a name suffix: ``W/m`` -> ``W_per_m``, ``W/m^2`` -> ``W_per_m2``; empty for
    dimensionless quantities (CSV columns are ``<name>_<suffix>``)."""
    compact = units.replace(" ", "").replace("**", "").replace("^", "")
    numerator, *denominators = compact.replace("(", "").replace(")", "").split("/")
    suffix = "_per_".join([numerator, *denominators]).replace("*", "_")
    return "" if suffix == "dimensionless" else suffix


def to_si(value: float | int | str, units: str, path: str) -> float:
    """Convert a case value to a float in ``units``.

    Args:
        value: A number (already in ``units``) or a string "<number> <unit>".
        units: The unit the parameter is declared in (SI-coherent, e.g. "W/(m*K)").
        path: Case-file path of the value, for error messages.

    Raises:
        CaseError: The value is not a number or has the wrong dimension.
    """
    if isinstance(value, bool):
        raise CaseError(path, f"expected a number in {units}, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not looks_like_quantity(value):
        raise CaseError(
            path,
            f'expected a number or a string with units such as "1 {units}", got {value!r}',
        )
    ureg = registry()
    try:
        quantity = ureg.Quantity(value)
    except (pint.errors.PintError, ValueError, TypeError, AttributeError) as exc:
        raise CaseError(path, f"cannot read {value!r} as a quantity ({exc})") from exc
    try:
        return float(quantity.to(units).magnitude)
    except pint.errors.DimensionalityError:
        raise CaseError(
            path,
            f"{value!r} has units of {quantity.units:~} but {units} was expected",
            f"give a value in {units} or a compatible unit",
        ) from None
