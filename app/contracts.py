"""The plug-in contract: everything a physics author imports.

A physics plug-in is one class: a pydantic :class:`Parameters` model (self-documenting, with
units), the fields it ``provides`` and ``requires`` as typed :class:`FieldSpec` contracts, and
methods that return UFL. The framework owns everything else: meshes, function spaces, time
discretisation, solvers, output. A plug-in never writes ``(u - u_n)/dt``; it declares the
coefficient of the time derivative in :meth:`Physics.capacity` and the steady operator in
:meth:`Physics.residual`, and the framework assembles

    sum_f  capacity_f * d(u_f)/dt * v_f * dx  +  residual  =  0

with the time scheme the case asks for. See ``physics_modules/heat.py`` for a complete plug-in.

A material with memory (plasticity, viscoelasticity) declares :class:`InternalVariable` s and
their :meth:`Physics.update`; the framework stores them and advances them only on accepted steps
(``physics_modules/mechanics`` is the example).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from app.field_spec import QUADRATURE, FieldSpec, InternalVariable
from app.parameters import (
    FieldName,
    FieldNames,
    Formula,
    Parameters,
    PerDimension,
    PerRegion,
    Property,
    RVESource,
    Value,
    extent,
    one_of,
    parse_property,
    quantity,
    unit_rule,
)
from app.quantity_spec import Quantity
from app.return_mapping import J2History, J2Material, J2Step, deviatoric, j2_return_mapping
from app.units import parse_units

if TYPE_CHECKING:
    import ufl

# Physical constants (CODATA 2018, SI), shared so that coupled plug-ins use the same numbers.
FARADAY = 96485.33212331001  # C/mol
GAS_CONSTANT = 8.31446261815324  # J/(mol K)
STEFAN_BOLTZMANN = 5.670374419e-8  # W/(m^2 K^4)
VACUUM_PERMITTIVITY = 8.8541878128e-12  # F/m
STANDARD_TEMPERATURE = 298.15  # K, where rate constants and potentials are usually quoted

__all__ = [
    "FARADAY",
    "GAS_CONSTANT",
    "QUADRATURE",
    "STANDARD_TEMPERATURE",
    "STEFAN_BOLTZMANN",
    "VACUUM_PERMITTIVITY",
    "BadValue",
    "Context",
    "Dirichlet",
    "FieldName",
    "FieldNames",
    "FieldSpec",
    "Formula",
    "InternalVariable",
    "J2History",
    "J2Material",
    "J2Step",
    "Modes",
    "Parameters",
    "PerDimension",
    "PerRegion",
    "Physics",
    "Property",
    "Quantity",
    "RVESource",
    "Value",
    "deviatoric",
    "extent",
    "j2_return_mapping",
    "one_of",
    "parse_property",
    "parse_units",
    "quantity",
    "unit_rule",
]


# --------------------------------------------------------------------------------------------
# What plug-in methods return
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dirichlet:
    """A prescribed value of a provided field on a named boundary, point set or edge set.

    Attributes:
        field: Name of the provided field.
        boundary: Named boundary (from the mesh's physical names or built-in names), or a
            named point set or (3D) edge set: a point support, a line constraint. The degrees
            of freedom on those entities are fixed.
        value: UFL expression or number; may depend on x and t (re-evaluated every step).
        component: For vector fields, the component to fix (None: all components).
    """

    field: str
    boundary: str
    value: Any
    component: int | None = None


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
    #: Size [s] of the step being solved, as a ``fem.Constant`` (for updates of internal
    #: variables that integrate in time exactly, e.g. an exponential relaxation).
    dt: Any
    #: Whether the run steps in time (False: a steady solve, where capacities are dropped).
    transient: bool
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
    def previous(self, name: str) -> Any:
        """The value of one of the instance's internal variables at the end of the last
        accepted step (its initial value before the first). Residuals and updates read the
        history through it; ``ctx.field(name)`` is the value after the latest solve."""

    @abstractmethod
    def point_stress(self, source: RVESource, strain: Any) -> Any:
        """The stress a law outside UFL computes at the quadrature points from ``strain`` (3x3
        UFL of the unknowns; plane strain on 2D meshes): an RVE per point for ``{ rve = ... }``.

        Returns an object with ``stress(strain)``, the stress for the residual (exact at the
        current iterate, with the law's consistent tangent as its derivative), and
        ``latest()``, the stress of the latest solve for outputs (3x3 each). The framework
        refreshes it before each assembly and commits or rolls back the law's history with
        the step (app/pointwise_law.py). Raises :class:`BadValue` for an unknown name.
        """

    @abstractmethod
    def relaxation(self, name: str, target: Any, time: Any) -> Any:
        """The new value y of an internal variable that relaxes towards ``target`` (UFL of the
        current state) with the time constant ``time``:

            dy/dt = (target - y) / time,

        discretised by the case's time scheme from the variable's previous values (backward
        Euler, or variable-step BDF2 with ``scheme = "bdf2"``); the strain of a Maxwell branch.
        """

    @abstractmethod
    def control_modes(self, settings: Mapping[str, Any], active: str) -> dict[str, Any]:
        """Indicators of settings of which one is in force at a time: a terminal driven at a
        current or held at a voltage, a boundary fed a heat flux or held at a temperature.

        One ``fem.Constant`` per setting, 1 for the setting in force and 0 for the others: the
        plug-in weighs the equation each setting imposes by its indicator, inside one form,
        so switching changes values, never the structure of the system, and recompiles
        nothing. A protocol step that sets one of the settings (its control's ``target``)
        puts it in force; ``active`` is the one in force before any step sets one.

        Args:
            settings: The parameter values of the settings (``{"current": bc.current, ...}``).
            active: The name of the setting in force at the start.
        """

    @abstractmethod
    def has(self, name: str) -> bool:
        """Whether a field is available (an optional requirement may have no provider)."""

    @abstractmethod
    def region_of(self, name: str) -> str | tuple[str, ...] | None:
        """The region a field lives on (None: everywhere). Integrals that read a field of a
        region must be taken over it: ``source * v * ctx.dx(ctx.region_of("heat_source"))``.
        On a boundary's mesh: the regions of that mesh it lives on (a name, or several)."""

    @abstractmethod
    def dx(self, region: str | tuple[str, ...] | None = None) -> Any:
        """Cell measure over the domain, one named region or several.

        An instance placed on a boundary (``domain = "top"``) integrates over that boundary's
        own mesh: its facets are the cells, with the regions of the parent cells beside them;
        ``ctx.x`` is its coordinate and the constants it builds are on it.

        The framework integrates every form of a group (and the plug-ins' integral quantities)
        at one quadrature degree; a measure that carries its own (``dx.reconstruct(metadata=
        {"quadrature_rule": "vertex", "quadrature_degree": 1})`` to lump) keeps it.
        """

    @abstractmethod
    def ds(self, boundary: str | None = None, region: str | None = None) -> Any:
        """Exterior facet measure over the whole boundary or one named boundary; with
        ``region``, the boundary's part on that region's cells (where a species that lives on
        the region meets it). An instance placed on a region integrates the part on its region.
        On a boundary's own mesh the boundaries are its ends (or edges), named after the
        parent's boundaries they lie on. A point or edge set has no measure: asking for one is
        refused (a case error naming the set)."""

    @abstractmethod
    def dS(self, boundary: str) -> Any:
        """Interior facet measure over a named internal boundary (an interface)."""

    @abstractmethod
    def coefficient(
        self, value: Property | PerDimension | float, names: Mapping[str, Any] | None = None
    ) -> Any:
        """A parameter (or a number) as UFL.

        What it becomes: a constant (``Value`` or a number) a ``fem.Constant``; an expression
        (``Formula``) UFL of x, y, z, t and the fields it names; a table by region a cellwise
        function (of constants, or of expressions weighted region by region); an
        :func:`extent` (``PerDimension``) the constant in the unit of the mesh's dimension.

        The cache: per context, each parameter value object is built once and the same UFL is
        handed out on every later call with that object (keyed by identity), so every form of
        the instance shares one ``fem.Constant`` per parameter, and a protocol that sets the
        constant reaches all of them. Plain numbers and tables of constants are keyed by value
        instead (``ctx.coefficient(1.0)`` twice is one constant; equal tables one function): no
        protocol can set them, so sharing is safe, and a plug-in needs no cache of its own.
        Two parameters with equal values stay two constants (a protocol sets one of them).
        A call with ``names`` that the value uses builds it anew (the names are the caller's).

        What recompiles: nothing when a constant's value changes (a new dt, a protocol step,
        ``Value`` parameters): constants and tables are arguments of the compiled kernels. The
        numbers written inside an expression are part of the form, so a different expression
        text compiles a new kernel (once; the JIT cache keeps it across runs).

        Args:
            value: The parameter, or a number.
            names: Further names its expressions may use, as UFL: a quantity the plug-in
                defines itself (``{"theta": c_s / c_max}``); they take precedence over fields.
        """

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

    def depth_units(self) -> str:
        """Units of what turns an integral over the domain into a whole amount: an area (m^2)
        on a 1D mesh (a cross-section), a depth (m) on a 2D mesh, nothing on a 3D mesh."""
        return {1: "m^2", 2: "m"}.get(self.gdim, "dimensionless")

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
        dimensions: Mesh dimensions the physics has a formulation for; a case on another mesh
            is refused before anything is built.
        params: The validated parameters of this instance.
        instance: The instance name (the key under ``[physics]``).
        domain: The region or boundary the case placed the instance on (``domain =
            "matrix"``, ``domain = "top"``; None: the whole mesh). Its fields live there and
            ``ctx.dx()`` is the region's measure, or the boundary's own mesh's (see
            :class:`Context`).
        regions: On a boundary, the regions of its mesh the instance acts on (``regions =
            ["negative", "positive"]``; None: all of it): ``ctx.dx()`` covers them and its
            solved fields are zero elsewhere.

    Args:
        params: The validated parameters.
        instance: The instance name (default: the type name).
        domain: The region or boundary the case placed the instance on, if any.
        regions: The regions of a boundary's mesh it acts on, if not all.
    """

    name: ClassVar[str]
    Parameters: ClassVar[type[Parameters]] = Parameters
    spd: ClassVar[bool] = False
    dimensions: ClassVar[tuple[int, ...]] = (1, 2, 3)

    def __init__(
        self,
        params: Parameters,
        instance: str | None = None,
        domain: str | None = None,
        regions: tuple[str, ...] | None = None,
    ):
        self.params = params
        self.instance = instance or self.name
        self.domain = domain
        self.regions = regions

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

    def storage(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        """Amount stored per unit volume of each transient field, when its coefficient changes
        in time (eps*c in a pore space that fills with mineral): the framework discretises
        d(storage)/dt, with the storage at earlier time levels built from the earlier values of
        every solved field and of t, so the amount is conserved exactly. Use it instead of
        :meth:`capacity` for such a field (not for a coefficient of the field itself, such as
        c_p(T): that is a capacity)."""
        return {}

    def dirichlet(self, ctx: Context) -> list[Dirichlet]:
        """Prescribed values on boundaries."""
        return []

    def initial(self, ctx: Context) -> dict[str, Any]:
        """Initial value of each solved field (UFL expression or number; default 0), and of any
        internal variable that does not start at its declared constant (UFL of the solved
        fields' initial values, which are set first)."""
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

    @property
    def internal_variables(self) -> list[InternalVariable]:
        """State the instance remembers between steps (see :class:`InternalVariable`)."""
        return []

    def update(self, ctx: Context) -> dict[str, ufl.core.expr.Expr]:
        """The new value of every internal variable, as UFL of the current unknowns (and fields)
        and of the previous values (``ctx.previous``): what the residual assumed, e.g. the
        plastic strain of the return mapping that gave its stress."""
        return {}

    @classmethod
    def describe(cls) -> str:
        """First paragraph of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.split("\n\n", 1)[0].replace("\n", " ")
