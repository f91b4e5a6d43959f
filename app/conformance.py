"""The machinery behind :mod:`app.testing` (the conformance kit for plug-ins).

Case handling, the mesh dimensions a case can be checked in, the shape checks wrapped around a
plug-in's methods, and the Jacobian against finite differences. One rank against several is
:mod:`app.conformance_parallel`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import tomllib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app import registry
from app.contracts import Physics
from app.declarations import declaration_problems

PluginLike = type[Physics] | str
CaseLike = Mapping[str, Any] | str | Path

_BUILTIN = {1: "interval", 2: "rectangle", 3: "box"}
_CELLS = {1: 8, 2: 4, 3: 2}
_HIDDEN_DEPENDENCE = (
    "the residual depends on an unknown through something ufl.derivative cannot see: a copy of "
    "a field in a separate Function, a value lagged by hand, an interpolation, or a "
    "non-differentiable construct; read unknowns only through ctx.field()"
)


# --------------------------------------------------------------------------------------------
# Plug-ins and cases
# --------------------------------------------------------------------------------------------
def plugin_class(plugin: PluginLike) -> type[Physics]:
    """The class of a plug-in given as a class or as an installed type name."""
    if isinstance(plugin, str):
        found = registry.discover()
        if plugin in found.broken:
            raise AssertionError(f"plug-in '{plugin}' failed to load: {found.broken[plugin]}")
        if plugin not in found.classes:
            raise AssertionError(
                f"no installed plug-in '{plugin}'; installed: {', '.join(found.classes)}"
            )
        return found.classes[plugin]
    require(
        isinstance(plugin, type) and issubclass(plugin, Physics),
        f"{plugin!r} is not a subclass of app.contracts.Physics",
    )
    require(isinstance(getattr(plugin, "name", None), str), f"{plugin.__name__} has no `name`")
    return plugin


@contextlib.contextmanager
def registered(cls: type[Physics]) -> Iterator[None]:
    """Make ``cls`` discoverable by its type name for the duration (if no entry point does)."""
    found = registry.discover()
    if found.classes.get(cls.name) is cls:
        yield
        return
    original = registry.discover
    patched = registry.Plugins({**found.classes, cls.name: cls}, found.broken)
    registry.discover = lambda: patched
    try:
        yield
    finally:
        registry.discover = original


@dataclass(frozen=True)
class CaseData:
    raw: dict[str, Any]
    base_dir: Path | None


def read_case(case: CaseLike) -> CaseData:
    if isinstance(case, Mapping):
        return CaseData(copy.deepcopy(dict(case)), None)
    path = Path(case)
    with path.open("rb") as stream:
        return CaseData(tomllib.load(stream), path.parent.resolve())


def instances_of(cls: type[Physics], spec: CaseData) -> list[str]:
    physics = spec.raw.get("physics", {})
    found = [name for name, table in physics.items() if table.get("type", name) == cls.name]
    require(bool(found), f"the case has no instance of '{cls.name}' to check")
    return found


def dimensions(cls: type[Physics], spec: CaseData) -> tuple[list[int], str]:
    """The mesh dimensions every plug-in of the case has a formulation for (the class's own
    ``dimensions`` for the checked instances), and why the checked class's others are out
    ("1D not supported by 'mechanics' (mechanics: 2D, 3D)"; empty when none is)."""
    wanted = set(cls.dimensions)
    limits = []
    found = registry.discover().classes
    for instance, table in spec.raw.get("physics", {}).items():
        kind = table.get("type", instance) if isinstance(table, Mapping) else instance
        other = cls if kind == cls.name else found.get(kind)
        if other is None or set(other.dimensions) >= wanted:
            continue
        limits.append(f"'{instance}' ({kind}: {', '.join(f'{d}D' for d in other.dimensions)})")
        wanted &= set(other.dimensions)
    ruled_out = ", ".join(f"{d}D" for d in sorted(set(cls.dimensions) - wanted))
    return sorted(wanted), f"{ruled_out} not supported by {' and '.join(limits)}" if limits else ""


def in_dimension(raw: dict[str, Any], dim: int) -> dict[str, Any]:
    """The case on a small built-in mesh of ``dim`` dimensions."""
    mesh = raw.get("mesh", {})
    new: dict[str, Any] = {"type": _BUILTIN[dim], "cells": [_CELLS[dim]] * dim}
    for key in ("length", "origin"):
        if isinstance(mesh.get(key), list) and mesh[key] and mesh.get("type") != "gmsh":
            values = list(mesh[key])
            new[key] = (values + [values[-1]] * 3)[:dim]
    for key in ("regions", "boundaries", "points", "edges"):
        if mesh.get(key):
            new[key] = mesh[key]
    return raw | {"mesh": new}


def contract(plugin: Physics) -> list[tuple]:
    return [
        (s.name, s.rank, s.units, s.space, s.region, s.derived, s.optional)
        for s in [*plugin.provides, *plugin.requires]
    ]


def require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def guard(call: Any, what: str, hint: str = "") -> Any:
    """``call()``, with any failure turned into an AssertionError that says what failed."""
    try:
        return call()
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(f"{what} failed: {type(exc).__name__}: {exc}{hint}") from exc


# --------------------------------------------------------------------------------------------
# Fields and ranks
# --------------------------------------------------------------------------------------------
def _rank_of(shape: tuple[int, ...], gdim: int) -> str:
    names = {(): "scalar", (gdim,): "vector", (gdim, gdim): "tensor"}
    return names.get(tuple(shape), f"shape {tuple(shape)}")


def _check_specs(instance: str, plugin: Physics) -> None:
    problems = declaration_problems(instance, plugin)
    require(not problems, "; ".join(problems))


def _shape_checked(plugin: Physics, instance: str, method: str) -> Any:
    """Wrap ``plugin.<method>`` (derived or initial) so that what it returns is checked against
    the declared fields the moment the framework calls it."""
    original = getattr(plugin, method)
    specs = {spec.name: spec for spec in plugin.provides if spec.derived == (method == "derived")}
    shapes = {name: lambda gdim, spec=spec: spec.shape(gdim) for name, spec in specs.items()}
    if method == "initial":  # internal variables may start from the initial fields
        for variable in plugin.internal_variables:
            specs[variable.name] = variable.spec
            shapes[variable.name] = lambda gdim, shape=variable.shape: shape

    def checked(ctx: Any) -> Any:
        values = original(ctx)
        where = f"'{instance}' ({plugin.name}).{method}()"
        for key, value in values.items():
            require(key in specs, f"{where} returns '{key}', not one of its fields {list(specs)}")
            expected, shape = shapes[key](ctx.gdim), getattr(value, "ufl_shape", ())
            if isinstance(value, int | float) and method == "initial":
                continue  # a number fills every component
            require(
                tuple(shape) == expected,
                f"field '{key}' of '{instance}' ({plugin.name}) is declared a {specs[key].rank} "
                f"(shape {expected}) on a {ctx.gdim}D mesh, but {method}() returns "
                f"{_rank_of(shape, ctx.gdim)} (shape {tuple(shape)})",
            )
        if method == "derived":
            missing = sorted(set(specs) - set(values))
            require(not missing, f"{where} does not return its derived fields {missing}")
        return values

    return checked


@dataclass
class CheckedRun:
    """A case the kit ran in memory.

    Attributes:
        sim: The simulation (at its final state).
        result: What its run returned.
        scales: Per quantity column, the magnitude of its terms at every output (recorded
            only when asked for: it compiles one more form per quantity).
    """

    sim: Any
    result: Any
    scales: dict[str, list[float]] = field(default_factory=dict)


def run_checked(cls: type[Physics], spec: CaseData, scales: bool = False) -> CheckedRun:
    """Build (with shape checks on derived and initial values) and run the case in memory;
    with ``scales``, record the magnitude of every quantity's terms at every output."""
    from app.simulation import Simulation

    instances = instances_of(cls, spec)
    with registered(cls):
        sim = guard(lambda: Simulation.from_case(spec.raw, base_dir=spec.base_dir), "the case")
    for instance in instances:
        plugin = sim.physics[instance]
        _check_specs(instance, plugin)
        for method in ("derived", "initial"):
            setattr(plugin, method, _shape_checked(plugin, instance, method))
    guard(sim.build, f"building the forms of {instances}")
    gdim = sim.mesh_data.mesh.geometry.dim
    for instance in instances:
        for field_spec in sim.physics[instance].provides:
            stored = sim.store[field_spec.name]
            shape = stored.function.ufl_shape
            require(
                stored.provider == instance and tuple(shape) == field_spec.shape(gdim),
                f"field '{field_spec.name}' is stored as {_rank_of(shape, gdim)} by "
                f"'{stored.provider}', declared {field_spec.rank} by '{instance}'",
            )
    recorded: dict[str, list[float]] = defaultdict(list)
    if scales:

        def record_scales(t: float) -> None:
            for name, value in sim.quantity_scales().items():
                recorded[name].append(value)

        sim.output_observers.append(record_scales)
    try:
        result = sim.run()
    except Exception as exc:
        message = f"running the case failed: {type(exc).__name__}: {exc}"
        try:  # a wrong Jacobian is a common reason for a Newton failure: say so when it is
            assert_jacobian(cls, sim, instances, 1e-5)
        except AssertionError as diagnosis:
            message += f"; {diagnosis}"
        except Exception:  # the state left behind may not even assemble
            pass
        raise AssertionError(message) from exc
    return CheckedRun(sim, result, dict(recorded))


