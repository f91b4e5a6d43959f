"""Conformance kit: the checks every physics plug-in should pass, for use in its own tests.

::

    from app.testing import check_plugin

    def test_my_physics_conforms():
        check_plugin(MyPhysics, "cases/my_physics_demo.toml")   # or the type name "my_physics"

:func:`check_plugin` runs the checks below on a small case that uses the plug-in (a dict or a
TOML file); each is also a function of its own and raises ``AssertionError`` with a message that
names the plug-in, the field or block and what is wrong:

- :func:`check_schema_roundtrip`: the parameters validate, dump to TOML and validate again to the
  same values (run folders store the case that way), unknown keys are refused, units parse;
- :func:`check_provided_fields`: every provided field is produced with its declared rank (derived
  expressions and initial values have the declared shape), units parse, values stay finite;
- :func:`check_compiles`: residual and Jacobian compile and assemble to finite values on small
  built-in meshes of each dimension every plug-in of the case supports (``dimensions`` on each
  class, default 1, 2 and 3); a dimension the case's other plug-ins (or its mesh conditions)
  cannot be set up in is left out, with the reason in the report;
- :func:`check_jacobian`: the assembled group Jacobian times a random direction matches a central
  finite difference of the assembled residual;
- :func:`check_parallel`: the case gives the same quantities and field norms on 1 and 2 ranks,
  each value judged against the magnitude of the terms it is made of (a reaction that is zero
  by cancellation is round-off of its terms on either side); a failure names the plug-in the
  column belongs to, and ``exclude_columns`` leaves columns out.

A class that no entry point registers is made visible to the case loader for the duration of a
check (and to the MPI run by import path), so a test may check a plug-in it defines itself.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from app.conformance import (
    CaseLike,
    PluginLike,
    assert_jacobian,
    contract,
    dimensions,
    fields_summary,
    guard,
    in_dimension,
    instances_of,
    jacobian_products,
    plugin_class,
    read_case,
    registered,
    require,
    run_checked,
)
from app.conformance_parallel import compare, excluded, run_ranks, serial_side
from app.contracts import Parameters
from app.parameter_resolution import resolve
from app.parameters import parameter_scope

#: The checks :func:`check_plugin` runs, in this order.
CHECKS = ("schema", "fields", "jacobian", "compiles", "parallel")

__all__ = [
    "CHECKS",
    "Report",
    "check_compiles",
    "check_jacobian",
    "check_parallel",
    "check_plugin",
    "check_provided_fields",
    "check_schema_roundtrip",
    "plugin_class",
    "registered",
]


@dataclass
class Report:
    """What :func:`check_plugin` found: one line per check that passed."""

    plugin: str
    checks: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"plug-in '{self.plugin}' conforms:"]
        return "\n".join(lines + [f"  {name}: {text}" for name, text in self.checks.items()])


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------
def check_plugin(
    plugin: PluginLike,
    case: CaseLike,
    dims: Sequence[int] | None = None,
    ranks: Sequence[int] = (1, 2),
    jacobian_rtol: float = 1e-5,
    parallel_rtol: float = 1e-8,
    checks: Collection[str] = CHECKS,
    exclude_columns: Collection[str] = (),
) -> Report:
    """Run every check on ``case`` (which must use the plug-in); see the module docstring.

    Args:
        plugin: The plug-in class, or its type name when it is installed.
        case: A small case using the plug-in: a dict or a TOML file.
        dims: Mesh dimensions to compile on (default: those every plug-in of the case has a
            formulation for, less those the case cannot be set up in).
        ranks: Rank counts whose results must agree with one rank (``(1,)``: no MPI run).
        jacobian_rtol: Largest relative error of J d against finite differences.
        parallel_rtol: Largest relative difference between 1 and N ranks.
        checks: The checks to run, a subset of :data:`CHECKS` (the case is run for any of
            fields, jacobian and parallel, and its provided fields are checked then).
        exclude_columns: Columns the parallel check leaves out (``fnmatch`` patterns such as
            ``"reaction_*"``); each must match a column.

    Returns:
        One line per check.

    Raises:
        AssertionError: The first check that fails, naming the problem.
    """
    unknown = sorted(set(checks) - set(CHECKS))
    require(not unknown, f"unknown checks {unknown}; choose from {', '.join(CHECKS)}")
    cls, spec = plugin_class(plugin), read_case(case)
    instances, report = instances_of(cls, spec), Report(cls.name)
    if "schema" in checks:
        report.checks["schema"] = check_schema_roundtrip(cls, case)
    own = None
    if {"fields", "jacobian", "parallel"} & set(checks):
        run = run_checked(cls, spec, scales="parallel" in checks)
        own = run.sim.mesh_data.mesh.geometry.dim
        report.checks["fields"] = fields_summary(run.sim, instances)
    if "jacobian" in checks:
        report.checks["jacobian"] = assert_jacobian(cls, run.sim, instances, jacobian_rtol)
    if "compiles" in checks:
        report.checks["compiles"] = check_compiles(cls, case, dims, skip=own)
    if "parallel" in checks:
        serial = serial_side(run, instances)
        excluded(serial.values, exclude_columns)  # a pattern that matches nothing fails now
        parallel = [
            compare(
                cls, serial, run_ranks(cls, spec, n), n, parallel_rtol, instances, exclude_columns
            )
            for n in ranks
            if n > 1
        ]
        report.checks["parallel"] = "; ".join(parallel) if parallel else "not requested"
    return report


def check_schema_roundtrip(plugin: PluginLike, case: CaseLike) -> str:
    """Parameters of every instance in the case validate, dump to TOML and validate again to the
    same values; the case as a run folder stores it loads to the same parameters; unknown keys
    are refused; declared units parse; the schema renders for ``scalebridge modules``."""
    import tomli_w
    from pydantic import ValidationError

    from app.case import load_case, validate
    from app.errors import ScaleBridgeError
    from app.module_listing import parameter_lines
    from app.units import parse_units

    cls, spec = plugin_class(plugin), read_case(case)
    model, name = cls.Parameters, cls.name
    require(issubclass(model, Parameters), f"'{name}'.Parameters must derive from Parameters")
    require(model.model_config.get("extra") == "forbid", f"'{name}' must refuse unknown keys")
    for key in model.model_fields:
        units = model.units_of(key)
        if units is not None:
            guard(lambda units=units: parse_units(units), f"'{name}' parameter '{key}'")
    guard(model.model_json_schema, f"JSON schema of '{name}'")
    listed = "\n".join(guard(lambda: parameter_lines(model, ""), f"schema listing of '{name}'"))
    missing = [key for key in model.model_fields if f"\n{key} " not in f"\n{listed}"]
    require(not missing, f"`scalebridge modules` does not list {missing} of '{name}'")
    instances = instances_of(cls, spec)
    # the case's parameter set: expressions may use its names, as when the case loads
    library = resolve(spec.raw.get("parameters"), spec.base_dir)
    with parameter_scope(library):
        for instance in instances:
            where = f"physics.{instance}"
            table = {
                k: v
                for k, v in spec.raw["physics"][instance].items()
                if k not in ("type", "domain")
            }
            first = guard(lambda table=table, where=where: validate(model, table, where), where)
            dumped = first.model_dump(mode="json", exclude_none=True)
            text = guard(lambda dumped=dumped: tomli_w.dumps(dumped), f"TOML dump of {where}")
            again = guard(lambda text=text: model.model_validate(tomllib.loads(text)), where)
            redumped = again.model_dump(mode="json", exclude_none=True)
            changed = sorted(
                k for k in dumped.keys() | redumped.keys() if dumped.get(k) != redumped.get(k)
            )
            require(not changed, f"{where}: parameters {changed} change in a TOML round trip")
            specs = [contract(cls(p)) for p in (first, again)]
            require(specs[0] == specs[1], f"{where}: provides/requires change in a round trip")
            try:
                model.model_validate(table | {"not_a_parameter_of_this_plugin": 1})
            except ValidationError:
                pass
            else:
                raise AssertionError(f"{where}: an unknown key was accepted")
    with registered(cls):
        try:
            loaded = load_case(spec.raw, base_dir=spec.base_dir)
            stored = loaded.resolved()  # as a run folder keeps it; other plug-ins as written
            for other in set(spec.raw["physics"]) - set(instances):
                stored["physics"][other] = spec.raw["physics"][other]
            reloaded = load_case(stored, base_dir=spec.base_dir)
        except ScaleBridgeError as exc:
            raise AssertionError(f"the case or its stored copy does not load: {exc}") from exc
    for instance in instances:
        before, after = (
            c.physics[instance].params.model_dump(mode="json") for c in (loaded, reloaded)
        )
        require(before == after, f"physics.{instance}: the stored case reads back differently")
    return f"{len(model.model_fields)} parameters; {len(instances)} instance(s) round-trip"


def check_provided_fields(plugin: PluginLike, case: CaseLike) -> str:
    """Run the case; every provided field must exist with its declared rank, valid units and
    finite values (derived expressions and initial values are checked for their shape)."""
    cls, spec = plugin_class(plugin), read_case(case)
    return fields_summary(run_checked(cls, spec).sim, instances_of(cls, spec))


def check_compiles(
    plugin: PluginLike,
    case: CaseLike,
    dims: Sequence[int] | None = None,
    skip: int | None = None,
) -> str:
    """Compile the case on a small built-in mesh of each dimension (the case's regions and
    boundaries conditions are kept) and assemble residual and Jacobian once: all finite.

    Without ``dims``, the dimensions are those every plug-in of the case has a formulation for
    (their classes' ``dimensions``), less those where setting up the case fails for a reason
    that is not the checked plug-in's (another instance's parameters, such as mechanics'
    plane strain on a 3D mesh, or the case's mesh conditions): those are reported, not failed.
    Dimensions asked for explicitly must all work, and a failure names whose it is.
    ``skip`` leaves out a dimension already run (the case's own mesh).
    """
    from app.errors import CaseError
    from app.simulation import Simulation

    cls, spec = plugin_class(plugin), read_case(case)
    instances = instances_of(cls, spec)
    explicit = dims is not None
    wanted, limits = (list(dims), "") if explicit else dimensions(cls, spec)
    done, notes = [], [limits] if limits else []
    for dim in wanted:
        if dim == skip:
            notes.append(f"the case's own {dim}D mesh ran")
            continue
        try:
            with registered(cls):
                sim = Simulation.from_case(in_dimension(spec.raw, dim), base_dir=spec.base_dir)
            sim.build()
        except CaseError as exc:
            owner = _owner(exc.path, instances)
            require(
                owner is not None and not explicit,
                f"setting up the case on a {dim}D mesh failed at {exc}"
                + (f" (a limit of {owner}, not of '{cls.name}')" if owner else ""),
            )
            notes.append(f"{dim}D left out: {owner} cannot be set up there ({exc})")
            continue
        except Exception as exc:
            raise AssertionError(
                f"the case on a {dim}D mesh failed: {type(exc).__name__}: {exc}"
            ) from exc
        hint = f"; if '{cls.name}' does not support {dim}D, set `dimensions` on the class"
        guard(sim.compile, f"compiling '{cls.name}' on a {dim}D mesh", hint)
        for group, name, residual, product, _ in jacobian_products(sim, instances):
            require(
                math.isfinite(residual) and math.isfinite(product),
                f"{dim}D: the residual or Jacobian of '{name}' (group '{group}') is not finite",
            )
        done.append(dim)
    text = "compiles and assembles on " + (", ".join(f"{d}D" for d in done) or "no other mesh")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _owner(path: str, checked: Collection[str]) -> str | None:
    """Whose a case error in another dimension is: another instance ('physics.mechanics...'),
    the case's mesh conditions, or (None) the checked plug-in's own."""
    parts = path.split(".")
    if parts[0] == "physics" and len(parts) > 1 and parts[1] not in checked:
        return f"'{parts[1]}'"
    if parts[0] == "mesh":
        return "the case's [mesh] section"
    return None


def check_jacobian(plugin: PluginLike, case: CaseLike, rtol: float = 1e-5) -> str:
    """Run the case, then compare the group Jacobian J times a random direction d with the
    central difference (F(u + h d) - F(u - h d)) / 2h of the residual, row block by row block."""
    cls, spec = plugin_class(plugin), read_case(case)
    run = run_checked(cls, spec)
    return assert_jacobian(cls, run.sim, instances_of(cls, spec), rtol)


def check_parallel(
    plugin: PluginLike,
    case: CaseLike,
    ranks: int = 2,
    rtol: float = 1e-8,
    exclude_columns: Collection[str] = (),
) -> str:
    """Run the case on one rank (here) and on ``ranks`` ranks (under mpirun); quantities at every
    output time and the L2 norms of the plug-in's fields must agree to ``rtol``, relative to the
    larger of the two values and the magnitude of the terms the value is made of. Columns that
    match a pattern of ``exclude_columns`` (``"reaction_*"``) are left out."""
    cls, spec = plugin_class(plugin), read_case(case)
    instances = instances_of(cls, spec)
    serial = serial_side(run_checked(cls, spec, scales=True), instances)
    excluded(serial.values, exclude_columns)  # a pattern that matches nothing fails now
    parallel = run_ranks(cls, spec, ranks)
    return compare(cls, serial, parallel, ranks, rtol, instances, exclude_columns)
