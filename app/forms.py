"""How the framework finishes the forms plug-ins return: one quadrature, no zero terms.

Left to itself, UFL picks a quadrature degree per integral from an estimate of the integrand's
polynomial degree. That estimate differs between a residual and its Jacobian (a source term
``0*v`` raises the residual's, a derivative lowers the Jacobian's), so the discrete equations
a Newton or linear solve satisfies are not those the residual (and the reactions read from it)
evaluates: balances stop closing. It also adds two degrees per exp, sqrt or non-integer power,
so forms with kinetics or concentration-dependent properties reach degrees of 15-30 at a large
cost and no gain. So every form a group assembles (residual, Jacobian, the reactions and the
integral quantities of its plug-ins) gets one degree, chosen from the fields and the geometry:

    q = 2 p + g + e

* ``2 p``: the mass matrix of the group's highest field degree p, exact on affine cells (a
  stiffness needs only 2 p - 2);
* ``g``: the degree det J adds on curved cells: d (k - 1) on simplices of geometry degree k,
  d k - 1 per variable on quadrilaterals and hexahedra (0 on affine simplices);
* ``e = 2`` when the equations are nonlinear in the unknowns or read fields or coordinates
  through non-polynomial functions (exp, sqrt, division, conditionals): such integrands are
  not polynomials, and two degrees more keep their quadrature error below the discretisation
  error without the estimate's blow-up.

``[solver] quadrature_degree`` overrides q for every group. An integral whose metadata a
plug-in set deliberately (a degree, or vertex quadrature for lumping) keeps it.

A parameter given as 0 in the case makes a term that is zero for the whole run (``0*v*dx``
from a source of 0); the contexts record the constants of such values and the group removes
the terms before compiling. A value a protocol controls is not fixed, so it stays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ufl
from dolfinx import mesh
from ufl.checks import is_cellwise_constant
from ufl.corealg.traversal import unique_pre_traversal

from app.contracts import BadValue
from app.domain_forms import ConstantAliases, localised
from app.timeint import StartValues

NONLINEAR_EXTRA = 2

# Operators whose result is not a polynomial of their operands (when these vary in a cell).
_NONPOLYNOMIAL = (
    ufl.classes.MathFunction,
    ufl.classes.MinValue,
    ufl.classes.MaxValue,
    ufl.classes.Abs,
    ufl.classes.Atan2,
    ufl.classes.BesselFunction,
)


@dataclass
class FormRules:
    """What every context and group of a simulation share about the forms they build.

    Attributes:
        quadrature_degree: The case's ``[solver] quadrature_degree`` (None: the rule above).
        controlled: Identities of the parameter values a protocol sets during the run.
        zeros: Constants of parameter values fixed at 0, each with its instance and value
            (filled by the contexts).
        aliases: The constants of one mesh as constants of the meshes they are integrated
            over (app/domain_forms.py).
        start_values: The constants a protocol changes, with their values at a step's start.
        extend: The pass that makes parent integrals read the extensions of boundary fields
            (app/extensions.py; None: forms are left as they are).
    """

    quadrature_degree: int | None = None
    controlled: frozenset[int] = frozenset()
    zeros: dict[Any, tuple[str, Any]] = field(default_factory=dict)
    aliases: ConstantAliases = field(default_factory=ConstantAliases)
    start_values: StartValues = field(default_factory=StartValues)
    extend: Callable[[ufl.Form], ufl.Form] | None = None

    def built(self, instance: str, value: Any, constant: Any) -> None:
        """Record the constant a context built for a parameter value of an instance."""
        if id(value) in self.controlled:
            self.start_values.track(constant)
        elif float(constant.value) == 0.0:
            self.zeros[constant] = (instance, value)

    def degree(self, msh: mesh.Mesh, field_degree: int, nonlinear: bool) -> int:
        """The quadrature degree of a group (see the module docstring)."""
        if self.quadrature_degree is not None:
            return self.quadrature_degree
        extra = NONLINEAR_EXTRA if nonlinear else 0
        return 2 * field_degree + geometry_degree(msh) + extra

    def localise(self, form: ufl.Form, zeros: Mapping[Any, tuple[str, Any]]) -> ufl.Form:
        """The form without the terms of ``zeros``, each integral reading the constants and
        coordinates of its own integration domain, and the extensions of boundary fields off
        their boundary."""
        return localised(without_zeros(self.extended(form), zeros), self.aliases)

    def extended(self, form: ufl.Form) -> ufl.Form:
        """The form with parent integrals off a boundary reading the extensions of its fields."""
        return form if self.extend is None else self.extend(form)

    def finish(self, form: ufl.Form, degree: int) -> ufl.Form:
        """The form without its identically zero terms, integrated at ``degree`` over domains
        whose constants and coordinates it reads."""
        return with_degree(self.localise(form, self.zeros), degree)


def geometry_degree(msh: mesh.Mesh) -> int:
    """Polynomial degree det J adds to an integrand on the mesh's cells."""
    tdim, order = msh.topology.dim, msh.geometry.cmaps[0].degree
    simplex = msh.topology.cell_type in (
        mesh.CellType.interval,
        mesh.CellType.triangle,
        mesh.CellType.tetrahedron,
    )
    return tdim * (order - 1) if simplex else tdim * order - 1


