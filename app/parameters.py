"""Parameter values of case files: constants with units, expressions, tables by region.

The machinery behind :class:`Parameters`, the base of every plug-in's parameter model. Plug-in
authors reach all of it through :mod:`app.contracts`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any, Protocol, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app import units as _units
from app.case_values import (
    SURROGATE_KEYS,
    CaseValue,
    Formula,
    PerDimension,
    PerRegion,
    Property,
    Surrogate,
    Value,
)
from app.errors import CaseError
from app.validation import refuse_booleans

if TYPE_CHECKING:
    from app.expressions import Expression, Function


# --------------------------------------------------------------------------------------------
# The parameter set a case's values are read with
# --------------------------------------------------------------------------------------------
class ParameterLibrary(Protocol):
    """What case values see of a parameter set (:class:`app.parameter_set.ParameterTable`)."""

    name: str

    @property
    def parsed_functions(self) -> Mapping[str, Function]: ...

    def values(self) -> dict[str, float]: ...

    def units_of(self, name: str) -> str | None: ...


_LIBRARY: ContextVar[ParameterLibrary | None] = ContextVar("parameter_set", default=None)


@contextmanager
def parameter_scope(library: ParameterLibrary | None) -> Iterator[None]:
    """Read case values with a parameter set: expressions may use its constants and call its
    functions, and ``float`` parameters may name its constants. The case loader validates the
    case inside this scope; plug-in validators calling :func:`parse_property` see it too."""
    token = _LIBRARY.set(library)
    try:
        yield
    finally:
        _LIBRARY.reset(token)


#: The units of an extent by mesh dimension, and how ``scalebridge modules`` shows them.
EXTENT_UNITS = {1: "m^2", 2: "m", 3: "dimensionless"}
EXTENT_RULE = "m^2 on a 1D mesh (an area), m on a 2D mesh (a depth), 1 on a 3D mesh"


def extent(default: Any, description: str) -> Any:
    """Declare the constant that turns an integral over the mesh into a whole amount: the
    electrode area a 1D cell model stands for (m^2), the depth of a 2D model (m), 1 in 3D.
    The case gives a number (in the unit of its mesh's dimension), a quantity or constants of
    the parameter set; ``ctx.coefficient`` reads it in the mesh's dimension."""
    extra = {"unit_rule": EXTENT_RULE, "units_by_dimension": EXTENT_UNITS, "gt": 0}
    return Field(default, description=description, validate_default=True, json_schema_extra=extra)


def _per_dimension(raw: Any, units_by_dimension: Mapping[int, str], meta: Mapping) -> Any:
    if isinstance(raw, PerDimension):
        return raw
    readings: dict[int, Value | Formula | str] = {}
    for dimension, units in units_by_dimension.items():
        try:
            reading = _parameter_value(float | None, raw, units, meta, "")
        except PydanticCustomError as exc:
            readings[dimension] = f"{exc.message()} (on a {dimension}D mesh)"
            continue
        readings[dimension] = Value(reading)
    if all(isinstance(reading, str) for reading in readings.values()):
        raise _fail(f"{EXTENT_RULE}: {readings[1].removesuffix(' (on a 1D mesh)')}")
    return PerDimension(raw, readings)


def _field_name(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"field names are letters, digits and underscores, got {name!r}")
    return name


FieldName = Annotated[str, AfterValidator(_field_name)]
"""The name of a field a plug-in reads or provides, as a case may rename it."""


def _listed(names: Any) -> Any:
    return [names] if isinstance(names, str) else names


def _distinct(names: list[str]) -> list[str]:
    if len(set(names)) < len(names):
        raise ValueError(f"list distinct field names, got {names}")
    return names


FieldNames = Annotated[list[FieldName], BeforeValidator(_listed), AfterValidator(_distinct)]
"""Fields a plug-in reads and adds up (sources), each named once; one name is a list of one."""


def quantity(
    units: str,
    default: Any = ...,
    description: str = "",
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    tensor: bool = False,
    difference: bool = False,
) -> Any:
    """Declare a parameter that carries units.

    The case may give a number (taken in ``units``), a string with units ("45 W/(m*K)"), an
    expression ("45 + 0.1*(temperature - 300)") where the field type is :data:`Property`, a
    table by region, or a surrogate (``{ surrogate = "name" }``). ``gt``/``ge``/``lt`` bound
    constant values; ``tensor=True`` says the plug-in accepts a d x d tensor for it (a
    conductivity used as ``k * grad(T)``), which a surrogate then gives in full.
    ``difference=True`` says the value is a difference (Tg - T), so "10 degC" reads as 10 K.

    Example:
        ``conductivity: Property = quantity("W/(m*K)", 1.0, "Thermal conductivity", gt=0)``
    """
    extra: dict[str, Any] = {"units": units}
    if tensor:
        extra["tensor"] = True
    if difference:
        extra["difference"] = True
    if gt is not None:
        extra["gt"] = gt
    if ge is not None:
        extra["ge"] = ge
    if lt is not None:
        extra["lt"] = lt
    return Field(default, description=description, json_schema_extra=extra, validate_default=True)


def unit_rule(rule: str, default: Any = ..., description: str = "") -> Any:
    """Declare a parameter whose unit follows from other parameters (a rate constant's from the
    orders of its reaction); the plug-in converts it once those are known, with
    :func:`parse_property`. ``scalebridge modules`` shows ``rule`` where other parameters show
    their unit.

    Example:
        ``rate_constant: Raw = unit_rule("(mol/m^3)^(1-n)/s, n the order", None, "k")``
    """
    return Field(default, description=description, json_schema_extra={"unit_rule": rule})


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("scalebridge", "{message}", {"message": message})


def _check_bounds(value: float, units: str, meta: Mapping[str, Any], where: str) -> None:
    if not math.isfinite(value):
        raise _fail(f"{where}must be a finite number, got {value}")
    if "gt" in meta and not value > meta["gt"]:
        raise _fail(f"{where}must be > {meta['gt']} {units}, got {value:g} {units}")
    if "ge" in meta and not value >= meta["ge"]:
        raise _fail(f"{where}must be >= {meta['ge']} {units}, got {value:g} {units}")
    if "lt" in meta and not value < meta["lt"]:
        raise _fail(f"{where}must be < {meta['lt']} {units}, got {value:g} {units}")


def _scalar_value(raw: Any, units: str, meta: Mapping[str, Any], where: str) -> Value | Formula:
    """A constant (number, quantity string or constant expression) or an expression string.

    A string is read as an expression when it parses as one ("4e4 if t < 300 else 0",
    "2*pi"), else as a number with units ("45 W/(m*K)", "20 degC").
    """
    if isinstance(raw, CaseValue):
        return raw
    hint = ""
    if isinstance(raw, str):
        from app.expressions import ExpressionError, parse

        library = _LIBRARY.get()
        try:
            expression = parse(raw, library.parsed_functions if library else None)
        except ExpressionError as exc:
            parts = _units.split_quantity(raw)
            if parts is None:
                raise _fail(f"{where}{exc}") from None
            try:
                _units.parse_units(parts[1])
            except ValueError:  # perhaps an expression with unit names ("2 W/(m*K) * x")
                hint = f"; expressions are written in SI ({units}) without unit names"
        else:
            if expression.names:
                _check_set_value(expression, units, meta, where)
                return Formula(expression)
            raw = float(expression.evaluate({}))
    try:
        value = _units.to_si(raw, units, "", difference=meta.get("difference", False))
    except CaseError as exc:
        raise _fail(f"{where}{exc.problem}{hint}") from None
    _check_bounds(value, units, meta, where)
    return Value(value)


def _set_constant(expression: Expression, units: str) -> float | None:
    """The value in ``units`` of an expression of the parameter set's constants only (else
    None); the expression computes in SI ("Q_nom" is 18000 C, 5 in A*h)."""
    library = _LIBRARY.get()
    values = library.values() if library else {}
    if not expression.names <= values.keys():
        return None
    return float(expression.evaluate(values)) / _units.si_factor(units)


def _check_set_value(expression: Expression, units: str, meta: Mapping, where: str) -> None:
    """An expression that is a constant or a function of the parameter set has its units; one
    of constants only must meet the parameter's bounds."""
    library = _LIBRARY.get()
    head = library.units_of(expression.head) if library and expression.head else None
    if head is not None and not _units.compatible(head, units):
        raise _fail(f"{where}'{expression.source}' is in {head} but {units} was expected")
    value = _set_constant(expression, units)
    if value is not None:
        _check_bounds(value, units, meta, f"{where}'{expression.source}' = {value:g}: ")


def _parameter_value(
    annotation: Any, raw: Any, units: str, meta: Mapping, where: str, name: str = ""
) -> Any:
    """A float for float parameters; a Value, Formula, PerRegion or Surrogate for Property
    parameters."""
    if annotation in (float, float | None):
        value = _scalar_value(raw, units, meta, where)
        if isinstance(value, Formula):
            number = _set_constant(value.expression, units)
            if number is None:
                raise _fail(
                    f"{where}expected a number in {units}; expressions are not allowed here "
                    "(except of a parameter set's constants)"
                )
            return number
        return value.value
    if _names_surrogate(raw):
        return _surrogate(raw, units, meta, where, name)
    if isinstance(raw, Mapping):
        if not raw:
            raise _fail(f"{where}a table by region needs at least one region")
        return PerRegion(
            {
                str(region): _region_value(value, units, meta, f"{where}region '{region}': ", name)
                for region, value in raw.items()
            }
        )
    return _scalar_value(raw, units, meta, where)


def _region_value(
    raw: Any, units: str, meta: Mapping, where: str, name: str
) -> Value | Formula | Surrogate:
    """One entry of a table by region: a constant, an expression or a surrogate (served on
    that region's cells only)."""
    if _names_surrogate(raw):
        return _surrogate(raw, units, meta, where, name)
    return _scalar_value(raw, units, meta, where)


def constant_value(raw: Any, units: str, path: str) -> float:
    """A case value that must be one number: a number (in ``units``), a quantity string, or an
    expression of the parameter set's constants ("L_n", "2*L_s").

    Raises:
        CaseError: At ``path``, for anything else.
    """
    try:
        return _parameter_value(float, raw, units, {}, "")
    except PydanticCustomError as exc:
        raise CaseError(path, exc.message()) from None


def _names_surrogate(raw: Any) -> bool:
    return isinstance(raw, Mapping) and "surrogate" in raw


def _surrogate(raw: Mapping, units: str, meta: Mapping, where: str, name: str) -> Surrogate:
    extra = sorted(set(raw) - set(SURROGATE_KEYS))
    if extra:
        raise _fail(
            f"{where}unknown key '{extra[0]}' next to 'surrogate'; allowed: "
            f"{', '.join(SURROGATE_KEYS)}"
        )
    surrogate, component = raw["surrogate"], raw.get("component")
    for key, value in (("surrogate", surrogate), ("component", component)):
        if value is not None and (not isinstance(value, str) or not value.isidentifier()):
            raise _fail(f"{where}{key} must be a name, got {value!r}")
    return Surrogate(surrogate, component, units, bool(meta.get("tensor")), name)


def parse_property(raw: Any, units: str) -> Property:
    """Parse a case value given in ``units`` (number, quantity, expression, table by region);
    for parameters whose unit is only known from other parameters.

    Raises:
        ValueError: What is wrong with the value (a validator may let it through: the case
            loader reports it at the parameter's path).
    """
    try:
        return _parameter_value(Property, raw, units, {}, "")
    except PydanticCustomError as exc:
        raise ValueError(exc.message()) from None


def _optional_table(field: Any) -> bool:
    """Whether a parameter is a table (a model) that may be left out (default None)."""
    if field.is_required() or field.default is not None:
        return False
    annotation = field.annotation
    return any(
        isinstance(kind, type) and issubclass(kind, BaseModel)
        for kind in (annotation, *get_args(annotation))
    )


class Parameters(BaseModel):
    """Base of every plug-in's parameter model (and of nested models such as boundaries).

    Unknown keys are rejected (with a "did you mean" suggestion from the case loader), values
    declared with :func:`quantity` are converted to SI, and expressions are parsed eagerly so
    a typo fails when the case is loaded, not halfway through a run.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        allow_inf_nan=False,
        defer_build=True,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _convert_units(cls, raw: Any, info: ValidationInfo) -> Any:
        if raw is False and _optional_table(cls.model_fields[info.field_name]):
            return None  # `--set time.adaptive=false` switches a table off: --set cannot delete
        refuse_booleans(cls.model_fields[info.field_name].annotation, raw)
        meta = cls.model_fields[info.field_name].json_schema_extra
        if isinstance(meta, dict) and "units_by_dimension" in meta and raw is not None:
            return _per_dimension(raw, meta["units_by_dimension"], meta)
        if not isinstance(meta, dict) or "units" not in meta or raw is None:
            return raw
        units = meta["units"]
        annotation = cls.model_fields[info.field_name].annotation
        vector = next(
            (a for a in (annotation, *get_args(annotation)) if get_origin(a) is list), None
        )
        if vector is not None and isinstance(raw, list):  # a vector of components
            item = get_args(vector)[0]
            return [
                _parameter_value(item, value, units, meta, f"component {index}: ")
                for index, value in enumerate(raw)
            ]
        return _parameter_value(annotation, raw, units, meta, "", info.field_name)

    def given(self, *keys: str) -> set[str]:
        """Parameters (of ``keys``, default all) whose value differs from their default.

        Validators that refuse a parameter in some setting ask this rather than
        ``model_fields_set``: a stored case (``case.toml`` of a run) writes every default, and
        must load again.
        """
        fields = type(self).model_fields
        given = set()
        for key in keys or fields:
            value = getattr(self, key)
            default = fields[key].get_default(call_default_factory=True)
            if isinstance(value, CaseValue):
                value = value.to_case()
            if value != default:
                given.add(key)
        return given

    @classmethod
    def units_of(cls, name: str) -> str | None:
        """The declared unit of parameter ``name`` (None for unitless parameters)."""
        meta = cls.model_fields[name].json_schema_extra
        return meta.get("units") if isinstance(meta, dict) else None

    def units_here(self, name: str) -> str | None:
        """The unit of parameter ``name`` of this instance: the declared one, unless the model
        lets the case choose it (a prescribed field's ``units``)."""
        return type(self).units_of(name)


def one_of(*models: type[Parameters]) -> Any:
    """A choice between parameter models, selected by their ``type`` key.

    Each model declares ``type: Literal["<name>"]``. Example::

        Boundary = one_of(TemperatureBoundary, FluxBoundary, ConvectionBoundary)
        boundaries: dict[str, Boundary] = Field(default_factory=dict)
    """
    tagged = [
        Annotated[model, Tag(get_args(model.model_fields["type"].annotation)[0])]
        for model in models
    ]
    return Annotated[Union[tuple(tagged)], Discriminator(_type_of)]  # noqa: UP007


def _type_of(value: Any) -> Any:
    return value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)


class RVESource(Parameters):
    """A constitutive law computed at every quadrature point by a nonlinear unit cell (FE2),
    written ``{ rve = "name" }``; the cell is defined in the case's ``[rves.<name>]`` section."""

    rve: str = Field(description="Name of the [rves.<name>] section")

    @field_validator("rve")
    @classmethod
    def _name(cls, name: str) -> str:
        if not name.isidentifier():
            raise ValueError(f"an RVE name is letters, digits and underscores, got {name!r}")
        return name


def walk_values(model: BaseModel, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf value of a parameter model with its dotted path, through nested models,
    dicts and lists; used by the framework to find the expressions a case wrote."""
    for name in type(model).model_fields:
        yield from _walk(getattr(model, name), f"{path}.{name}" if path else name)


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, BaseModel):
        yield from walk_values(value, path)
    elif isinstance(value, PerRegion):
        yield path, value
        for region, item in value.values.items():
            yield f"{path}.{region}", item
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value