def fields_summary(sim: Any, instances: list[str]) -> str:
    from mpi4py import MPI

    count = 0
    for instance in instances:
        plugin = sim.physics[instance]
        for spec in [*plugin.provides, *(v.spec for v in plugin.internal_variables)]:
            function = sim.store[spec.name].function
            comm = function.function_space.mesh.comm
            finite = comm.allreduce(bool(np.isfinite(function.x.array).all()), op=MPI.LAND)
            require(finite, f"field '{spec.name}' of '{instance}' has non-finite values")
            count += 1
    return f"{count} provided field(s) with declared rank, valid units, finite values"


# --------------------------------------------------------------------------------------------
# Jacobian against finite differences
# --------------------------------------------------------------------------------------------
def jacobian_products(
    sim: Any, instances: list[str], step: float = 1e-6, seed: int = 0, nudge: float = 0.0
) -> Iterator[tuple[str, str, float, float, float]]:
    """Compare J d with finite differences of F, per solved field of each group holding one of
    ``instances``.

    Args:
        sim: A built (and compiled) simulation; its current state is where J is checked.
        instances: Plug-in instances whose groups are checked.
        step: Central-difference step h relative to the direction d, which is random with the
            magnitude of each field (or 1 where a field is zero).
        seed: Seed of the random direction.
        nudge: Move the state first by up to this fraction of each field's magnitude (upwards):
            off exact values where a residual has a kink (max(c, 0) at c = 0).

    Yields:
        (group, field, |F|, |J d|, |J d - FD| / max(|J d|, |FD|)) for the field's rows.
    """
    from dolfinx import fem
    from dolfinx.fem import petsc as fem_petsc
    from mpi4py import MPI
    from petsc4py import PETSc

    rng = np.random.default_rng(seed)
    for group in sim.groups:
        if group.system is None or not set(group.physics) & set(instances):
            continue
        system, maps = group.system, group.system.entity_maps or None
        residuals = [fem.form(F, entity_maps=maps) for F in system.residuals]

        def assemble(residuals: list = residuals) -> list[PETSc.Vec]:
            vectors = [fem_petsc.assemble_vector(F) for F in residuals]
            for vector in vectors:
                vector.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
            return vectors

        saved = [u.x.array.copy() for u in system.unknowns]
        directions = []
        for u in system.unknowns:
            d = fem.Function(u.function_space)
            index_map = u.function_space.dofmap.index_map
            owned = index_map.size_local * u.function_space.dofmap.index_map_bs
            scale = u.function_space.mesh.comm.allreduce(
                float(np.abs(u.x.array[:owned]).max(initial=0.0)), op=MPI.MAX
            )
            d.x.array[:owned] = rng.uniform(-1.0, 1.0, owned) * (scale or 1.0)
            d.x.scatter_forward()
            directions.append(d)
            if nudge:
                u.x.array[:owned] += nudge * (scale or 1.0) * rng.uniform(0.5, 1.0, owned)
                u.x.scatter_forward()
        try:
            state = [u.x.array.copy() for u in system.unknowns]
            base = assemble()
            products = [vector.duplicate() for vector in base]
            for row, product in zip(system.jacobian, products, strict=True):
                product.set(0.0)
                for block, d in zip(row, directions, strict=True):
                    if block is not None:
                        matrix = fem_petsc.assemble_matrix(fem.form(block, entity_maps=maps))
                        matrix.assemble()
                        matrix.multAdd(d.x.petsc_vec, product, product)
                        matrix.destroy()
            shifted = []
            for sign in (1.0, -1.0):
                for u, d, values in zip(system.unknowns, directions, state, strict=True):
                    u.x.array[:] = values + sign * step * d.x.array
                shifted.append(assemble())
        finally:
            for u, values in zip(system.unknowns, saved, strict=True):
                u.x.array[:] = values
        for i, field_ in enumerate(group.unknowns):
            difference = shifted[0][i] - shifted[1][i]
            difference.scale(1.0 / (2 * step))
            scale = max(difference.norm(), products[i].norm())
            error = (difference - products[i]).norm() / scale if scale > 0 else 0.0
            yield group.name, field_.spec.name, base[i].norm(), products[i].norm(), error