def nonpolynomial(expressions: list[Any]) -> bool:
    """Whether expressions apply a non-polynomial function to something that varies in a
    cell (a field, a test or trial function, a coordinate)."""
    return any(
        _nonpolynomial_node(node)
        for expression in expressions
        for node in unique_pre_traversal(ufl.as_ufl(expression))
    )


def _nonpolynomial_node(node: Any) -> bool:
    match node:
        case ufl.classes.Division():
            return _varies(node.ufl_operands[1])
        case ufl.classes.Conditional():  # piecewise where the condition changes in a cell
            return _varies(node.ufl_operands[0])
        case ufl.classes.Power():
            base, exponent = node.ufl_operands
            natural = isinstance(exponent, ufl.classes.IntValue) and int(exponent) >= 0
            return not natural and (_varies(base) or _varies(exponent))
        case _:
            return isinstance(node, _NONPOLYNOMIAL) and _varies(node)


def _varies(expression: Any) -> bool:
    """Not constant on a cell: reads a field, a coordinate or the geometry of a curved cell."""
    return not is_cellwise_constant(expression)


def without_zeros(form: ufl.Form, zeros: Mapping[Any, tuple[str, Any]]) -> ufl.Form:
    """The form with the given constants set to zero: UFL drops the terms they multiply, and
    integrals that become zero disappear.

    Raises:
        BadValue: A parameter fixed at 0 is a divisor (or the argument of a logarithm).
    """
    present = [c for c in ufl.algorithms.analysis.extract_constants(form) if c in zeros]
    if not present:
        return form
    try:
        return ufl.replace(form, {c: ufl.zero(*c.ufl_shape) for c in present})
    except ValueError:  # UFL refuses 1/0 and ln(0): name the parameter
        for constant in present:
            try:
                ufl.replace(form, {constant: ufl.zero(*constant.ufl_shape)})
            except ValueError:
                instance, value = zeros[constant]
                error = BadValue(
                    "0 here makes the equations divide by zero (or take the logarithm of 0)",
                    value=value,
                    fix="give a nonzero value",
                )
                error.instance = instance
                raise error from None
        raise


def deliberate(integral: ufl.classes.Integral) -> bool:
    """Whether a plug-in chose the integral's quadrature itself (a degree, or vertex quadrature
    for lumping)."""
    metadata = integral.metadata()
    return "quadrature_degree" in metadata or metadata.get("quadrature_rule") == "vertex"


def adjustable(*forms: ufl.Form) -> list[Any]:
    """Integrands of the integrals whose quadrature the framework chooses."""
    return [i.integrand() for form in forms for i in form.integrals() if not deliberate(i)]


def with_degree(form: ufl.Form, degree: int) -> ufl.Form:
    """Every integral at quadrature degree ``degree``, except deliberate ones."""
    integrals = []
    for integral in form.integrals():
        if not deliberate(integral):
            metadata = integral.metadata() | {"quadrature_degree": degree}
            integral = integral.reconstruct(metadata=metadata)
        integrals.append(integral)
    return ufl.Form(integrals)
