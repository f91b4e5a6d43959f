"""The framework's implementation of :class:`app.contracts.Context`.

One context per plug-in instance. It hands out the instance's fields, test functions and
measures, and turns parameter values into UFL. Names written in the case (boundaries, regions,
fields in expressions) are checked here; a wrong one raises :class:`BadValue`, which the
simulation turns into a :class:`~app.errors.CaseError` at the place the case wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from app.contracts import BadValue, Context, Formula, PerDimension, PerRegion, RVESource, Value
from app.control_modes import ModeRegistry
from app.errors import did_you_mean, listing
from app.fields import FieldStore
from app.forms import FormRules
from app.meshing import MeshData
from app.parameter_constants import ParameterConstants
from app.parameters import Surrogate, walk_values
from app.pointwise_law import LinearisedStress
from app.timeint import TimeScheme


def unknown(kind: str, name: str, known: list[str]) -> BadValue:
    kinds = " or ".join(
        f"{word[:-1]}ies" if word.endswith("y") else f"{word}s" for word in kind.split(" or ")
    )
    return BadValue(
        f"unknown {kind} '{name}'{did_you_mean(name, known)}; {kinds} here: {listing(known)}",
        token=name,
    )


def unknown_fixable(name: str, data: MeshData) -> BadValue:
    """A name a value was to be fixed on that is no boundary, point set or edge set."""
    known = [f"boundaries here: {listing(data.boundaries)}"]
    known += [f"point sets: {listing(data.points)}"] if data.points else []
    known += [f"edge sets: {listing(data.edges)}"] if data.edges else []
    return BadValue(
        f"unknown boundary '{name}'{did_you_mean(name, data.fixable)}; {'; '.join(known)}",
        token=name,
    )


def not_integrable(name: str, data: MeshData) -> BadValue | None:
    """The refusal to integrate over a point or edge set (None for any other name)."""
    kind = "point set" if name in data.points else "edge set" if name in data.edges else None
    if kind is None:
        return None
    return BadValue(
        f"'{name}' is a {kind} (vertices or edges of the mesh): a value can be fixed there, "
        "but it has no length or area to integrate a flux, load or any other term over",
        token=name,
        fix=f"fix a value on '{name}' (a Dirichlet condition), or apply the term on a "
        f"boundary: {listing(data.boundaries)}",
    )


class FormContext(Context):
    """Context of one plug-in instance: on the parent mesh, on one of its regions, or on the
    mesh of one of its boundaries.

    An instance on a boundary (``domain = "top"``) sees that boundary's own named mesh
    (app/boundary_mesh.py): ``dx`` over its facets with the regions inherited from the parent,
    ``ds`` over its end points (named after the parent's boundaries), ``x`` its coordinate and
    every constant built on it. A field of the parent it reads is handed out as its trace on
    the boundary (app/traces.py); ``regions`` restrict it to part of the boundary's mesh.

    Args:
        instance: Instance name (for messages).
        mesh_data: The mesh the instance lives on (the parent's, or a boundary's own) with its
            named regions and boundaries.
        store: All fields.
        scheme: The time scheme (owner of the time constant).
        tests: Test functions of the fields this instance solves for.
        readable: Fields the instance declared (provides, requires, expression references).
        static: Set collecting functions that never change (lets solvers reuse operators).
        rules: What the simulation's forms share (records the constants of values fixed at 0).
        domain: The region the instance is placed on (None: the whole mesh); ``dx()`` is its
            measure then.
        parameters: The case's parameter-set constants (names expressions may use).
        internal: Names of the instance's internal variables.
        boundary: The boundary whose mesh ``mesh_data`` is (None: the parent's).
        parts: The regions of a boundary's mesh the instance acts on (None: all of it).
    """

    def __init__(
        self,
        instance: str,
        mesh_data: MeshData,
        store: FieldStore,
        scheme: TimeScheme,
        tests: Mapping[str, Any],
        readable: set[str],
        static: set[Any],
        rules: FormRules,
        domain: str | None = None,
        parameters: ParameterConstants | None = None,
        internal: frozenset[str] = frozenset(),
        boundary: str | None = None,
        parts: tuple[str, ...] | None = None,
    ):
        self.instance = instance
        self.boundary, self.parts = boundary, parts
        self.mesh_data = mesh_data
        self.mesh = mesh_data.mesh
        self.gdim = self.mesh.geometry.dim
        self.x = ufl.SpatialCoordinate(self.mesh)
        self.t = scheme.t
        self.dt = scheme.dt
        self.transient = scheme.transient
        self._scheme = scheme
        self._internal = internal
        self.n = ufl.FacetNormal(self.mesh)
        self._store, self._tests, self._readable, self._static = store, tests, readable, static
        self._rules = rules
        self.domain = domain
        self._parameters = parameters or ParameterConstants(None)
        self._measures = store.domains.measures(mesh_data)
        self._coefficients: dict[Any, tuple[Any, Any]] = {}  # see Context.coefficient
        self._modes = ModeRegistry()
        self._inline: dict[str, Any] = {}
        self._sizes: dict[str | None, float] = {}
        self.quadrature_degree: int | None = None  # the group's, once values at points fix it
        self.laws: dict[str, LinearisedStress] = {}  # see point_stress

    # Fields ---------------------------------------------------------------------------------
    @property
    def readable(self) -> set[str]:
        """Fields the instance declared it reads or provides."""
        return self._readable

    def inline(self, name: str, expression: Any) -> None:
        """Hand out ``expression`` instead of the stored field ``name`` (a derived field of a
        plug-in: the coupling becomes part of the Newton system, or reads the provider's latest
        unknowns from another group)."""
        self._inline[name] = expression
        # Formulas built so far may name the field: rebuild them on their next use. Constants
        # stay, so every form shares one constant per parameter (protocols set it).
        self._coefficients = {
            key: built for key, built in self._coefficients.items() if not _has_formula(built[0])
        }

    def field(self, name: str) -> Any:
        if name in self._inline:
            return self._inline[name]
        if name not in self._readable:
            raise KeyError(
                f"plug-in instance '{self.instance}' reads field '{name}' without declaring it in "
                f"provides or requires (declared: {listing(self._readable)})"
            )
        if name not in self._store:
            raise KeyError(f"field '{name}' has no provider; check ctx.has('{name}') first")
        return self._readable_field(name).function

    def _readable_field(self, name: str) -> Any:
        """The stored field, or the trace of a field living elsewhere: on a boundary's mesh
        of any solved field of another mesh, on the parent of a global value of a boundary."""
        field = self._store[name]
        if field.space.mesh is self.mesh:
            return field
        if self.boundary is not None:
            return self._store.trace(name, self.boundary)
        home = self._store.domains.of(field.space.mesh)
        if field.is_global and home is not None and home.surface:
            try:
                return self._store.trace(name, None)
            except KeyError:  # derived: no copy, and the integral's check names the problem
                return field
        return field

    def test(self, name: str) -> Any:
        if name not in self._tests:
            raise KeyError(
                f"plug-in instance '{self.instance}' asked for the test function of '{name}', "
                f"which it does not solve for (it solves for {listing(self._tests)})"
            )
        return self._tests[name]

    def previous(self, name: str) -> Any:
        return self._internal_variable(name).history[0]

    def relaxation(self, name: str, target: Any, time: Any) -> Any:
        return self._scheme.relax(target, self._internal_variable(name).history, time)

    def _internal_variable(self, name: str) -> Any:
        if name not in self._internal:
            raise KeyError(
                f"plug-in instance '{self.instance}' asked for the history of '{name}', which is "
                f"not one of its internal variables ({listing(self._internal)})"
            )
        return self._store[name]

    def has(self, name: str) -> bool:
        return name in self._store

    def control_modes(self, settings: Mapping[str, Any], active: str) -> dict[str, Any]:
        return self._modes.declare(self.mesh, settings, active)

    def control_of(self, value: Any, constant: fem.Constant) -> Any:
        """What a protocol sets for a parameter value that became ``constant`` (see
        :meth:`app.control_modes.ModeRegistry.control_of`)."""
        return self._modes.control_of(value, constant)

    def reset_modes(self) -> None:
        """Every group of control modes back to the setting in force at the start."""
        self._modes.reset()

    def region_of(self, name: str) -> str | tuple[str, ...] | None:
        if name not in self._store:
            return None
        if self.boundary is None:
            return self._store[name].spec.region
        parts = self._readable_field(name).parts  # where on the boundary's mesh it lives
        return parts[0] if parts is not None and len(parts) == 1 else parts

    # Measures -------------------------------------------------------------------------------
    def dx(self, region: str | Sequence[str] | None = None) -> Any:
        region = region or self.domain or self.parts
        if region is None:
            return self._measures.dx
        names = (region,) if isinstance(region, str) else tuple(region)
        for name in names:
            if name not in self.mesh_data.regions:
                raise unknown("region", name, self.regions)
        tags = tuple(self.mesh_data.regions[name] for name in names)
        return self._measures.dx(tags[0] if len(tags) == 1 else tags)

    def over(self, place: str | None) -> Any:
        """The measure of the cells a field lives on: everywhere, a region or a boundary (the
        boundary's own mesh, for an instance placed there)."""
        if self.boundary is not None and place == self.boundary:
            return self.dx()
        if place is None or place in self.mesh_data.regions:
            return self.dx(place)
        return self.ds(place)

    def ds(self, boundary: str | None = None, region: str | None = None) -> Any:
        if boundary is None:
            return self._measures.ds()
        refusal = not_integrable(boundary, self.mesh_data)
        if refusal is not None:
            raise refusal
        if boundary in self.mesh_data.interior_boundaries:
            raise BadValue(
                f"'{boundary}' is an internal boundary (an interface between regions), but a "
                f"condition needs an exterior one: {listing(self.boundaries)}",
                token=boundary,
            )
        if region is None:  # an instance on a region or part acts on the boundary's part there
            if boundary not in self.boundaries:
                raise unknown("boundary", boundary, self.boundaries)
            acting = None if self.domain is None and self.parts is None else self.regions
            return self._measures.ds(boundary, acting)
        if region not in self.mesh_data.regions:
            raise unknown("region", region, self.regions)
        if boundary not in self.mesh_data.boundaries:
            raise unknown("boundary", boundary, list(self.mesh_data.boundaries))
        return self._measures.ds(boundary, [region])

    def dS(self, boundary: str) -> Any:
        refusal = not_integrable(boundary, self.mesh_data)
        if refusal is not None:
            raise refusal
        if boundary not in self.mesh_data.interior_boundaries:
            raise unknown("interface", boundary, self.interfaces)
        return self._measures.dS(self.mesh_data.boundaries[boundary])

    def size(self, name: str | None = None) -> float:
        if name not in self._sizes:
            data = self.mesh_data
            if name is None:
                measure = self.dx()
            elif name in data.regions:
                measure = self.dx(name)
            elif name in data.interior_boundaries:
                measure = self.dS(name)
            elif name in data.boundaries:
                measure = self.ds(name)
            else:
                known = [*data.regions, *data.boundaries]
                raise not_integrable(name, data) or unknown("boundary or region", name, known)
            one = fem.Constant(self.mesh, PETSc.ScalarType(1.0))
            local = fem.assemble_scalar(fem.form(one * measure))
            self._sizes[name] = self.mesh.comm.allreduce(local, op=MPI.SUM)
        return self._sizes[name]

    @property
    def boundaries(self) -> list[str]:
        interior = self.mesh_data.interior_boundaries
        names = [name for name in self.mesh_data.boundaries if name not in interior]
        if self.domain is not None or self.parts is not None:  # those of where it acts
            names = [name for name in names if self._measures.touches(name, self.regions)]
        return names

    @property
    def interfaces(self) -> list[str]:
        interior = self.mesh_data.interior_boundaries
        return [name for name in self.mesh_data.boundaries if name in interior]

    @property
    def regions(self) -> list[str]:
        if self.parts:
            return list(self.parts)
        return [self.domain] if self.domain else list(self.mesh_data.regions)

    def per_depth(self, units: str) -> str:
        # The domain's own dimension counts: a boundary's line in a 2D mesh is a 1D cell.
        missing = 3 - self.mesh.topology.dim
        return units if missing == 0 else f"{units}/m" if missing == 1 else f"{units}/m^{missing}"

    # Parameters as UFL ----------------------------------------------------------------------
    def constant_of(self, value: Any) -> fem.Constant | None:
        """The constant a parameter value became, if the plug-in used it (protocols set it)."""
        built = self._coefficients.get(id(value))
        return built[1] if built and isinstance(built[1], fem.Constant) else None

    def coefficient(self, value: Any, names: Mapping[str, Any] | None = None) -> Any:
        if names and _uses(value, names):  # built for this call: the names are the caller's
            return self._build(value, names)
        key = _cache_key(value)
        if key not in self._coefficients:
            self._coefficients[key] = (value, self._build(value))
        return self._coefficients[key][1]

    def _build(self, value: Any, names: Mapping[str, Any] | None = None) -> Any:
        match value:
            case Value() | int() | float():
                number = value.value if isinstance(value, Value) else value
                constant = fem.Constant(self.mesh, PETSc.ScalarType(number))
                self._rules.built(self.instance, value, constant)
                return constant
            case Formula():
                return self._formula(value, names)
            case PerRegion():
                return self._per_region(value, names)
            case PerDimension():
                try:
                    reading = value.on(self.mesh.topology.dim)
                except ValueError as exc:
                    raise BadValue(str(exc), value=value) from None
                return self.coefficient(reading)
            case Surrogate():
                return self._served(value)
        raise TypeError(f"cannot turn {value!r} into a coefficient")

    def point_stress(self, source: RVESource, strain: Any) -> LinearisedStress:
        """The law of ``{ rve = ... }`` at the group's quadrature points (one per name: the
        plug-in's methods all read the same values)."""
        law = self.laws.get(source.rve)
        if law is not None:
            return law
        response = self._store.point_laws.get(source.rve)
        if response is None:
            raise BadValue(
                f"rve '{source.rve}' is not defined",
                value=source,
                fix=f"add an [rves.{source.rve}] section",
            )
        if self.domain is not None or self.boundary is not None:
            raise BadValue(
                f"a pointwise law (rve '{source.rve}') needs its instance on the whole mesh; "
                f"this one is placed on '{self.domain or self.boundary}'",
                token="domain",
                fix="remove domain from the instance's table",
            )
        if self.quadrature_degree is None:
            raise RuntimeError(
                f"plug-in '{self.instance}' reads a pointwise law but declares no field at "
                "quadrature points, so its group's quadrature degree is not fixed yet"
            )
        cells = np.asarray(self.mesh.topology.original_cell_index, dtype=np.int64)
        law = self.laws[source.rve] = LinearisedStress(
            strain, self.mesh, cells, self.quadrature_degree, response
        )
        return law

    def _served(self, value: Surrogate) -> Any:
        """The cellwise property a surrogate serves (a field the multiscale layer updates; on
        a boundary's mesh its copy there, app/multiscale/cellwise.py)."""
        name = self._store.served.get(value)
        if name is None:
            raise BadValue(
                f"surrogate '{value.name}' is not defined",
                value=value,
                fix=f"add a [surrogates.{value.name}] section",
            )
        field = self._store[name]
        if self.boundary is not None and field.space.mesh is not self.mesh:
            return self._store[f"{name}_{self.boundary}"].function  # its copy on this mesh
        return field.function

    def namespace(self) -> dict[str, Any]:
        """Names an expression may use here: the parameter set's constants, coordinates, t and
        the readable scalar fields."""
        names: dict[str, Any] = dict(self._parameters.on(self.mesh))
        names |= dict(zip(("x", "y", "z"), self.x, strict=False))
        names["t"] = self.t
        for name in sorted(self._readable):
            if name in self._store and self._store[name].spec.rank == "scalar":
                names[name] = self.field(name)  # inlined expression of a same-group provider
        return names

    def _formula(self, value: Formula, extra: Mapping[str, Any] | None = None) -> Any:
        names = self.namespace() | dict(extra or {})
        missing = sorted(value.names - set(names))
        if missing:
            raise unknown("name", missing[0], sorted(names))
        return value.expression.to_ufl(names)

    def _per_region(self, value: PerRegion, names: Mapping[str, Any] | None = None) -> Any:
        regions = self.mesh_data.regions
        for name in value.values:
            if name not in regions:
                raise unknown("region", name, list(regions))
        missing = [name for name in self.regions if name not in value.values]
        if missing:
            raise BadValue(
                f"no value for region{'s' if len(missing) > 1 else ''} {listing(missing)}; a "
                f"table by region must cover every region ({listing(self.regions)})",
                value=value,
                fix="add the missing regions to the table",
            )
        if all(isinstance(item, Value) for item in value.values.values()):
            return self._piecewise({name: item.value for name, item in value.values.items()})
        return sum(
            self._piecewise({name: 1.0}) * self.coefficient(item, names)
            for name, item in value.values.items()
        )

    def _piecewise(self, values: Mapping[str, float]) -> fem.Function:
        """A cellwise-constant function: the given value on each named region, 0 elsewhere."""
        space = fem.functionspace(self.mesh, ("DG", 0))
        function = fem.Function(space)
        for name, number in values.items():
            cells = self.mesh_data.cell_tags.find(self.mesh_data.regions[name])
            function.x.array[space.dofmap.list[cells, 0]] = number
        self._static.add(function)
        return function


def _cache_key(value: Any) -> Any:
    """Numbers and tables of constants by value (no protocol sets them, so equal ones may
    share); parameter values by identity (a protocol sets one parameter's constant)."""
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, PerRegion) and all(isinstance(v, Value) for v in value.values.values()):
        return ("table", tuple(sorted((name, v.value) for name, v in value.values.items())))
    return id(value)


def _uses(value: Any, names: Mapping[str, Any]) -> bool:
    """Whether an expression (or a table of them) reads any of ``names``."""
    if isinstance(value, PerRegion):
        return any(_uses(item, names) for item in value.values.values())
    return isinstance(value, Formula) and not value.names.isdisjoint(names)


def _has_formula(value: Any) -> bool:
    if isinstance(value, PerRegion):
        return any(isinstance(item, Formula) for item in value.values.values())
    return isinstance(value, Formula)


def parameter_owner(params: Any, dotted: str) -> tuple[Any, str] | tuple[None, str]:
    """The parameter model holding the parameter at a dotted path, and its field name
    (``boundaries.heater.value`` -> the heater's boundary model, "value")."""
    *parents, name = dotted.split(".")
    owner: Any = params
    for part in parents:
        owner = owner.get(part) if isinstance(owner, dict) else getattr(owner, part, None)
        if owner is None:
            return None, name
    return (owner, name) if name in getattr(type(owner), "model_fields", {}) else (None, name)


def locate_value(params: Any, target: Any) -> str | None:
    """Dotted path of a parameter value object inside a parameter model (by identity)."""
    for path, value in walk_values(params):
        if value is target:
            return path
    return None
