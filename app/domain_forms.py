"""Forms over several domains: what an integral may read, and with which mesh's terminals.

A form may read functions of the parent mesh, of region submeshes and of boundary submeshes
(app/domains.py); DOLFINx integrates each integral over one mesh, its *integration domain*,
and maps the others' functions onto it through the entity maps. Two kinds of terminal carry a
mesh but are not functions, and DOLFINx 0.11 does not map them:

* a ``fem.Constant`` of another mesh inside an integral over a boundary's submesh makes FFCx
  fail (``UnboundLocalError: ... 't'``);
* a ``SpatialCoordinate`` of another mesh is read as if that mesh were the integration domain:
  the x of a boundary's submesh inside an integral over the parent's facets integrates to
  0.375 instead of 0.5 on the top of a unit square, silently.

Both arise as soon as an expression built on one domain (a boundary instance's reaction rate,
the time scheme's dt, a parameter-set constant) is integrated on another. :func:`localised`
gives every integral the constants and coordinates of its own integration domain, so plug-ins
never need to know where their expressions end up. A constant is replaced by an alias on the
integration domain that shares its value (the same C++ object), so a protocol or a new dt that
sets the constant sets every alias too, with nothing to copy. Other geometric quantities of
another mesh (a normal, a cell size) have no such meaning and are refused.

:func:`check_integrals` refuses integrals that would read a field where it does not live.
"""

from __future__ import annotations

from typing import Any

import ufl
from dolfinx import fem
from ufl.corealg.traversal import traverse_unique_terminals, unique_pre_traversal
from ufl.domain import extract_unique_domain

from app.contracts import BadValue

_DERIVATIVES = (ufl.classes.Grad, ufl.classes.Div, ufl.classes.Curl, ufl.classes.NablaGrad)


class ConstantAliases:
    """One alias per constant and mesh: a ``fem.Constant`` of that mesh sharing the value."""

    def __init__(self) -> None:
        self._aliases: dict[tuple[int, int], fem.Constant] = {}
        self._keep: list[fem.Constant] = []  # the originals, so their ids stay theirs

    def on(self, constant: fem.Constant, mesh: Any) -> fem.Constant:
        """The alias of ``constant`` on ``mesh`` (a DOLFINx or UFL mesh)."""
        key = (id(constant), id(mesh))
        if key not in self._aliases:
            alias = fem.Constant(mesh, constant.value.copy())
            alias._cpp_object = constant._cpp_object  # one value: setting either sets both
            self._aliases[key] = alias
            self._keep.append(constant)
        return self._aliases[key]


def localised(form: ufl.Form, aliases: ConstantAliases) -> ufl.Form:
    """The form with each integral reading the constants and coordinates of its integration
    domain.

    Raises:
        ValueError: An integral reads a geometric quantity (normal, cell size) of another mesh.
    """
    integrals = []
    changed = False
    for integral in form.integrals():
        domain = integral.ufl_domain()
        replacements: dict[Any, Any] = {}
        for terminal in traverse_unique_terminals(integral.integrand()):
            home = extract_unique_domain(terminal)
            if home is None or home == domain:
                continue
            if isinstance(terminal, fem.Constant):
                replacements[terminal] = aliases.on(terminal, domain)
            elif isinstance(terminal, ufl.SpatialCoordinate):
                replacements[terminal] = ufl.SpatialCoordinate(domain)
            elif isinstance(terminal, ufl.classes.GeometricQuantity):
                raise ValueError(
                    f"an integral over {domain} reads {type(terminal).__name__} of another mesh "
                    f"({home}); build it from the measure's own domain"
                )
        if replacements:
            changed = True
            integral = integral.reconstruct(ufl.replace(integral.integrand(), replacements))
        integrals.append(integral)
    return ufl.Form(integrals) if changed else form


