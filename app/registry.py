"""Plug-in discovery and the contract graph.

Plug-ins are found only through the ``scalebridge.physics`` entry-point group; the built-ins
register there exactly like a third-party package does. Before anything is solved,
:func:`check_contracts` verifies the field graph: every required field has exactly one provider,
ranks agree and units are dimensionally compatible. Expressions in a case that name a field make
their plug-in a consumer of that field too; names of the case's parameter set are not fields,
and a field may not take one of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel

from app.contracts import FieldSpec, Formula, Physics
from app.declarations import FIX as DECLARATION_FIX
from app.declarations import declaration_problems
from app.errors import CaseError, did_you_mean, listing
from app.parameter_set import ParameterTable
from app.parameters import walk_values
from app.units import coherent, compatible, parse_units, registry

GROUP = "scalebridge.physics"

#: Names every expression may use besides field names.
COORDINATES = ("x", "y", "z")
TIME = "t"


@dataclass(frozen=True)
class Plugins:
    """Discovered plug-in classes by type name, and entry points that failed to load."""

    classes: Mapping[str, type[Physics]]
    broken: Mapping[str, str]


class _EntryPoints:
    """The group's entry points by name, each loaded on first use only.

    A run loads the plug-ins its case names and no others: importing every built-in (mechanics,
    reaction networks, ...) cost a DFN discharge about 0.1 s of its start-up. Listing all of
    them (``scalebridge modules``) loads all."""

    def __init__(self) -> None:
        self._entries = {entry.name: entry for entry in entry_points(group=GROUP)}
        self._loaded: dict[str, type[Physics] | str] = {}  # name -> class, or why it failed

    def names(self) -> list[str]:
        return sorted(self._entries)

    def result(self, name: str) -> type[Physics] | str | None:
        """The class of the entry point ``name``, why it is broken, or None without one."""
        if name not in self._entries:
            return None
        if name not in self._loaded:
            self._loaded[name] = _load(self._entries[name])
        return self._loaded[name]


def _load(entry: EntryPoint) -> type[Physics] | str:
    """The plug-in class an entry point names, or the reason it cannot be used."""
    try:
        cls = entry.load()
    # A third-party plug-in may fail in any way, sys.exit() on import included; report it
    # against its name and go on, so that cases not using it still run.
    except (Exception, SystemExit) as exc:
        return f"{entry.value}: {type(exc).__name__}: {exc}"
    if not (isinstance(cls, type) and issubclass(cls, Physics)):
        return f"{entry.value} is not a subclass of app.contracts.Physics"
    if getattr(cls, "name", None) != entry.name:
        return (
            f"{entry.value}.name is {getattr(cls, 'name', None)!r}, "
            f"but its entry point is named {entry.name!r}"
        )
    parameters = getattr(cls, "Parameters", None)
    if not (isinstance(parameters, type) and issubclass(parameters, BaseModel)):
        return f"{entry.value}.Parameters is {parameters!r}, not a pydantic model"
    return cls


class _Loaded(Mapping):
    """The entry points that loaded (``broken=False``: name -> class) or failed to
    (``broken=True``: name -> reason); a look-up by name loads that entry point only."""

    def __init__(self, entries: _EntryPoints, broken: bool):
        self._entries, self._broken = entries, broken

    def __getitem__(self, name: str) -> Any:
        result = self._entries.result(name)
        if result is None or isinstance(result, str) != self._broken:
            raise KeyError(name)
        return result

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._entries.names() if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@cache
def discover() -> Plugins:
    """The entry points of the group, found once; each is loaded when first looked up."""
    entries = _EntryPoints()
    return Plugins(_Loaded(entries, broken=False), _Loaded(entries, broken=True))


def plugin(type_name: str, path: str) -> type[Physics]:
    """The plug-in class for a case's ``type``; CaseError at ``path`` if there is none."""
    plugins = discover()
    if type_name in plugins.classes:
        return plugins.classes[type_name]
    if type_name in plugins.broken:
        raise CaseError(path, f"plug-in '{type_name}' failed to load: {plugins.broken[type_name]}")
    raise CaseError(
        path,
        f"unknown physics '{type_name}'{did_you_mean(type_name, plugins.classes)}; "
        f"installed: {listing(plugins.classes)}",
        "set `type` to an installed plug-in (see `scalebridge modules`)",
    )


