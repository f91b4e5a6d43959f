"""Coupling between groups: one Newton solve per group, groups combined per time step.

Plug-ins named in one group are solved monolithically. Groups are combined by

- ``lie``: each group in turn over the whole step, reading the latest values of the others
  (first order in dt);
- ``strang``: the groups but the last over half a step, the last over the whole step, then the
  others over the second half in reverse order (second order in dt);
- ``fixed_point``: Gauss-Seidel sweeps over the groups within the step, repeated until the
  fields a group reads from a group solved after it stop changing; with Aitken or IQN-ILS
  acceleration. Converged, it reproduces the monolithic solution.

A group with ``subcycles = k`` takes k substeps per step. The case::

    [coupling]
    method = "fixed_point"
    groups = [{ name = "electric", physics = ["electrostatics"] },
              { name = "thermal", physics = ["heat"], subcycles = 4 }]
    iterations = { tolerance = 1e-10, acceleration = "iqn_ils" }
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import ufl
from mpi4py import MPI
from pydantic import Field, field_validator

from app.acceleration import accelerator
from app.contracts import Parameters, Physics
from app.errors import CaseError, SolverError, did_you_mean, listing, shown
from app.fields import FieldStore, owned, owned_size
from app.forms import FormRules
from app.groups import Group, blame
from app.meshing import MeshData
from app.parameter_constants import ParameterConstants
from app.registry import FieldGraph
from app.solve_system import SolveReport
from app.timeint import TimeScheme

log = logging.getLogger("scalebridge")


class GroupSpec(Parameters):
    """A set of plug-in instances solved together."""

    name: str = Field(description="Group name (messages, solver options prefix)")
    physics: list[str] = Field(description="Instance names under [physics]")
    subcycles: int = Field(1, ge=1, description="Substeps the group takes per time step")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not (name.isidentifier() and name.isascii()):
            raise ValueError(
                "group names are letters, digits and underscores (they prefix the group's "
                f"PETSc options), got {shown(name)}"
            )
        return name


class IterationSpec(Parameters):
    """Fixed-point iterations between groups within a time step."""

    max_iterations: int = Field(25, ge=1, description="Sweeps before the step counts as failed")
    tolerance: float = Field(1e-8, gt=0, description="Relative change of the coupling fields")
    acceleration: Literal["none", "aitken", "iqn_ils"] = Field(
        "aitken", description="Convergence acceleration"
    )
    relaxation: float = Field(
        1.0, gt=0, le=1, description="Relaxation factor (constant, or the first one)"
    )


class CouplingSpec(Parameters):
    """How groups are combined per time step (default: everything in one group)."""

    method: Literal["lie", "strang", "fixed_point"] = Field(
        "lie", description="Operator splitting or fixed-point iteration between groups"
    )
    groups: list[GroupSpec] = Field(
        default_factory=list, description="Groups in solve order (default: one group)"
    )
    iterations: IterationSpec = Field(
        default_factory=IterationSpec, description="Fixed-point settings"
    )


class Coupler:
    """Advances all groups through one time step.

    Args:
        groups: Groups in solve order.
        spec: The case's coupling section.
        lagged: For fixed-point iteration: the functions groups read from later groups.
        comm: Communicator (norms and accelerator reductions).
    """

    def __init__(self, groups: list[Group], spec: CouplingSpec, lagged: list, comm: MPI.Comm):
        self.groups, self.spec, self.lagged, self.comm = groups, spec, lagged, comm
        iterations = spec.iterations
        self._accelerator = accelerator(iterations.acceleration, comm, iterations.relaxation)
        self.iterations = 0  # fixed-point sweeps of the last step

    def step(self, start: float, dt: float) -> SolveReport:
        """Solve the step from ``start``; on failure the state is back at ``start``."""
        for group in self.groups:
            group.begin()
        method = self.spec.method if len(self.groups) > 1 else "lie"
        if method == "lie":
            report = self._sweep(start, dt)
        elif method == "strang":
            report = self._strang(start, dt)
        else:
            report = self._fixed_point(start, dt)
        if not report.converged:
            self.rollback()
        return report

    def commit(self) -> None:
        for group in self.groups:
            group.commit()

    def rollback(self) -> None:
        for group in self.groups:
            group.rewind()

    def restart(self) -> None:
        """After a jump in the forcing: multistep schemes start again with BDF1."""
        for group in self.groups:
            group.restart()

    def initialise(self, strict: bool = True) -> None:
        """Each group in solve order solves its fields without a time derivative, the others
        held at their current values.

        Args:
            strict: A failed solve is an error; otherwise the fields keep their values (the
                next step solves them with the others), with a warning.

        Raises:
            SolverError: A group's solve failed (strict).
        """
        for group in self.groups:
            report = group.initialise()
            if not report.converged and not strict:
                log.warning(
                    "the fields without a time derivative were not solved again at t = %.6g s "
                    "(%s); the next step solves them",
                    group.scheme.time,
                    report.reason,
                )
            elif not report.converged:
                fields = [f.spec.name for f in group.unknowns if f.spec.name not in group.transient]
                raise SolverError(
                    f"the fields without a time derivative ({', '.join(fields)}) could not be "
                    f"solved at t = {group.scheme.time:.6g} s consistently with the initial "
                    f"values of the others ({report.reason})"
                )

    def change(self) -> float:
        """The largest change of a solved field over the step, relative to its largest value."""
        local = np.array([c for group in self.groups for c in group.change()], dtype=float)
        changes = np.zeros_like(local)
        self.comm.Allreduce(local, changes, op=MPI.MAX)  # per field: over every rank's dofs
        delta, scale = changes.reshape(-1, 2).T
        relative = np.divide(delta, scale, out=delta.copy(), where=scale > 0)
        return float(relative.max(initial=0.0))

    def error(self, rtol: float, atol: float) -> float | None:
        """RMS of the scaled local truncation error of the step; None without an estimate."""
        total, count = 0.0, 0
        for group in self.groups:
            group_total, group_count = group.error(rtol, atol)
            total, count = total + group_total, count + group_count
        total = self.comm.allreduce(total, op=MPI.SUM)
        count = self.comm.allreduce(count, op=MPI.SUM)
        return float(np.sqrt(total / count)) if count else None

    def _sweep(self, start: float, dt: float, groups: list[Group] | None = None) -> SolveReport:
        total = SolveReport(True, 0, 0, "")
        for group in groups or self.groups:
            report = group.advance(start, dt)
            if not report.converged and len(self.groups) > 1:
                report = replace(report, reason=f"group '{group.name}': {report.reason}")
            total = total.then(report)
            if not report.converged:
                break
        return total

    def _strang(self, start: float, dt: float) -> SolveReport:
        half = dt / 2
        first, last = self.groups[:-1], self.groups[-1:]
        total = self._sweep(start, half, first)
        if total.converged:
            total = total.then(self._sweep(start, dt, last))
        if total.converged:
            total = total.then(self._sweep(start + half, half, list(reversed(first))))
        return total

    def _coupling_data(self) -> np.ndarray:
        parts = [owned(function) for function in self.lagged]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _set_coupling_data(self, values: np.ndarray) -> None:
        offset = 0
        for function in self.lagged:
            size = owned_size(function.function_space)
            owned(function)[:] = values[offset : offset + size]
            function.x.scatter_forward()
            offset += size

    def _fixed_point(self, start: float, dt: float) -> SolveReport:
        settings = self.spec.iterations
        self._accelerator.reset()
        x = self._coupling_data()
        total = SolveReport(True, 0, 0, "")
        change = np.inf
        for sweep in range(1, settings.max_iterations + 1):
            if sweep > 1:
                for group in self.groups:
                    group.rewind(keep_iterate=True)
            report = self._sweep(start, dt)
            total = total.then(report)
            self.iterations = sweep
            if not report.converged:
                return total
            image = self._coupling_data()
            difference = np.sqrt(self._accelerator.dot(image - x, image - x))
            size = np.sqrt(self._accelerator.dot(image, image))
            change = difference / size if size > 0 else difference
            if change <= settings.tolerance:
                return total
            x = self._accelerator.update(x, image)
            self._set_coupling_data(x)
        return SolveReport(
            False,
            total.iterations,
            total.linear_iterations,
            f"fixed-point iterations between groups did not converge in "
            f"{settings.max_iterations} sweeps at t = {start + dt:.6g} s (relative change "
            f"{change:.2e} > tolerance {settings.tolerance:g})",
        )


def build_groups(
    spec: CouplingSpec,
    physics: Mapping[str, Physics],
    graph: FieldGraph,
    store: FieldStore,
    make_scheme: Callable[[], TimeScheme],
    mesh_data: MeshData,
    static: set[Any],
    rules: FormRules,
    parameters: ParameterConstants | None = None,
) -> list[Group]:
    """The groups of the case in solve order, each with its own time scheme (``parameters``:
    the parameter-set constants every context shares).

    Raises:
        CaseError: A group names an unknown instance, or an instance is in no or two groups.
    """
    if not spec.groups:
        groups = [
            Group(
                "main",
                physics,
                graph,
                store,
                make_scheme(),
                mesh_data,
                static,
                rules,
                1,
                parameters,
            )
        ]
    else:
        _check_membership(spec, physics)
        if spec.method == "strang" and make_scheme().order > 1:
            raise CaseError(
                "time.scheme",
                "Strang splitting needs a one-step scheme: a multistep history spans split "
                "steps whose frozen partner fields differ, which costs the second order",
                'use scheme = "cn" (second order) or "bdf1"',
            )
        groups = [
            Group(
                group.name,
                {name: physics[name] for name in group.physics},
                graph,
                store,
                make_scheme(),
                mesh_data,
                static,
                rules,
                group.subcycles,
                parameters,
            )
            for group in spec.groups
        ]
    _inline_derived_fields(groups, store)
    for group in groups:
        group.assemble()
    return groups


def _inline_derived_fields(groups: list[Group], store: FieldStore) -> None:
    """Hand every consumer of a derived field the provider's expression itself.

    Inside a group the coupling then enters the Newton system; across groups it reads the
    provider's latest unknowns; nothing is interpolated, so splitting only changes when values
    are read. A derived field that reads derived fields (of its own instance or of others, a
    chain of any depth) is rebuilt after them, from their final expressions, so no expression
    reads a stored value that is refreshed only at output times. Derived fields that read each
    other are refused.
    """
    contexts = {instance: ctx for group in groups for instance, ctx in group.contexts.items()}
    plugins = {instance: group.physics[instance] for group in groups for instance in group.physics}
    first = {name: expression for group in groups for name, expression in group.derived.items()}
    stored = {store[name].function: name for name in first}
    reads = {
        name: {
            stored[function]
            for function in ufl.algorithms.extract_coefficients(expression)
            if function in stored
        }
        for name, expression in first.items()
    }
    final: dict[str, Any] = {}
    for name in _dependency_order(reads, store):
        provider = store[name].provider
        if not reads[name]:
            final[name] = first[name]
            continue
        for dependency in sorted(reads[name]):
            contexts[provider].inline(dependency, final[dependency])
        with blame(provider):
            final[name] = plugins[provider].derived(contexts[provider])[name]
    for group in groups:
        group.derived.update({name: final[name] for name in group.derived})
    for instance, ctx in contexts.items():
        for name, expression in final.items():
            if name in ctx.readable and store[name].provider != instance:
                ctx.inline(name, expression)


def _dependency_order(reads: Mapping[str, set[str]], store: FieldStore) -> list[str]:
    """Derived fields ordered so that each comes after the derived fields it reads.

    Raises:
        CaseError: Derived fields read each other in a cycle (named with their providers).
    """
    order: list[str] = []
    path: list[str] = []  # the chain being followed, to name a cycle

    def visit(name: str) -> None:
        if name in order:
            return
        if name in path:
            cycle = [*path[path.index(name) :], name]
            chain = " -> ".join(f"'{n}' (physics.{store[n].provider})" for n in cycle)
            raise CaseError(
                f"physics.{store[name].provider}",
                f"derived fields read each other in a cycle: {chain}",
                "compute one of them from solved fields (or make it a solved field)",
            )
        path.append(name)
        for dependency in sorted(reads[name]):
            visit(dependency)
        path.pop()
        order.append(name)

    for name in reads:
        visit(name)
    return order


def _check_membership(spec: CouplingSpec, physics: Mapping[str, Physics]) -> None:
    seen: dict[str, str] = {}
    for index, group in enumerate(spec.groups):
        for position, instance in enumerate(group.physics):
            where = f"coupling.groups[{index}].physics[{position}]"
            if instance not in physics:
                raise CaseError(
                    where,
                    f"unknown physics instance '{instance}'{did_you_mean(instance, physics)}; "
                    f"instances: {listing(physics)}",
                )
            if instance in seen:
                raise CaseError(where, f"'{instance}' is already in group '{seen[instance]}'")
            seen[instance] = group.name
    missing = [name for name in physics if name not in seen]
    if missing:
        raise CaseError(
            "coupling.groups",
            f"{listing(missing)} {'is' if len(missing) == 1 else 'are'} in no group",
            "every physics instance belongs to exactly one group",
        )


def link(groups: list[Group], graph: FieldGraph, store: FieldStore) -> list:
    """The coupling data of fixed-point iteration: the unknowns of later groups that a group
    reads, directly or through a derived field's expression."""
    position = {instance: index for index, g in enumerate(groups) for instance in g.physics}
    owner = {field.function: index for index, g in enumerate(groups) for field in g.unknowns}
    lagged = []
    for name, users in graph.consumers.items():
        field = store[name]
        read = {field.function}
        if field.spec.derived:  # what the expression reads
            expression = groups[position[field.provider]].derived[name]
            read = set(ufl.algorithms.extract_coefficients(expression))
        for function in read:
            readers = [position[instance] for instance, _ in users]
            later = function in owner and any(owner[function] > reader for reader in readers)
            if later and function not in lagged:
                lagged.append(function)
    return lagged