def check_integrals(form: ufl.Form, owner: str, domains: Any) -> None:
    """Refuse integrals that read a field outside the place it lives on.

    A region's field has no value on other cells and a boundary's field none off its facets;
    assembling there silently gives garbage. Over the parent, a region's field must be
    integrated over the region (``ctx.dx(region)``, or a boundary's part on it), a boundary's
    field over that boundary, and never differentiated there (its tangential derivative inside
    a parent integral is silently zero). Over a boundary's own mesh only its fields can be read:
    a parent field reaches it as its trace (app/traces.py).

    Raises:
        BadValue: Naming the owner, the field, where it was integrated and the fix.
    """
    for integral in form.integrals():
        where = integral.ufl_domain()
        terminals = [
            *ufl.algorithms.extract_arguments(integral.integrand()),
            *ufl.algorithms.extract_coefficients(integral.integrand()),
        ]
        if where != domains.parent.ufl_domain():
            strangers = [t for t in terminals if t.ufl_function_space().mesh.ufl_domain() != where]
            if strangers:
                surface = next(r for r in domains.submeshes() if r.mesh.ufl_domain() == where)
                raise BadValue(
                    f"{owner} integrates {_what(strangers)} of another mesh over the boundary "
                    f"'{surface.name}'",
                    fix="read fields of the parent on a boundary through their traces (a field "
                    "the instance requires)",
                )
            continue
        regions = {domains.of(t.ufl_function_space().mesh) for t in terminals} - {None}
        for region in regions:
            if not _inside(integral, region, domains):
                kind, measure = ("boundary", "ctx.ds") if region.surface else ("region", "ctx.dx")
                mine = [t for t in terminals if domains.of(t.ufl_function_space().mesh) is region]
                raise BadValue(
                    f"{owner} integrates {_what(mine)} of {kind} '{region.name}' over "
                    f"{_where(integral)}, outside the {kind}",
                    fix=f"integrate it over the {kind} only ({measure}('{region.name}'))",
                )
            if region.surface and _differentiates(integral.integrand(), region):
                raise BadValue(
                    f"{owner} differentiates a field of the boundary '{region.name}' inside an "
                    "integral over the parent's facets, where its derivative along the boundary "
                    "reads as zero",
                    fix="integrate its derivatives over the boundary's own mesh (an instance "
                    f"placed there: domain = '{region.name}')",
                )


def _what(terminals: list[Any]) -> str:
    names = sorted(str(t) for t in terminals if not isinstance(t, ufl.Argument))
    return f"field '{names[0]}'" if names else "the test function of a field"


def _differentiates(integrand: Any, region: Any) -> bool:
    for node in unique_pre_traversal(integrand):
        if isinstance(node, _DERIVATIVES):
            inner = ufl.algorithms.extract_coefficients(node.ufl_operands[0])
            inner += ufl.algorithms.extract_arguments(node.ufl_operands[0])
            if any(t.ufl_function_space().mesh is region.mesh for t in inner):
                return True
    return False


def _inside(integral: Any, region: Any, domains: Any) -> bool:
    ids = integral.subdomain_id()
    ids = ids if isinstance(ids, tuple) else (ids,)
    kind = integral.integral_type()
    everywhere = "everywhere" in ids or "otherwise" in ids
    data = domains.mesh_data
    if kind == "exterior_facet" and not everywhere:
        origins = [domains.measures(data).origin(int(i)) for i in ids]
        if any(origin is None for origin in origins):
            return False
        if region.surface:  # only on the boundary's own facets
            return all(boundary == region.tag for boundary, _ in origins)
        return all(cells == region.tag for _, cells in origins)
    if region.surface:
        return kind == "interior_facet" and not everywhere and all(i == region.tag for i in ids)
    if kind == "cell":
        if everywhere:
            return data.region_cells[region.name] == domains.global_cells()
        return all(i == region.tag for i in ids)
    return False  # interior facets: two sides, one of them outside a region field


def _where(integral: Any) -> str:
    ids = integral.subdomain_id()
    kind = {"cell": "cells", "exterior_facet": "boundary facets", "interior_facet": "interfaces"}
    label = kind.get(integral.integral_type(), integral.integral_type())
    return f"all {label}" if ids in ("everywhere", "otherwise") else f"{label} tagged {ids}"