@dataclass
class FieldGraph:
    """Who provides and who consumes each field.

    Attributes:
        providers: Field name -> (instance, spec).
        consumers: Field name -> [(instance, spec)], including expression references.
    """

    providers: dict[str, tuple[str, FieldSpec]] = field(default_factory=dict)
    consumers: dict[str, list[tuple[str, FieldSpec]]] = field(default_factory=dict)
    internal: set[str] = field(default_factory=set)

    def describe(self) -> list[str]:
        """One line per field: name, rank, units, provider and consumers."""
        lines = []
        for name, (provider, spec) in self.providers.items():
            users = sorted({instance for instance, _ in self.consumers.get(name, [])})
            kind = "derived" if spec.derived else "solved"
            kind = "internal" if name in self.internal else kind
            used = f" -> {', '.join(users)}" if users else ""
            lines.append(f"{name} [{spec.rank}, {spec.units}, {kind}] from {provider}{used}")
        return lines


def expression_references(plugin: Physics, parameters: set[str] = frozenset()) -> dict[str, str]:
    """Field names the instance's expressions use, each with the parameter path using it
    (names of the parameter set, ``parameters``, are not fields)."""
    references: dict[str, str] = {}
    for path, value in walk_values(plugin.params):
        if isinstance(value, Formula):
            for name in sorted(value.names - {*COORDINATES, TIME, *parameters}):
                references.setdefault(name, path)
    return references


def check_contracts(
    physics: Mapping[str, Physics], parameters: ParameterTable | None = None
) -> FieldGraph:
    """Build the field graph and verify it (internal variables are fields their plug-in
    provides).

    Raises:
        CaseError: Naming the plug-ins involved and the field, located at the consumer; or a
            plug-in's declaration that is not well formed (app/declarations.py).
    """
    for instance, plugin in physics.items():
        problems = declaration_problems(instance, plugin)
        if problems:
            raise CaseError(f"physics.{instance}", "; ".join(problems), DECLARATION_FIX)
    graph = FieldGraph()
    names = parameters.names() if parameters else set()
    for instance, plugin in physics.items():
        internal = [variable.spec for variable in plugin.internal_variables]
        graph.internal.update(spec.name for spec in internal)
        for spec in [*plugin.provides, *internal]:
            if spec.name in names:
                raise CaseError(
                    f"physics.{instance}",
                    f"field '{spec.name}' of '{instance}' has the name of a value of the "
                    f"parameter set {parameters.name}, so expressions could not tell them apart",
                    "rename the field (the plug-in's field names are settings of the case)",
                )
            if spec.name in graph.providers:
                other = graph.providers[spec.name][0]
                raise CaseError(
                    f"physics.{instance}",
                    f"field '{spec.name}' is provided by both '{other}' "
                    f"({physics[other].name}) and '{instance}' ({plugin.name})",
                    "keep one provider per field",
                )
            _check_si_units(instance, plugin, spec)
            graph.providers[spec.name] = (instance, spec)
    for instance, plugin in physics.items():
        for spec in plugin.requires:
            _check_requirement(graph, physics, instance, spec)
        own = {spec.name for spec in plugin.provides}
        own |= {variable.name for variable in plugin.internal_variables}
        for name, path in expression_references(plugin, names).items():
            _check_reference(graph, instance, name, path, own, names)
        if parameters is not None:
            _check_arguments(graph, instance, plugin, parameters)
    return graph