@contextlib.contextmanager
def inside_a_step(sim: Any) -> Iterator[str]:
    """With internal variables, one more step solved and not committed for the duration (then
    rolled back): the state a Newton solve of a step sees, with its return mapping active.
    After a committed step a plastic material sits exactly on its yield surface, where the
    stress has a kink and finite differences straddle it. Yields where the check runs."""
    if not sim.store.internals():
        yield ""
        return
    scheme = sim.groups[0].scheme
    dt = scheme.last_dt or sim.case.time.dt or 1.0
    report = sim.step(scheme.time, dt)
    try:
        yield f" inside one more step (t = {scheme.time:g} s)" if report.converged else ""
    finally:
        if report.converged:
            sim.rollback()


def assert_jacobian(cls: type[Physics], sim: Any, instances: list[str], rtol: float) -> str:
    """Check J d against finite differences at the current state (with internal variables:
    inside one more step, see :func:`inside_a_step`); where that fails, again at a state nudged
    off exact values (a kink such as max(c, 0) at c = 0 exactly has no derivative there, and
    UFL picks one side); a missing term fails both."""
    with inside_a_step(sim) as inside:
        return _assert_jacobian(cls, sim, instances, rtol) + inside


def _assert_jacobian(cls: type[Physics], sim: Any, instances: list[str], rtol: float) -> str:
    rows = list(jacobian_products(sim, instances))
    if not rows:
        return "nothing solved (derived fields only)"
    where = ""
    if max(row[4] for row in rows) > rtol:
        nudged = list(jacobian_products(sim, instances, nudge=1e-4))
        if all(math.isfinite(row[4]) for row in nudged):
            rows, where = nudged, " at a state nudged off exact values"
    group, name, _, _, error = max(rows, key=lambda row: row[4])
    owner = sim.store[name].provider
    wrong = f"Jacobian of '{owner}' is wrong"
    if owner not in instances:  # the checked plug-in may add terms to another's rows
        wrong = f"Jacobian is wrong in the rows of '{owner}', coupled with '{cls.name}'"
    require(
        error <= rtol,
        f"{wrong}: in group '{group}', the rows of field '{name}' give |J d - FD| / max(|FD|, "
        f"|J d|) = {error:.3g} (tolerance {rtol:g}) against central finite differences of the "
        f"residual; {_HIDDEN_DEPENDENCE}",
    )
    return f"J d matches finite differences to {error:.1e}{where} over {len(rows)} field block(s)"
