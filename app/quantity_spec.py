"""The scalar outputs a plug-in declares (:class:`Quantity`), reached through
:mod:`app.contracts`; :mod:`app.quantities` evaluates them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import ufl


@dataclass(frozen=True)
class Quantity:
    """A scalar output written to quantities.csv (column ``<name>_<units>``).

    Build one with :meth:`integral`, :meth:`ratio`, :meth:`maximum`, :meth:`minimum` or
    :meth:`reaction`. A running time integral of one (a discharge capacity) is the case's to
    declare: ``time_integral`` in ``[output.quantities]`` (app/output_quantities.py).
    """

    units: str
    form: Any = None
    per: Any = None
    field: str | None = None
    reduction: Literal["integral", "max", "min", "reaction"] = "integral"
    description: str = ""
    boundary: str | None = None
    component: int | None = None
    scale: float = 1.0
    scope: Literal["instance", "case"] = "instance"

    @classmethod
    def integral(
        cls, form: ufl.Form, units: str, description: str = "", scope: str = "instance"
    ) -> Quantity:
        """The value of a scalar functional, e.g. a boundary heat flow.

        ``scope="case"``: the quantity describes the whole case (a cell's terminal voltage), so
        its column is its name alone, never prefixed by the instance name; two such quantities
        of one name in a case are refused.
        """
        return cls(units=units, form=form, description=description, scope=scope)

    @classmethod
    def ratio(cls, form: ufl.Form, per: ufl.Form, units: str, description: str = "") -> Quantity:
        """The quotient of two scalar functionals: a mean over a region (``per`` its measure),
        an apparent modulus (mean stress over mean strain)."""
        return cls(units=units, form=form, per=per, description=description)

    @classmethod
    def maximum(
        cls, field: str, units: str, description: str = "", scope: str = "instance"
    ) -> Quantity:
        """The largest nodal value of a scalar field (the value of a global one)."""
        return cls(units=units, field=field, reduction="max", description=description, scope=scope)

    @classmethod
    def minimum(cls, field: str, units: str, description: str = "") -> Quantity:
        """The smallest nodal value of a scalar field."""
        return cls(units=units, field=field, reduction="min", description=description)

    @classmethod
    def reaction(
        cls,
        field: str,
        boundary: str,
        units: str,
        description: str = "",
        component: int | None = None,
        scale: float = 1.0,
    ) -> Quantity:
        """What a Dirichlet boundary supplies to the domain, from the discrete residual.

        The residual of the field's equations (capacity terms included), summed over the
        boundary's degrees of freedom: the support force on a solid, the heat or current
        entering through a fixed-temperature or fixed-potential boundary. Unlike a flux
        integral of the gradient it is exact for the discrete solution, so balances close.
        Like every quantity it is the value at the row's time: after a BDF step the step's
        residual (the balance then closes with the BDF rate of the stored amount); under
        Crank-Nicolson and at the start, the residual with the rates at that instant (the
        balance closes by the trapezoidal rule, to O(dt^2)). ``scale=-1`` reports what leaves
        instead.
        """
        return cls(
            units=units,
            field=field,
            reduction="reaction",
            description=description,
            boundary=boundary,
            component=component,
            scale=scale,
        )
