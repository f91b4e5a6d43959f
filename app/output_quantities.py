"""Quantities a case defines itself: means, ratios and integrals of expressions of fields.

Plug-ins report what they know (amounts, flows, reactions); a case often needs a number of its
own: the mean mineral fraction of one region, the mean porosity, an apparent modulus (mean
stress over mean strain). ``[output.quantities]`` names them::

    [output.quantities]
    packet_mineral = { value = "HA", over = "packets" }                  # mean over a region
    axial_stiffness = { value = "stress_xx", per = "strain_xx", units = "Pa" }
    mineral_volume = { value = "HA", integral = true, units = "m^2" }   # per unit depth in 2D
    top_pressure = { value = "-stress_yy", over = "top", units = "Pa" }  # mean over a boundary

A quantity is the integral of ``value`` over ``over`` (the whole mesh by default; a region, or
a boundary) divided by the integral of ``per`` (default 1, so the mean), or with
``integral = true`` the integral itself. Expressions read x, y, z, t, scalar fields by name and
components of vector and tensor fields as ``<field>_<component>`` (``displacement_x``,
``stress_xy``), as probe columns name them. ``units`` are those of the result, which the column
name carries (``axial_stiffness_Pa``); expressions are in SI. They are integrated at the highest
quadrature degree of the case's groups, evaluated at every output time like the plug-ins'
quantities, and events may watch them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ufl
from pydantic import Field, field_validator, model_validator

from app.contracts import Quantity
from app.errors import CaseError, did_you_mean, listing
from app.expressions import ExpressionError, parse
from app.fields import FieldStore
from app.forms import with_degree
from app.meshing import MeshData
from app.parameters import Parameters
from app.units import parse_units

AXES = "xyz"


class OutputQuantity(Parameters):
    """A quantity of the case: the mean (or ratio, or integral) of an expression."""

    value: str = Field(description="Expression of x, y, z, t and fields (components: u_x, s_xy)")
    per: str | None = Field(None, description="Denominator expression: int value / int per")
    over: str | None = Field(None, description="Region or boundary (default: the whole mesh)")
    integral: bool = Field(False, description="The integral of value instead of its mean")
    units: str = Field("dimensionless", description="Units of the result (column name)")

    @field_validator("value", "per")
    @classmethod
    def _readable(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                expression = parse(text)
            except ExpressionError as exc:
                raise ValueError(str(exc)) from None
            if expression.is_boolean:
                raise ValueError(f"{text!r} is a condition; write a number (1 if ... else 0)")
        return text

    @field_validator("units")
    @classmethod
    def _known_units(cls, units: str) -> str:
        parse_units(units)
        return units

    @model_validator(mode="after")
    def _integral_or_ratio(self) -> OutputQuantity:
        if self.integral and self.per is not None:
            raise ValueError("integral = true takes no per (that would be a ratio)")
        return self


def check_names(quantities: Mapping[str, OutputQuantity]) -> Mapping[str, OutputQuantity]:
    """Quantity names start CSV column names: letters, digits and underscores."""
    for name in quantities:
        if not name.isidentifier():
            raise ValueError(f"quantity names are letters, digits and underscores, got {name!r}")
    return quantities


def namespace(store: FieldStore, t: Any) -> dict[str, Any]:
    """What the expressions may read: coordinates, t, the fields of the whole mesh (scalars by
    name, components as ``<field>_<component>``)."""
    mesh = store.mesh
    names: dict[str, Any] = dict(zip(AXES, ufl.SpatialCoordinate(mesh), strict=False))
    names["t"] = t
    for field in store:
        if field.space.mesh is not mesh or field.is_global:
            continue  # fields of a region or boundary mesh: not integrable over the parent
        u, shape = field.function, field.function.ufl_shape
        if not shape:
            names[field.spec.name] = u
        elif len(shape) == 1:
            names |= {f"{field.spec.name}_{AXES[i]}": u[i] for i in range(shape[0])}
        else:
            names |= {
                f"{field.spec.name}_{AXES[i]}{AXES[j]}": u[i, j]
                for i in range(shape[0])
                for j in range(shape[1])
            }
    return names


def build(
    specs: Mapping[str, OutputQuantity],
    store: FieldStore,
    mesh_data: MeshData,
    t: Any,
    degree: int,
) -> dict[str, Quantity]:
    """The case's quantities by name, as UFL.

    Raises:
        CaseError: An unknown name in an expression, an unknown place, or a point set.
    """
    names = namespace(store, t)
    quantities = {}
    for name, spec in specs.items():
        where = f"output.quantities.{name}"
        measure, interior = _measure(spec.over, mesh_data, f"{where}.over")
        value = _ufl(spec.value, names, f"{where}.value", interior)
        description = f"{'integral' if spec.integral else 'mean'} of {spec.value}"
        form = with_degree(value * measure, degree)
        if spec.integral:
            quantities[name] = Quantity.integral(form, spec.units, description)
            continue
        per = ufl.as_ufl(1.0)
        if spec.per is not None:
            per = _ufl(spec.per, names, f"{where}.per", interior)
            description = f"int {spec.value} / int {spec.per}"
        quantities[name] = Quantity.ratio(
            form, with_degree(per * measure, degree), spec.units, description
        )
    return quantities


def _ufl(text: str, names: Mapping[str, Any], where: str, interior: bool) -> Any:
    """The expression as UFL; on an interior boundary the mean of its two sides."""
    expression = parse(text)
    missing = next((n for n in sorted(expression.names) if n not in names), None)
    if missing is not None:
        raise CaseError(
            where,
            f"unknown name '{missing}'{did_you_mean(missing, names)} in {text!r}; quantities "
            f"read {listing(sorted(names))}",
        )
    try:
        value = ufl.as_ufl(expression.to_ufl(names))
    except ExpressionError as exc:
        raise CaseError(where, str(exc)) from None
    return ufl.avg(value) if interior else value


def _measure(over: str | None, mesh_data: MeshData, where: str) -> tuple[Any, bool]:
    """The measure of a place, and whether it is an interior boundary (an interface)."""
    mesh = mesh_data.mesh
    if over is None:
        return ufl.Measure("dx", domain=mesh), False
    if over in mesh_data.regions:
        dx = ufl.Measure("dx", domain=mesh, subdomain_data=mesh_data.cell_tags)
        return dx(mesh_data.regions[over]), False
    if over in mesh_data.boundaries:
        interior = over in mesh_data.interior_boundaries
        measure = ufl.Measure(
            "dS" if interior else "ds", domain=mesh, subdomain_data=mesh_data.facet_tags
        )
        return measure(mesh_data.boundaries[over]), interior
    places = [*mesh_data.regions, *mesh_data.boundaries]
    raise CaseError(
        where,
        f"unknown region or boundary '{over}'{did_you_mean(over, places)}; places here: "
        f"{listing(places)}",
        "a quantity is integrated over a region or a boundary (point and edge sets have no "
        "measure)",
    )