def _check_arguments(
    graph: FieldGraph, instance: str, plugin: Physics, parameters: ParameterTable
) -> None:
    """A field or constant passed by name to a function of the parameter set has the units
    the function declares for that argument (``U_p(c_e)`` is refused: theta is unitless)."""
    for path, value in walk_values(plugin.params):
        if not isinstance(value, Formula):
            continue
        for function, given in value.expression.calls:
            wanted = parameters.functions[function].arguments
            for position, (argument, units) in enumerate(wanted.items()):
                name = given[position]
                have = parameters.units_of(name) if name else None
                if name in graph.providers:
                    have = graph.providers[name][1].units
                if have is not None and not compatible(have, units):
                    raise CaseError(
                        f"physics.{instance}.{path}",
                        f"argument {position + 1} of {function}() is {argument} in {units}, but "
                        f"'{name}' is in {have}",
                        f"pass a value in {units}",
                    )


def _check_requirement(
    graph: FieldGraph, physics: Mapping[str, Physics], consumer: str, spec: FieldSpec
) -> None:
    where = f"physics.{consumer}"
    naming = _naming_parameter(physics[consumer], spec.name)
    if naming:
        where = f"{where}.{naming}"
    kind = physics[consumer].name
    if spec.name not in graph.providers:
        if spec.optional:
            return
        raise CaseError(
            where,
            f"'{consumer}' ({kind}) requires field '{spec.name}' ({spec.units}) but no plug-in "
            f"provides it{did_you_mean(spec.name, graph.providers)}; provided fields: "
            f"{listing(graph.providers)}",
            "add a plug-in that provides it",
        )
    provider, given = graph.providers[spec.name]
    if given.rank not in spec.ranks:
        raise CaseError(
            where,
            f"'{consumer}' ({kind}) requires '{spec.name}' as a {' or '.join(spec.ranks)} but "
            f"'{provider}' ({physics[provider].name}) provides a {given.rank}",
        )
    if not compatible(given.units, spec.units):
        raise CaseError(
            where,
            f"'{consumer}' ({kind}) requires '{spec.name}' in {spec.units} "
            f"[{parse_units(spec.units).dimensionality}] but '{provider}' "
            f"({physics[provider].name}) provides it in {given.units} "
            f"[{parse_units(given.units).dimensionality}]",
            "the two plug-ins disagree on what the field is; check their field names",
        )
    graph.consumers.setdefault(spec.name, []).append((consumer, spec))


def _check_si_units(instance: str, plugin: Physics, spec: FieldSpec) -> None:
    """A field holds SI values: its consumers and the case's expressions read them without a
    conversion, so a temperature in degC would be read as 96.85 K, a length in mm as metres."""
    if coherent(spec.units):
        return
    naming = _naming_parameter(plugin, spec.units)
    base = registry().Quantity(1.0, parse_units(spec.units)).to_base_units().units
    raise CaseError(
        f"physics.{instance}" + (f".{naming}" if naming else ""),
        f"field '{spec.name}' of '{instance}' ({plugin.name}) is in {spec.units}, not an SI "
        "unit; fields hold SI values, which other plug-ins and expressions read as they are",
        f"declare it in {base:~}; a value may still be written with its units ('1 {spec.units}')",
    )


def _naming_parameter(plugin: Physics, name: str) -> str | None:
    """The parameter where the case named a required field (``pore_pressure.field``), if it
    names it: an error about the field points there rather than at the whole instance."""
    for path, value in walk_values(plugin.params):
        if isinstance(value, str) and value == name:
            return path
    return None


def _check_reference(
    graph: FieldGraph, consumer: str, name: str, path: str, own: set, parameters: set[str]
) -> None:
    where = f"physics.{consumer}.{path}"
    known = sorted({*graph.providers, *COORDINATES, TIME, *parameters})
    if name not in graph.providers:
        raise CaseError(
            where,
            f"unknown name '{name}'{did_you_mean(name, known)}: no plug-in provides a field of "
            f"that name; expressions may use {listing(known)}",
        )
    spec = graph.providers[name][1]
    if spec.rank != "scalar":
        raise CaseError(
            where, f"'{name}' is a {spec.rank} field; expressions use scalar fields only"
        )
    if name not in own:
        graph.consumers.setdefault(name, []).append(
            (consumer, FieldSpec(name, "scalar", spec.units, description=f"used in {path}"))
        )
