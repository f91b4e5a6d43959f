"""The plug-in contract: everything a physics author imports.

A physics plug-in is one class: a pydantic :class:`Parameters` model (self-documenting, with
units), the fields it ``provides`` and ``requires`` as typed :class:`FieldSpec` contracts, and
methods that return UFL. The framework owns everything else: meshes, function spaces, time
discretisation, solvers, output. A plug-in never writes ``(u - u_n)/dt``; it declares the
coefficient of the time derivative in :meth:`Physics.capacity` and the steady operator in
:meth:`Physics.residual`, and the framework assembles

    sum_f  capacity_f * d(u_f)/dt * v_f * dx  +  residual  =  0

with the time scheme the case asks for. See ``physics_modules/heat.py`` for a complete plug-in.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from app import units as _units
from app.errors import CaseError

if TYPE_CHECKING:
    import ufl

    from app.expressions import Expression

Rank = Literal["scalar", "vector", "tensor"]

__all__ = [
    "BadValue",
    "Context",
    "Dirichlet",
    "FieldSpec",
    "Formula",
    "Modes",
    "Parameters",
    "PerRegion",
    "Physics",
    "Property",
    "Quantity",
    "Value",
    "one_of",
    "parse_property",
    "quantity",
]


# --------------------------------------------------------------------------------------------
# Fields
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldSpec:
    """A field a plug-in provides or requires.

    Attributes:
        name: Global field name, shared by provider and consumers ("temperature").
        rank: "scalar", "vector" (gdim components) or "tensor" (gdim x gdim).
        units: pint unit string ("K", "W/m^3"); consumers must ask for a compatible unit.
        space: Finite element (family, degree) the provider solves or stores the field in.
        region: Named cell region the field lives on (None: the whole domain).
        derived: Computed from other fields by :meth:`Physics.derived` rather than solved for.
        optional: For requirements only: the plug-in runs without a provider (e.g. a heat
            source nobody provides is zero).
        description: One line for ``scalebridge modules`` and ``check``.
    """

    name: str
    rank: Rank
    units: str
    space: tuple[str, int] = ("Lagrange", 1)
    region: str | None = None
    derived: bool = False
    optional: bool = False
    description: str = ""

    def shape(self, gdim: int) -> tuple[int, ...]:
        """The value shape of the field on a mesh of geometric dimension ``gdim``."""
        return {"scalar": (), "vector": (gdim,), "tensor": (gdim, gdim)}[self.rank]


# --------------------------------------------------------------------------------------------
# Property values: what a case may write where a plug-in declares a `quantity(...)` parameter
# --------------------------------------------------------------------------------------------
class _CaseValue:
    """Base of parsed parameter values; pydantic stores them as they are and dumps them back to
    the form a case file accepts, so a resolved case can be run again."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: value.to_case()
            ),
        )

    def to_case(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Value(_CaseValue):
    """A constant, in the parameter's SI unit."""

    value: float

    def to_case(self) -> float:
        return self.value


@dataclass(frozen=True)
class Formula(_CaseValue):
    """An expression of coordinates (x, y, z), time (t) and field names, in SI units."""

    expression: Expression

    @property
    def names(self) -> frozenset[str]:
        return self.expression.names

    def to_case(self) -> str:
        return self.expression.source


@dataclass(frozen=True)
class PerRegion(_CaseValue):
    """One value per named cell region (``{insulation = 0.04, brick = 0.8}``)."""

    values: Mapping[str, Value | Formula]

    def to_case(self) -> dict[str, Any]:
        return {name: value.to_case() for name, value in self.values.items()}


Property = Value | Formula | PerRegion
"""A parameter that may be a constant, an expression or a table by region."""


def quantity(
    units: str,
    default: Any = ...,
    description: str = "",
    *,
    gt: float | None = None,
    ge: float | None = None,
) -> Any:
    """Declare a parameter that carries units.

    The case may give a number (taken in ``units``), a string with units ("45 W/(m*K)"), an
    expression ("45 + 0.1*(temperature - 300)") where the field type is :data:`Property`, or
    a table by region. ``gt``/``ge`` bound constant values.

    Example:
        ``conductivity: Property = quantity("W/(m*K)", 1.0, "Thermal conductivity", gt=0)``
    """
    extra = {"units": units}
    if gt is not None:
        extra["gt"] = gt
    if ge is not None:
        extra["ge"] = ge
    return Field(default, description=description, json_schema_extra=extra, validate_default=True)


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("scalebridge", "{message}", {"message": message})


def _check_bounds(value: float, units: str, meta: Mapping[str, Any], where: str) -> None:
    if not math.isfinite(value):
        raise _fail(f"{where}must be a finite number, got {value}")
    if "gt" in meta and not value > meta["gt"]:
        raise _fail(f"{where}must be > {meta['gt']} {units}, got {value:g} {units}")
    if "ge" in meta and not value >= meta["ge"]:
        raise _fail(f"{where}must be >= {meta['ge']} {units}, got {value:g} {units}")


def _scalar_value(raw: Any, units: str, meta: Mapping[str, Any], where: str) -> Value | Formula:
    """A constant (number, quantity string or constant expression) or an expression string.

    A string is read as an expression when it parses as one ("4e4 if t < 300 else 0",
    "2*pi"), else as a number with units ("45 W/(m*K)", "20 degC").
    """
    if isinstance(raw, _CaseValue):
        return raw
    hint = ""
    if isinstance(raw, str):
        from app.expressions import ExpressionError, parse

        try:
            expression = parse(raw)
        except ExpressionError as exc:
            if not _units.looks_like_quantity(raw):
                raise _fail(f"{where}{exc}") from None
            hint = f"; expressions are written in SI ({units}) without unit names"
        else:
            if expression.names:
                return Formula(expression)
            raw = float(expression.evaluate({}))
    try:
        value = _units.to_si(raw, units, "")
    except CaseError as exc:
        raise _fail(f"{where}{exc.problem}{hint}") from None
    _check_bounds(value, units, meta, where)
    return Value(value)


def _parameter_value(annotation: Any, raw: Any, units: str, meta: Mapping, where: str) -> Any:
    """A float for float parameters; a Value, Formula or PerRegion for Property parameters."""
    if annotation in (float, float | None):
        value = _scalar_value(raw, units, meta, where)
        if isinstance(value, Formula):
            raise _fail(f"{where}expected a number in {units}; expressions are not allowed here")
        return value.value
    if isinstance(raw, Mapping):
        if not raw:
            raise _fail(f"{where}a table by region needs at least one region")
        return PerRegion(
            {
                str(region): _scalar_value(value, units, meta, f"{where}region '{region}': ")
                for region, value in raw.items()
            }
        )
    return _scalar_value(raw, units, meta, where)


def parse_property(raw: Any, units: str) -> Property:
    """Parse a case value given in ``units`` (number, quantity, expression, table by region);
    for parameters whose unit is only known from other parameters."""
    return _parameter_value(Property, raw, units, {}, "")


class Parameters(BaseModel):
    """Base of every plug-in's parameter model (and of nested models such as boundaries).

    Unknown keys are rejected (with a "did you mean" suggestion from the case loader), values
    declared with :func:`quantity` are converted to SI, and expressions are parsed eagerly so
    a typo fails when the case is loaded, not halfway through a run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _convert_units(cls, raw: Any, info: ValidationInfo) -> Any:
        meta = cls.model_fields[info.field_name].json_schema_extra
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
        return _parameter_value(annotation, raw, units, meta, "")

    @classmethod
    def units_of(cls, name: str) -> str | None:
        """The declared unit of parameter ``name`` (None for unitless parameters)."""
        meta = cls.model_fields[name].json_schema_extra
        return meta.get("units") if isinstance(meta, dict) else None


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


# --------------------------------------------------------------------------------------------
# What plug-in methods return
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dirichlet:
    """A prescribed value of a provided field on a named boundary.

    Attributes:
        field: Name of the provided field.
        boundary: Named boundary (from the mesh's physical names or built-in names).
        value: UFL expression or number; may depend on x and t (re-evaluated every step).
        component: For vector fields, the component to fix (None: all components).
    """

    field: str
    boundary: str
    value: Any
    component: int | None = None


@dataclass(frozen=True)
class Quantity:
    """A scalar output written to quantities.csv (column ``<name>_<units>``).

    Build one with :meth:`integral`, :meth:`maximum`, :meth:`minimum` or :meth:`reaction`.
    """

    units: str
    form: Any = None
    field: str | None = None
    reduction: Literal["integral", "max", "min", "reaction"] = "integral"
    description: str = ""
    boundary: str | None = None
    component: int | None = None
    scale: float = 1.0

    @classmethod
    def integral(cls, form: ufl.Form, units: str, description: str = "") -> Quantity:
        """The value of a scalar functional, e.g. a boundary heat flow."""
        return cls(units=units, form=form, description=description)

    @classmethod
    def maximum(cls, field: str, units: str, description: str = "") -> Quantity:
        """The largest nodal value of a scalar field."""
        return cls(units=units, field=field, reduction="max", description=description)

    @classmethod
    def minimum(cls, field: str, units: str, description: str = "") -> Quantity:
        """The smallest nodal value of a scalar field."""
        return cls(units=units, field=field, reduction="min", description=description)

    @classmethod
    def reaction(
        cls,
        field: str,
        boundary: str,
        units: str,
        description: str = "",
        component: int | None = None,
        scale: float = 1.0,
    ) -> Quantity:
        """What a Dirichlet boundary supplies to the domain, from the discrete residual.

        The residual of the field's equations (capacity terms included), summed over the
        boundary's degrees of freedom: the support force on a solid, the heat or current
        entering through a fixed-temperature or fixed-potential boundary. Unlike a flux
        integral of the gradient it is exact for the discrete solution, so balances close.
        ``scale=-1`` reports what leaves instead.
        """
        return cls(
            units=units,
            field=field,
            reduction="reaction",
            description=description,
            boundary=boundary,
            component=component,
            scale=scale,
        )


@dataclass(frozen=True)
class Modes:
    """Motions the operator of a field (nearly) does not resist, e.g. rigid-body motions.

    Given to algebraic multigrid as its near-nullspace; with ``exact=True`` (nothing holds the
    body in place, e.g. a solid under tractions only) the operator is singular on them and the
    solver works orthogonally to them.
    """

    vectors: list[Any]
    exact: bool = False


class BadValue(LookupError):
    """A value or name in the case that does not fit the mesh, the fields or the plug-in.

    Raise it from a plug-in method; the framework reports it as a case error at the place the
    case wrote the value (found by identity) or the name (found by search).

    Args:
        message: The problem, in full.
        value: The parameter value object at fault, if known.
        token: A name to search for in the instance's case table.
        fix: How to fix it.
    """

    def __init__(self, message: str, value: Any = None, token: str = "", fix: str | None = None):
        super().__init__(message)
        self.message, self.value, self.token, self.fix = message, value, token, fix
        self.instance: str | None = None  # set by the framework on the way out


class Context(ABC):
    """What a plug-in method sees: its domain, its fields and helpers to turn parameters into UFL.

    The framework passes one context per plug-in instance. Measures, coordinates and fields are
    those of the instance's domain; names the case wrote are checked here, and a wrong one
    becomes an error that points at the case file.
    """

    #: The instance's DOLFINx mesh.
    mesh: Any
    #: Geometric dimension.
    gdim: int
    #: ``ufl.SpatialCoordinate`` of the domain.
    x: Any
    #: Current time [s] as a ``fem.Constant`` (the time the current step solves for).
    t: Any
    #: Outward unit facet normal.
    n: Any

    @abstractmethod
    def field(self, name: str) -> Any:
        """The current value of a field this instance provides or requires.

        For a field the instance solves for this is the unknown itself (so a residual that uses
        it nonlinearly gets a Newton solve); for a required field it is the provider's latest
        value, transferred to this domain when needed.
        """

    @abstractmethod
    def test(self, name: str) -> Any:
        """The test function belonging to a field this instance solves for."""

    @abstractmethod
    def has(self, name: str) -> bool:
        """Whether a field is available (an optional requirement may have no provider)."""

    @abstractmethod
    def dx(self, region: str | None = None) -> Any:
        """Cell measure over the domain or one named region."""

    @abstractmethod
    def ds(self, boundary: str | None = None) -> Any:
        """Exterior facet measure over the whole boundary or one named boundary."""

    @abstractmethod
    def dS(self, boundary: str) -> Any:
        """Interior facet measure over a named internal boundary (an interface)."""

    @abstractmethod
    def coefficient(self, value: Property) -> Any:
        """A parameter as UFL: constants become ``fem.Constant`` (changing a value never
        recompiles a form), expressions are built from x, y, z, t and fields, tables by region
        become piecewise functions."""

    @property
    @abstractmethod
    def boundaries(self) -> list[str]:
        """Names of the exterior boundaries of the domain."""

    @property
    @abstractmethod
    def interfaces(self) -> list[str]:
        """Names of the internal facet sets (interfaces between regions)."""

    @property
    @abstractmethod
    def regions(self) -> list[str]:
        """Names of the cell regions of the domain."""

    @abstractmethod
    def size(self, name: str | None = None) -> float:
        """Length, area or volume of a named boundary or region (None: the whole domain)."""

    def per_depth(self, units: str) -> str:
        """Units of an integral over the domain: W in 3D, W/m in 2D (per unit depth), W/m^2
        in 1D (per unit area)."""
        missing = 3 - self.gdim
        return units if missing == 0 else f"{units}/m" if missing == 1 else f"{units}/m^{missing}"


# --------------------------------------------------------------------------------------------
# The plug-in base class
# --------------------------------------------------------------------------------------------
class Physics:
    """Base class of physics plug-ins.

    Subclasses set ``name`` (the ``type`` a case file uses), a nested ``Parameters`` model, and
    override the methods they need. Instances are created by the framework, one per
    ``[physics.<instance>]`` table of the case.

    Attributes:
        name: Type name registered through the ``scalebridge.physics`` entry-point group.
        spd: Hint for the solver presets: when linear, the operator is symmetric positive
            definite (CG + algebraic multigrid applies).
        params: The validated parameters of this instance.
        instance: The instance name (the key under ``[physics]``).
    """

    name: ClassVar[str]
    Parameters: ClassVar[type[Parameters]] = Parameters
    spd: ClassVar[bool] = False

    def __init__(self, params: Parameters, instance: str | None = None):
        self.params = params
        self.instance = instance or self.name

    @property
    def provides(self) -> list[FieldSpec]:
        """Fields this instance solves for (or derives)."""
        return []

    @property
    def requires(self) -> list[FieldSpec]:
        """Fields this instance needs from other plug-ins."""
        return []

    def residual(self, ctx: Context) -> ufl.Form | None:
        """The steady operator F(u; v): the weak form whose zero (plus the capacity terms) is
        the solution. Sign convention: F = (flux terms) - (sources). A plug-in that solves for
        nothing (it only derives fields) returns None."""
        return None

    def capacity(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        """Coefficient of the time derivative of each transient field (rho*c_p for heat)."""
        return {}

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        """Prescribed values on boundaries."""
        return []

    def initial(self, ctx: Context) -> dict[str, Any]:
        """Initial value of each solved field (UFL expression or number; default 0)."""
        return {}

    def derived(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        """Post-processed fields (``FieldSpec(derived=True)``) as UFL expressions."""
        return {}

    def quantities(self, ctx: Context) -> dict[str, Quantity]:
        """Scalar outputs by name; the column is ``<name>_<units>``."""
        return {}

    def modes(self, ctx: Context) -> dict[str, Modes]:
        """Near-nullspace (or nullspace) of solved fields, for the linear solvers."""
        return {}

    @classmethod
    def describe(cls) -> str:
        """First paragraph of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.split("\n\n", 1)[0].replace("\n", " ")
