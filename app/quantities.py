"""Scalar outputs: integrals, field extremes and reactions, evaluated in parallel.

A reaction is the residual of a field's equations summed over the degrees of freedom of a
boundary (or a point or edge set): what a Dirichlet condition supplies to the domain (a support
force, the heat entering through a fixed temperature). It is exact for the discrete solution, so
balances close to round-off, which a flux integral of the gradient does not. Like every quantity
of a row it is the value at the row's time: the group gives the residual of its rows at the
current state (:meth:`app.groups.Group.residuals_now`: a BDF step's residual, read before the
history shifts, or the semi-discrete rows with the rates at this instant).

The sum of the residual over a set of dofs is the residual form tested with the indicator of
those dofs (1 there, 0 elsewhere), a scalar form like the integral quantities, integrated
over the cells that hold those dofs only (app/reaction_support.py: the others add zeros). Both
are evaluated by :class:`app.affine.AffineScalar`: a quantity affine in the fields (a heat flow, a
stored energy, a linear problem's reaction) becomes dot products with vectors assembled once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.affine import AffineScalar
from app.context import unknown_fixable
from app.contracts import Physics, Quantity
from app.domains import Evaluation
from app.errors import CaseError
from app.fields import FieldStore, owned, owned_size
from app.magnitudes import magnitude, magnitude_form
from app.meshing import MeshData
from app.output import column
from app.reaction_support import Support


class Quantities:
    """The compiled quantities of a simulation, by CSV column.

    Args:
        columns: Quantity per column.
        store: All fields.
        residuals_now: The residual form of each named solved field's row at the current state
            and time, with its kind ("step" or "rate"; see :meth:`Group.residuals_now`).
        residual_forms: The step residual (UFL) of each solved field: the terms whose size
            a reaction's round-off is judged against (:meth:`scales`).
        mesh_data: The mesh with its named boundaries.
        static: Functions that never change during the run.
        stored: Evaluate affine quantities from stored vectors (``[solver] stored_products``).
    """

    def __init__(
        self,
        columns: Mapping[str, Quantity],
        store: FieldStore,
        residuals_now: Callable[[set[str]], Mapping[str, tuple[str, Any]]],
        residual_forms: Mapping[str, Any],
        mesh_data: MeshData,
        static: set[Any],
        stored: bool = True,
    ):
        self.columns = dict(columns)
        self._read: dict[tuple[str, ...] | None, set[Any]] = {}  # see coefficients
        self._store = store
        self._residuals_now = residuals_now
        self._comm = mesh_data.mesh.comm
        self._static, self._stored = static, stored
        # An integrand that is zero by construction (UFL drops it) has no form: its value is 0.
        self._integrals = {
            name: self._affine(q.form)
            for name, q in self.columns.items()
            if q.reduction == "integral" and not q.form.empty()
        }
        # The denominators of ratios (a region's measure for a mean): never empty.
        self._denominators = {
            name: self._affine(q.per) for name, q in self.columns.items() if q.per is not None
        }
        #: Ratios whose latest value was 0/0: NaN by design, not a failure (see evaluate).
        self.undefined: set[str] = set()
        self._residual_forms = dict(residual_forms)
        self._scales: dict[str, Callable[[], float]] | None = None
        # A degree of freedom on two boundaries (a corner) counts for the first one only, so the
        # reactions of a field add up to its total residual.
        self._supports: dict[str, Support] = {}
        claimed: dict[tuple[str, int | None], np.ndarray] = {}
        for name, q in self.columns.items():
            if q.reduction == "reaction":
                space = store[q.field].space
                dofs = _boundary_dofs(space, store, q.boundary, q.component)
                taken = claimed.get((q.field, q.component), np.empty(0, dtype=dofs.dtype))
                self._supports[name] = Support(_indicator(space, np.setdiff1d(dofs, taken)))
                claimed[(q.field, q.component)] = np.union1d(taken, dofs)
        self._reactions: dict[tuple[str, str], AffineScalar] = {}  # by (column, kind)
        # The extremes of a field on part of a boundary's mesh (an electrode's overpotential)
        # are those of its own nodes: elsewhere its expression means nothing.
        self._held = {
            name: store[q.field].held(store.domains)
            for name, q in self.columns.items()
            if q.reduction in ("max", "min") and store[q.field].parts is not None
        }

    def _affine(self, form: ufl.Form) -> AffineScalar:
        maps = self._store.domains.entity_maps
        return AffineScalar(form, self._static, maps, self._comm, self._stored)

    def reset(self) -> None:
        """Evaluate as a fresh build would (another run of the same simulation)."""
        for scalar in (*self._integrals.values(), *self._denominators.values()):
            scalar.restart()
        for scalar in self._reactions.values():
            scalar.restart()

    def coefficients(self, names: list[str] | None = None) -> set[Any]:
        """Functions the quantities (all, or the named ones) read (so derived fields among them
        are kept current); found once per list of names (events ask after every step)."""
        key = tuple(names) if names else None
        if key not in self._read:
            self._read[key] = self._coefficients(names)
        return self._read[key]

    def _coefficients(self, names: list[str] | None) -> set[Any]:
        found = set()
        for quantity in (self.columns[n] for n in names) if names else self.columns.values():
            for form in (quantity.form, quantity.per):
                if form is not None:
                    found.update(form.coefficients())
            if quantity.field is not None:
                found.add(self._store[quantity.field].function)
        return found

    def evaluate(self, names: list[str] | None = None) -> dict[str, float]:
        """The quantities (all, or the named ones) at the current state: this rank's parts of
        all of them first, then one reduction over the ranks for the sums and one for the
        extremes (one per quantity cost more than the quantities themselves: 48 collectives a
        row for a DFN)."""
        names = list(self.columns if names is None else names)
        reacting = {self.columns[n].field for n in names if self.columns[n].reduction == "reaction"}
        residuals = self._residuals_now(reacting) if reacting else {}
        sums: dict[tuple[str, str], float] = {}  # (name, part): this rank's part of a sum
        largest: dict[str, float] = {}  # this rank's max (of the negated values, for a min)
        for name in names:
            quantity = self.columns[name]
            if quantity.reduction == "integral":
                form = self._integrals.get(name)
                sums[name, "value"] = form.local() if form is not None else 0.0
                if name in self._denominators:
                    sums[name, "per"] = self._denominators[name].local()
            elif quantity.reduction == "reaction":
                sums[name, "value"] = self._reaction(name, *residuals[quantity.field])
            else:
                field = self._store[quantity.field]
                local = field.local_extreme(quantity.reduction, self._held.get(name))
                largest[name] = local if quantity.reduction == "max" else -local
        total = dict(zip(sums, self._reduce(list(sums.values()), MPI.SUM), strict=True))
        maxima = dict(zip(largest, self._reduce(list(largest.values()), MPI.MAX), strict=True))
        values = {}
        for name in names:
            quantity = self.columns[name]
            if quantity.reduction == "integral":
                values[name] = total[name, "value"]
                if name in self._denominators:
                    denominator = total[name, "per"]
                    # 0/0 before a field is solved for (a mean strain at t = 0): undefined
                    values[name] = values[name] / denominator if denominator else math.nan
                    (self.undefined.add if not denominator else self.undefined.discard)(name)
            elif quantity.reduction == "reaction":
                values[name] = quantity.scale * total[name, "value"]
            else:
                maximum = maxima[name]
                values[name] = maximum if quantity.reduction == "max" else -maximum
        return values

    def _reduce(self, local: list[float], op: Any) -> list[float]:
        """Each entry reduced over the ranks, in one collective (none on one rank)."""
        if self._comm.size == 1 or not local:
            return local
        reduced = np.array(local, dtype=float)
        self._comm.Allreduce(MPI.IN_PLACE, reduced, op=op)
        return reduced.tolist()

    def _reaction(self, name: str, kind: str, residual: ufl.Form) -> float:
        """This rank's part of the residual summed over the quantity's dofs: tested with
        their indicator."""
        if (name, kind) not in self._reactions:
            support = self._supports[name]
            tested = ufl.replace(residual, {residual.arguments()[0]: support.indicator})
            self._reactions[name, kind] = self._affine(support.restrict(tested))
        return self._reactions[name, kind].local()

    def _integral(self, form: fem.Form) -> float:
        return float(self._comm.allreduce(fem.assemble_scalar(form), op=MPI.SUM))

    def scales(self) -> dict[str, float]:
        """The magnitude of the terms each quantity is made of, at the current state: the scale
        its round-off is relative to (:mod:`app.magnitudes`). A reaction's terms are those of
        its residual tested with the indicator of its degrees of freedom; an extreme's, those of
        its field (a derived field's expression); a ratio's, its numerator's over its
        denominator. Compiles its forms on first use."""
        if self._scales is None:
            self._scales = {name: self._scale_of(name, q) for name, q in self.columns.items()}
        return {name: scale() for name, scale in self._scales.items()}

    def _scale_of(self, name: str, quantity: Quantity) -> Callable[[], float]:
        maps = self._store.domains.entity_maps
        if quantity.reduction in ("max", "min"):
            field = self._store[quantity.field]
            if field.evaluation is None:  # a solved field: its own values
                return lambda: _largest(field.function)
            bound = fem.Function(field.space)
            expression = magnitude(field.evaluation.expression)
            evaluation = Evaluation(expression, bound, self._store.domains)

            def derived_scale() -> float:
                evaluation()
                return _largest(bound)

            return derived_scale
        if quantity.reduction == "reaction":
            residual = self._residual_forms[quantity.field]
            indicator = self._supports[name].indicator
            form = ufl.replace(residual, {residual.arguments()[0]: indicator})
        elif quantity.form.empty():
            return lambda: 0.0
        else:
            form = quantity.form
        compiled = fem.form(magnitude_form(form), entity_maps=maps)
        denominator = self._denominators.get(name)
        return lambda: (
            abs(quantity.scale)
            * self._integral(compiled)
            / (abs(denominator.value()) if denominator is not None else 1.0)
        )


def _indicator(space: fem.FunctionSpace, dofs: np.ndarray) -> fem.Function:
    """1 at the given owned dofs (and their ghost copies on other ranks), 0 elsewhere."""
    indicator = fem.Function(space)
    indicator.x.array[dofs] = 1.0
    indicator.x.scatter_forward()
    return indicator


def quantity_columns(
    tables: Mapping[str, Mapping[str, Quantity]],
    physics: Mapping[str, Physics],
    meshes: Mapping[str, MeshData],
) -> tuple[dict[str, Quantity], dict[str, str]]:
    """The plug-ins' quantities by CSV column (``<name>_<unit suffix>``), and the instance each
    column belongs to; a second instance of a plug-in prefixes its instance name. ``meshes``
    is the mesh each instance lives on (a boundary's own mesh names its end points).

    Raises:
        BadValue: A reaction on a name that is no boundary, point or edge set.
        CaseError: Two quantities would write one column.
    """
    columns: dict[str, Quantity] = {}
    owners: dict[str, str] = {}
    for instance, table in tables.items():
        named = "" if instance == physics[instance].name else f"{instance}_"
        for name, quantity in table.items():
            prefix = named if quantity.scope == "instance" else ""
            mesh_data = meshes[instance]
            if quantity.boundary is not None and quantity.boundary not in mesh_data.fixable:
                error = unknown_fixable(quantity.boundary, mesh_data)
                error.instance = instance
                raise error
            key = prefix + column(name, quantity.units)
            if key in columns:
                shared = quantity.scope == "case" or columns[key].scope == "case"
                raise CaseError(
                    f"physics.{instance}",
                    f"two quantities write the CSV column '{key}'"
                    + (f" (with physics.{owners[key]})" if owners[key] != instance else ""),
                    "a case has one of each quantity of the whole case (a cell's terminal)"
                    if shared
                    else "rename an instance or a species so that the column names differ",
                )
            columns[key] = quantity
            owners[key] = instance
    return columns, owners


def add_case_columns(
    columns: dict[str, Quantity], owners: dict[str, str], case_quantities: Mapping[str, Quantity]
) -> None:
    """Add the case's own quantities (``[output.quantities]``) after the plug-ins' columns.

    Raises:
        CaseError: A quantity would write a plug-in's column.
    """
    for name, quantity in case_quantities.items():
        key = column(name, quantity.units)
        if key in columns:
            raise CaseError(
                f"output.quantities.{name}",
                f"the column '{key}' is already a quantity of '{owners[key]}'",
                "rename the quantity",
            )
        columns[key] = quantity
        owners[key] = "output"


def _largest(function: fem.Function) -> float:
    """Largest absolute owned value over all ranks."""
    comm = function.function_space.mesh.comm
    return comm.allreduce(float(np.abs(owned(function)).max(initial=0.0)), op=MPI.MAX)


def _boundary_dofs(
    space: fem.FunctionSpace, store: FieldStore, boundary: str, component: int | None
) -> np.ndarray:
    """Owned degrees of freedom (indices into the unrolled array) of a boundary, point set or
    edge set: each counted once, by the rank that owns it."""
    target = space if component is None else space.sub(component)
    dofs = store.domains.locate(target, boundary)[0]
    block = space.dofmap.index_map_bs
    if component is None and block > 1:
        dofs = (dofs[:, None] * block + np.arange(block)).ravel()
    return dofs[dofs < owned_size(space)]
