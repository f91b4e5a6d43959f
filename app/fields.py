"""The field store: one place that owns every field's function space and values.

Each field gets its own function space (sharing a space object between fields lets a Dirichlet
condition on one leak into another's block). Solved fields keep the history the time scheme
needs; derived fields are refreshed from their plug-in's UFL expression when someone reads them.
Consumers only ever see the store's functions, so a plug-in never knows who provides a field.

A derived field's values cost memory and an interpolation per refresh, and most of them are read
by nobody in a given run (a stress tensor of a run that writes no field file): its function is a
:class:`DeferredFunction`, a placeholder in UFL whose values are allocated the first time anything
uses them (a form or expression compiled with it, a field file, a probe, its refresh).
A field restricted to a region lives on the region's submesh (see :mod:`app.domains`).

The store is also the one registry of internal variables (:class:`~app.contracts.
InternalVariable`): each is a field whose function is the value after the latest solve and whose
history holds the values at the ends of the last accepted steps (newest first). Its group
evaluates the update after each solve (:meth:`Field.advance`), shifts the history when a step is
accepted and restores both when a step is rejected; :meth:`FieldStore.internal_state` is what a
checkpoint saves of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import basix.ufl
import numpy as np
import ufl
from dolfinx import fem, la

from app.contracts import FieldSpec, InternalVariable
from app.declarations import FIX as DECLARATION_FIX
from app.domains import Domains, Evaluation
from app.errors import CaseError
from app.field_state import SolvedFields
from app.pointwise import cell_state, is_pointwise, quadrature_space, restore_cell_state


class DeferredFunction(fem.Function):
    """A function whose values are allocated on first use.

    It is a UFL coefficient of its space from the start (forms and expressions may name it, and
    identity checks find it), but its degree-of-freedom vector exists only once something
    reaches for the values: ``x``, DOLFINx's C++ object (compiling a form or an expression with
    it, interpolating into it, writing it) or ``dtype``. Until then it holds no memory beyond
    its space; once allocated it is an ordinary function, zero until assigned.
    """

    def __init__(self, space: fem.FunctionSpace, name: str):
        ufl.Coefficient.__init__(self, space.ufl_function_space())
        self._V = space
        self._label = name
        self._values: fem.Function | None = None

    @property
    def allocated(self) -> bool:
        """Whether the values exist (something has used them)."""
        return self._values is not None

    def _allocate(self) -> fem.Function:
        if self._values is None:
            self._values = fem.Function(self._V, name=self._label)
        return self._values

    @property
    def _cpp_object(self) -> Any:
        return self._allocate()._cpp_object

    @property
    def _x(self) -> la.Vector:
        return self._allocate().x

    @property
    def name(self) -> str:
        return self._label

    @name.setter
    def name(self, name: str) -> None:
        self._label = name
        if self._values is not None:
            self._values.name = name


@dataclass(eq=False)  # a field is an identity: compared and hashed as the object it is
class Field:
    """One field: its contract, provider, space, current value and time history.

    Attributes:
        spec: The provider's contract for the field.
        provider: Instance name of the plug-in that provides it.
        function: Current value (for a solved field: the unknown of its group).
        history: Values at previous time levels, newest first (solved transient fields; the
            accepted values of an internal variable).
        evaluation: How a derived field is computed from the current state.
        internal: The declaration of an internal variable (None for other fields).
        update: How an internal variable's new value is computed (set when compiled).
        parts: For a field on a boundary's mesh, the regions of that mesh it lives on (None:
            all of it); elsewhere it is zero.
        columns: For the extension of a boundary's field (app/extensions.py), the columns it
            extends along (None for any other field).
    """

    spec: FieldSpec
    provider: str
    function: fem.Function
    history: list[fem.Function] = field(default_factory=list)
    evaluation: Evaluation | None = None
    internal: InternalVariable | None = None
    update: Evaluation | None = None
    parts: tuple[str, ...] | None = None
    columns: Any = None

    @property
    def space(self) -> fem.FunctionSpace:
        return self.function.function_space

    @property
    def is_global(self) -> bool:
        """A single value for the whole domain (a real element), not a spatial field."""
        return self.spec.space[0] == "Real"

    @property
    def pointwise(self) -> bool:
        """Values at quadrature points (no shape functions: shown as cell means)."""
        return is_pointwise(self.space)

    @property
    def unused(self) -> bool:
        """A derived field whose values nothing has used so far (none are allocated)."""
        return isinstance(self.function, DeferredFunction) and not self.function.allocated

    def refresh(self) -> None:
        """Re-evaluate a derived field from the current state."""
        if self.evaluation is not None:
            self.evaluation()

    def advance(self) -> None:
        """Evaluate an internal variable's update from the state just solved for."""
        if self.update is not None:
            self.update()

    def push_history(self) -> None:
        """Shift time levels after an accepted step: u_{n-1} <- u_n <- u."""
        levels = [self.function, *self.history]
        for older in range(len(levels) - 1, 0, -1):
            levels[older].x.array[:] = levels[older - 1].x.array

    def part_cells(self, domains: Domains) -> np.ndarray:
        """This rank's cells of the field's part of a boundary's mesh (``parts`` is set)."""
        data = domains.named(self.space.mesh)
        tags = [data.regions[name] for name in self.parts]
        return data.cell_tags.indices[np.isin(data.cell_tags.values, tags)]

    def held(self, domains: Domains) -> np.ndarray:
        """Per node (block) of this rank's array, whether a cell of the field's part of a
        boundary's mesh (``parts``) holds it, on any rank: every node for a field that lives
        everywhere. Nodes elsewhere carry no value of the field (zero, or an expression
        evaluated where it means nothing)."""
        space = self.space
        if self.parts is None:
            return np.ones(len(self.function.x.array) // space.dofmap.index_map_bs, dtype=bool)
        marks = fem.Function(space)
        blocks = marks.x.array.reshape(-1, space.dofmap.index_map_bs)
        blocks[space.dofmap.list[self.part_cells(domains)].ravel()] = 1.0
        marks.x.scatter_reverse(la.InsertMode.add)
        marks.x.scatter_forward()
        return blocks[:, 0] > 0

    def local_extreme(self, reduction: str, held: np.ndarray | None = None) -> float:
        """Max or min of this rank's owned nodal values (of the ``held`` nodes only); -inf or
        inf without any."""
        values = owned(self.function)
        if held is not None:
            values = values[held[: len(values)]]
        if reduction == "max":
            return float(values.max(initial=-np.inf))
        return float(values.min(initial=np.inf))


class FieldStore:
    """All fields of a simulation, by name.

    Besides the plug-ins' fields it holds the cellwise properties surrogates serve
    (:mod:`app.multiscale`); :attr:`served` maps each parameter value that names a surrogate to
    the field holding it.

    Args:
        domains: The parent mesh and its region submeshes.
    """

    def __init__(self, domains: Domains):
        self.domains = domains
        self.mesh = domains.parent
        self._fields: dict[str, Field] = {}
        self._traces: dict[tuple[str, str | None], Field] = {}  # (field, boundary) -> trace
        self._trace_sources: dict[Field, str] = {}  # trace -> the field it is projected from
        self._solved_state: SolvedFields | None = None
        # parameter values served cellwise by a surrogate -> the field that holds them
        self.served: dict[Any, str] = {}
        # laws outside UFL by the name parameters give them ({ rve = ... }: app/pointwise_law.py)
        self.point_laws: dict[str, Any] = {}

    def add(
        self,
        spec: FieldSpec,
        provider: str,
        history: int = 0,
        quadrature_degree: int | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> Field:
        """Create the field's space and function (and ``history`` previous time levels).

        Args:
            spec: The provider's contract.
            provider: The providing instance.
            history: Previous time levels to keep.
            quadrature_degree: The degree of a field at quadrature points (its group's).
            shape: The value shape, if not the one of the rank on this mesh.
        """
        family, degree = spec.space
        shape = spec.shape(self.mesh.geometry.dim) if shape is None else shape
        where = self.mesh if spec.region is None else self.domains.region(spec.region).mesh
        if family == "Real":  # one global value (or vector of values) for the whole domain
            element = basix.ufl.real_element(where.basix_cell(), shape)
            space = fem.functionspace(where, element)
        elif family == "Quadrature":
            space = quadrature_space(where, shape, quadrature_degree)
            spec = replace(spec, space=(family, quadrature_degree))
        else:
            try:
                space = fem.functionspace(where, (family, degree, shape))
            except (ValueError, RuntimeError) as exc:  # basix's words for a family or degree
                raise CaseError(
                    f"physics.{provider}",
                    f"'{provider}' declares field '{spec.name}' in the space {spec.space!r}, "
                    f"which DOLFINx cannot make on {where.basix_cell().name} cells: {exc}",
                    DECLARATION_FIX,
                ) from None
        if spec.derived:
            function = DeferredFunction(space, spec.name)
        else:
            function = fem.Function(space, name=spec.name)
        past = [fem.Function(space, name=f"{spec.name}_n{i + 1}") for i in range(history)]
        self._fields[spec.name] = Field(spec, provider, function, past)
        return self._fields[spec.name]

    def add_internal(
        self,
        variable: InternalVariable,
        provider: str,
        levels: int,
        quadrature_degree: int | None,
        region: str | None = None,
    ) -> Field:
        """Create an internal variable: its latest value and ``levels`` accepted values, all at
        its initial value."""
        spec = replace(variable.spec, region=region)
        internal = self.add(spec, provider, levels, quadrature_degree, variable.shape)
        internal.internal = variable
        for function in (internal.function, *internal.history):
            function.x.array[:] = variable.initial
        return internal

    def add_trace(
        self, name: str, boundary: str | None, history: int, source: str | None = None
    ) -> Field:
        """Create the trace of the field ``name`` on the mesh of ``boundary`` (app/traces.py),
        named ``<name>_<boundary>``: a discontinuous field of the source's degree living on the
        part of the boundary beside the region the source lives on, or for a global value one
        value on the boundary's mesh. ``boundary`` None is the parent mesh (``<name>_parent``:
        a global value of a boundary's mesh read on the parent or its regions).

        Args:
            name: The field read.
            boundary: The boundary whose mesh reads it (None: the parent's).
            history: Previous time levels to keep.
            source: The field the trace is projected from, if not ``name`` (a global value of
                one boundary reaches another through its copy on the parent).
        """
        projected = self._fields[source or name]
        family, degree = projected.spec.space
        spec = FieldSpec(
            f"{name}_{boundary or 'parent'}",
            projected.spec.rank,
            projected.spec.units,
            ("Real", 0) if family == "Real" else ("DG", degree),
            boundary,
            description=f"Trace of {name} on '{boundary or 'the parent mesh'}'",
        )
        trace = self.add(spec, projected.provider, history)
        if family != "Real" and projected.spec.region is not None:
            trace.parts = (projected.spec.region,)
        self._traces[name, boundary] = trace
        self._trace_sources[trace] = projected.spec.name
        return trace

    def add_extension(self, name: str, columns: Any, history: int) -> Field:
        """Create the extension of the boundary field ``name`` on the place of ``columns`` (a
        region, or None: the parent mesh), named ``<name>_<region>`` or ``<name>_parent``: a
        field of the source's space there (app/extensions.py)."""
        source = self._fields[name]
        place = columns.place
        spec = FieldSpec(
            f"{name}_{place or 'parent'}",
            source.spec.rank,
            source.spec.units,
            source.spec.space,
            place,
            description=f"Extension of {name} along the normal of '{columns.boundary}'",
        )
        extension = self.add(spec, source.provider, history)
        extension.columns = columns
        self._traces[name, place] = extension
        self._trace_sources[extension] = name
        return extension

    def extensions(self) -> dict[tuple[Any, str | None], Any]:
        """(source function, place) -> the function of its extension there."""
        return {
            (self._fields[self._trace_sources[trace]].function, place): trace.function
            for (_, place), trace in self._traces.items()
            if trace.columns is not None
        }

    def trace(self, name: str, boundary: str | None) -> Field:
        """The trace of a field on a boundary's mesh (None: a global value's on the parent).

        Raises:
            KeyError: The field has no trace there (nothing on the boundary reads it).
        """
        if (name, boundary) not in self._traces:
            raise KeyError(f"field '{name}' has no trace on '{boundary or 'the parent mesh'}'")
        return self._traces[name, boundary]

    def traces(self) -> list[tuple[str, str | None, Field]]:
        """(source, boundary, trace) of every trace, in the order they were created (a trace
        projected from another follows it); the source is the field projected."""
        return [
            (self._trace_sources[trace], boundary, trace)
            for (_, boundary), trace in self._traces.items()
        ]

    def internals(self) -> list[Field]:
        """The internal variables of the run."""
        return [field for field in self._fields.values() if field.internal is not None]

    def internal_state(self) -> dict[str, dict[str, np.ndarray]]:
        """What a checkpoint saves of the internal variables, per rank: for each, the original
        numbers of the rank's owned cells (``cells``) and per level (``latest``, ``accepted_1``,
        ...) one row of values per cell. :meth:`restore_internal_state` reads the rows of all
        ranks of any partition back."""
        state = {}
        for internal in self.internals():
            cells, latest = cell_state(internal.function)
            levels = {"latest": latest}
            for index, past in enumerate(internal.history, start=1):
                levels[f"accepted_{index}"] = cell_state(past)[1]
            state[internal.spec.name] = {"cells": cells, **levels}
        return state

    def restore_internal_state(self, state: dict[str, dict[str, np.ndarray]]) -> None:
        """Set the internal variables from :meth:`internal_state` (the rows of every rank,
        concatenated, or at least those of this rank's cells)."""
        for internal in self.internals():
            saved = state[internal.spec.name]
            functions = [internal.function, *internal.history]
            names = ["latest", *(f"accepted_{i}" for i in range(1, len(functions)))]
            for function, name in zip(functions, names, strict=True):
                restore_cell_state(function, saved["cells"], saved[name])

    def solved(self) -> list[Field]:
        """The fields a group solves for (what the derived fields are computed from)."""
        return [f for f in self._fields.values() if not f.spec.derived and f.internal is None]

    def state(self) -> dict[str, Any]:
        """The store in a checkpoint (app/checkpoint.py): every time level of the solved fields,
        by node position (app/field_state.py), and the internal variables
        (:meth:`internal_state`). Derived fields follow from these."""
        if self._solved_state is None:
            self._solved_state = SolvedFields(self.solved())
        return {"solved": self._solved_state.state(), "internal": self.internal_state()}

    def restore(self, state: dict[str, Any]) -> None:
        if self._solved_state is None:
            self._solved_state = SolvedFields(self.solved())
        self._solved_state.restore(state["solved"])
        try:
            self.restore_internal_state(state["internal"])
        except (KeyError, ValueError) as exc:
            raise CaseError(
                "--restart",
                f"the checkpoint's internal variables do not fit this run ({exc})",
                "restart with the case and mesh the checkpoint was written with",
            ) from None

    def __getitem__(self, name: str) -> Field:
        return self._fields[name]

    def __contains__(self, name: str) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[Field]:
        return iter(self._fields.values())

    def names(self) -> list[str]:
        return list(self._fields)


def owned_size(space: fem.FunctionSpace) -> int:
    """Entries of a function's array this rank owns (the rest are ghosts)."""
    return space.dofmap.index_map.size_local * space.dofmap.index_map_bs


def owned(function: fem.Function) -> np.ndarray:
    """The owned entries of a function's array (a view)."""
    return function.x.array[: owned_size(function.function_space)]


def assign(target: fem.Function, value: Any, domains: Domains) -> None:
    """Set a function from a number or a UFL expression (evaluated at the space's nodes, on
    whichever domain the expression and the function live)."""
    if isinstance(value, int | float | fem.Constant):
        # A constant needs no expression compiled and evaluated cell by cell.
        constant = value.value if isinstance(value, fem.Constant) else value
        block = target.x.array.reshape(-1, target.function_space.dofmap.index_map_bs)
        block[:] = constant
        return
    Evaluation(value, target, domains)()
