"""The framework's implementation of :class:`app.contracts.Context`.

One context per plug-in instance. It hands out the instance's fields, test functions and
measures, and turns parameter values into UFL. Names written in the case (boundaries, regions,
fields in expressions) are checked here; a wrong one raises :class:`BadValue`, which the
simulation turns into a :class:`~app.errors.CaseError` at the place the case wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from app.contracts import BadValue, Context, Formula, PerRegion, Value
from app.errors import did_you_mean, listing
from app.fields import FieldStore
from app.meshing import MeshData
from app.parameters import Surrogate, walk_values
from app.timeint import TimeScheme


def unknown(kind: str, name: str, known: list[str]) -> BadValue:
    kinds = "boundaries" if kind == "boundary" else f"{kind}s"
    return BadValue(
        f"unknown {kind} '{name}'{did_you_mean(name, known)}; {kinds} here: {listing(known)}",
        token=name,
    )


class FormContext(Context):
    """Context of one plug-in instance on the parent mesh.

    Args:
        instance: Instance name (for messages).
        mesh_data: The mesh with its named regions and boundaries.
        store: All fields.
        scheme: The time scheme (owner of the time constant).
        tests: Test functions of the fields this instance solves for.
        readable: Fields the instance declared (provides, requires, expression references).
        static: Set collecting functions that never change (lets solvers reuse operators).
        domain: The region the instance is placed on (None: the whole mesh); ``dx()`` is its
            measure then.
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
        domain: str | None = None,
    ):
        self.instance = instance
        self.mesh_data = mesh_data
        self.mesh = mesh_data.mesh
        self.gdim = self.mesh.geometry.dim
        self.x = ufl.SpatialCoordinate(self.mesh)
        self.t = scheme.t
        self.n = ufl.FacetNormal(self.mesh)
        self._store, self._tests, self._readable, self._static = store, tests, readable, static
        self.domain = domain
        self._dx = ufl.Measure("dx", domain=self.mesh, subdomain_data=mesh_data.cell_tags)
        self._ds = ufl.Measure("ds", domain=self.mesh, subdomain_data=mesh_data.facet_tags)
        self._dS = ufl.Measure("dS", domain=self.mesh, subdomain_data=mesh_data.facet_tags)
        self._coefficients: dict[int, tuple[Any, Any]] = {}
        self._inline: dict[str, Any] = {}
        self._sizes: dict[str | None, float] = {}

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
        return self._store[name].function

    def test(self, name: str) -> Any:
        if name not in self._tests:
            raise KeyError(
                f"plug-in instance '{self.instance}' asked for the test function of '{name}', "
                f"which it does not solve for (it solves for {listing(self._tests)})"
            )
        return self._tests[name]

    def has(self, name: str) -> bool:
        return name in self._store

    def region_of(self, name: str) -> str | None:
        return self._store[name].spec.region if name in self._store else None

    # Measures -------------------------------------------------------------------------------
    def dx(self, region: str | None = None) -> Any:
        region = region or self.domain
        if region is None:
            return self._dx
        if region not in self.mesh_data.regions:
            raise unknown("region", region, self.regions)
        return self._dx(self.mesh_data.regions[region])

    def over(self, place: str | None) -> Any:
        """The measure of the cells a field lives on: everywhere, a region or a boundary."""
        if place is None or place in self.mesh_data.regions:
            return self.dx(place)
        return self.ds(place)

    def ds(self, boundary: str | None = None) -> Any:
        if boundary is None:
            return self._ds
        if boundary in self.mesh_data.interior_boundaries:
            raise BadValue(
                f"'{boundary}' is an internal boundary (an interface between regions), but a "
                f"condition needs an exterior one: {listing(self.boundaries)}",
                token=boundary,
            )
        if boundary not in self.boundaries:
            raise unknown("boundary", boundary, self.boundaries)
        return self._ds(self.mesh_data.boundaries[boundary])

    def dS(self, boundary: str) -> Any:
        if boundary not in self.mesh_data.interior_boundaries:
            raise unknown("interface", boundary, self.interfaces)
        return self._dS(self.mesh_data.boundaries[boundary])

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
                raise unknown("boundary or region", name, [*data.regions, *data.boundaries])
            one = fem.Constant(self.mesh, PETSc.ScalarType(1.0))
            local = fem.assemble_scalar(fem.form(one * measure))
            self._sizes[name] = self.mesh.comm.allreduce(local, op=MPI.SUM)
        return self._sizes[name]

    @property
    def boundaries(self) -> list[str]:
        interior = self.mesh_data.interior_boundaries
        names = [name for name in self.mesh_data.boundaries if name not in interior]
        if self.domain is not None:  # the sides of the region the instance is placed on
            names = [name for name in names if self._store.domains.borders(self.domain, name)]
        return names

    @property
    def interfaces(self) -> list[str]:
        interior = self.mesh_data.interior_boundaries
        return [name for name in self.mesh_data.boundaries if name in interior]

    @property
    def regions(self) -> list[str]:
        return [self.domain] if self.domain else list(self.mesh_data.regions)

    # Parameters as UFL ----------------------------------------------------------------------
    def constant_of(self, value: Any) -> fem.Constant | None:
        """The constant a parameter value became, if the plug-in used it (protocols set it)."""
        built = self._coefficients.get(id(value))
        return built[1] if built and isinstance(built[1], fem.Constant) else None

    def coefficient(self, value: Any, names: Mapping[str, Any] | None = None) -> Any:
        if names and _uses(value, names):  # built for this call: the names are the caller's
            return self._build(value, names)
        key = id(value)
        if key not in self._coefficients:
            self._coefficients[key] = (value, self._build(value))
        return self._coefficients[key][1]

    def _build(self, value: Any, names: Mapping[str, Any] | None = None) -> Any:
        match value:
            case Value():
                return fem.Constant(self.mesh, PETSc.ScalarType(value.value))
            case int() | float():
                return fem.Constant(self.mesh, PETSc.ScalarType(value))
            case Formula():
                return self._formula(value, names)
            case PerRegion():
                return self._per_region(value, names)
            case Surrogate():
                return self._served(value)
        raise TypeError(f"cannot turn {value!r} into a coefficient")

    def _served(self, value: Surrogate) -> Any:
        """The cellwise property a surrogate serves (a field the multiscale layer updates)."""
        name = self._store.served.get(value)
        if name is None:
            raise BadValue(
                f"surrogate '{value.name}' is not defined",
                value=value,
                fix=f"add a [surrogates.{value.name}] section",
            )
        return self._store[name].function

    def namespace(self) -> dict[str, Any]:
        """Names an expression may use here: coordinates, t and the readable scalar fields."""
        names: dict[str, Any] = dict(zip(("x", "y", "z"), self.x, strict=False))
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
