"""Field contracts: what a plug-in provides or requires (:class:`FieldSpec`) and the state a
material remembers between steps (:class:`InternalVariable`). Plug-ins import them from
:mod:`app.contracts`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Rank = Literal["scalar", "vector", "tensor"]

#: The space of a field stored at the quadrature points of its group's forms (``FieldSpec(space=
#: QUADRATURE)``): a derived field that reads internal variables. The degree is the group's.
QUADRATURE = ("Quadrature", 0)


@dataclass(frozen=True)
class FieldSpec:
    """A field a plug-in provides or requires.

    Attributes:
        name: Global field name, shared by provider and consumers ("temperature").
        rank: "scalar", "vector" (gdim components) or "tensor" (gdim x gdim). A requirement
            may accept several, e.g. ``("scalar", "tensor")`` for an eigenstrain that is
            isotropic or not; the consumer tells them apart by ``ctx.field(name).ufl_shape``.
        units: pint unit string ("K", "W/m^3"); consumers must ask for a compatible unit.
        space: Finite element (family, degree) the provider solves or stores the field in;
            :data:`QUADRATURE` for values at the quadrature points of the provider's group.
        region: Named cell region the field lives on (None: the whole domain), or a named
            exterior boundary for a surface field (integrate it with ``ctx.ds(region)``).
        derived: Computed from other fields by :meth:`Physics.derived` rather than solved for.
        optional: For requirements only: the plug-in runs without a provider (e.g. a heat
            source nobody provides is zero).
        description: One line for ``scalebridge modules`` and ``check``.
        bounds: The range (lower, upper; None: unbounded) a solved field's values must stay
            in, e.g. (0, 1) for a degree of cure: a step whose solution leaves it fails like a
            diverged solve (an adaptive run retries it shorter). BDF2 extrapolates from two
            levels and can overshoot a bound its rate law respects.
        at_bounds: What reaching a bound does: "fail" only fails the steps that leave it;
            "stop" also ends the run as an event, located like one, once the field's extreme
            comes within 1e-4 of its initial distance from the bound (app/bound_stops.py):
            for a quantity whose equations lose their meaning there, such as a salt that runs
            out (PyBaMM's "Zero electrolyte concentration cut-off").
    """

    name: str
    rank: Rank | tuple[Rank, ...]
    units: str
    space: tuple[str, int] = ("Lagrange", 1)
    region: str | None = None
    derived: bool = False
    optional: bool = False
    description: str = ""
    bounds: tuple[float | None, float | None] = (None, None)
    at_bounds: Literal["fail", "stop"] = "fail"

    @property
    def ranks(self) -> tuple[Rank, ...]:
        """The ranks the spec accepts (a provided field has one)."""
        return self.rank if isinstance(self.rank, tuple) else (self.rank,)

    def shape(self, gdim: int) -> tuple[int, ...]:
        """The value shape of the field on a mesh of geometric dimension ``gdim``."""
        return {"scalar": (), "vector": (gdim,), "tensor": (gdim, gdim)}[self.rank]


@dataclass(frozen=True)
class InternalVariable:
    """State a material remembers from one time step to the next: a plastic strain, the strain of
    a Maxwell branch, a stress built up at an earlier stiffness.

    A plug-in declares it in :attr:`Physics.internal_variables` and gives its new value in
    :meth:`Physics.update`, as UFL of the current unknowns and of the values at the end of the
    last accepted step (``ctx.previous(name)``), which its residual reads too. The framework
    stores it, at each quadrature point of the group's forms (``at="quadrature"``) or once per
    cell (``at="cell"``), evaluates the update after every solve and makes it the previous value
    only when the step is accepted: a rejected or retried step leaves it untouched. It is a
    field of the case (``ctx.field(name)`` is the latest value, for derived fields and
    quantities; other plug-ins may require it), written to the field files as cell means.

    Attributes:
        name: Field name, unique among the case's fields.
        units: pint unit string.
        shape: Value shape: ``()`` a scalar, ``(3, 3)`` a tensor with the out-of-plane
            components a 2D formulation needs, ``(n,)`` n values.
        at: "quadrature" (at the quadrature points of the group's forms) or "cell" (one value
            per cell, at its midpoint).
        initial: Value of every component before the first step.
        description: One line for ``scalebridge modules`` and ``check``.
    """

    name: str
    units: str
    shape: tuple[int, ...] = ()
    at: Literal["quadrature", "cell"] = "quadrature"
    initial: float = 0.0
    description: str = ""

    @property
    def rank(self) -> Rank:
        return ("scalar", "vector", "tensor")[len(self.shape)]

    @property
    def spec(self) -> FieldSpec:
        """The variable as a field others may require."""
        space = QUADRATURE if self.at == "quadrature" else ("DG", 0)
        return FieldSpec(self.name, self.rank, self.units, space, description=self.description)
