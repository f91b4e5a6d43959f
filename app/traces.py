"""Traces: a parent field's values on a boundary, as a field of the boundary's own mesh.

An instance placed on a boundary (``domain = "top"``) integrates over the boundary's mesh, where
DOLFINx cannot read functions of the parent mesh or of its regions. Each field of the parent it
reads is handed to it as its *trace*: the particle surface concentration c_s(x, r = 1) as a
function of x, for Butler-Volmer kinetics on the r = 1 line of a pseudo-2D battery mesh. The
framework creates the trace when the case has such a reader (``<field>_<boundary>``, shown by
``scalebridge check``), as one more unknown of the group that solves the field, defined by the
L2 projection over the parent's facets of the boundary:

    int_{B on R} (lambda - u) m ds  +  int_{B off R} lambda m ds  =  0    for all m

with R the region the field lives on (all of the mesh for a field of the whole mesh). Newton
solves it together with the field, so a reaction on the boundary sees the current surface
value and its derivative, and the field receives the reaction through terms on the same facets:
integrated with the group's one quadrature rule on both sides, what leaves one side enters the
other to round-off. The trace's space is discontinuous of the field's degree: the field's
restriction to a facet lies in it (the projection is exact), and values on the two sides of a
region's edge stay apart (zero off the region). It has no time derivative, so the consistent
initialisation before the first row solves it from the initial state; its starting guess is
the field's values located geometrically (:func:`initial_guess`).

A global value (a real element: the lumped temperature of a cell) is one number, so it crosses
between meshes both ways: its trace is one value on the reader's mesh with the row
``int_B (lambda - u) m ds = 0`` (B the boundary that holds one of the two). A global value of a
boundary's mesh read on the parent or its regions (the particles' Arrhenius diffusivity on the
(x, r) mesh reading the cell temperature of the line r = 1) gets a copy on the parent,
``<field>_parent``; one read on another boundary is the trace of that copy. The copy's column
in the readers' rows is dense (every dof reads it) and the Jacobian keeps it, so Newton
converges as fast as with the value on one mesh.

The other way, a spatial field of a boundary's mesh read on the parent or on a region is its
extension along the boundary's normal (app/extensions.py), kept here with the traces: one more
unknown of the field's group, ``<field>_<region>`` or ``<field>_parent``.
"""

from __future__ import annotations

import numpy as np
import ufl

from app import extensions
from app.domains import Domains
from app.errors import CaseError
from app.fields import Field


def projection(
    trace: Field, source: Field, boundary: str | None, test: ufl.Argument, domains: Domains
):
    """The trace's row: its projection over the parent's facets of ``boundary``, or for a
    global value's copy on the parent (``boundary`` None) over those of the source's boundary;
    for an extension, its row along the columns (app/extensions.py)."""
    if trace.columns is not None:
        return extensions.row(trace.function, source.function, trace.columns, test, domains)
    measures = domains.measures(domains.mesh_data)
    if trace.is_global:
        facets = boundary or source.spec.region
        return ufl.inner(trace.function - source.function, test) * measures.ds(facets)
    region = source.spec.region
    if region is None:
        return ufl.inner(trace.function - source.function, test) * measures.ds(boundary)
    others = [name for name in domains.mesh_data.regions if name != region]
    on = measures.ds(boundary, [region])
    off = measures.ds(boundary, others)
    return (
        ufl.inner(trace.function - source.function, test) * on
        + ufl.inner(trace.function, test) * off
    )


def initial_guess(trace: Field, source: Field, domains: Domains) -> None:
    """Start the trace from the source's values at its nodes (zero off the source's region),
    so that a first Newton solve starts from the surface values, not from zero (an extension:
    from the source's values in its columns)."""
    if trace.columns is not None:
        extensions.guess(trace.function, source.function, trace.columns)
    elif trace.is_global:  # one value, held alike by every rank (as owner or ghost)
        trace.function.x.array[:] = source.function.x.array
    else:
        domains.transfer(source.function, trace.function)
    if trace.parts is not None:
        data = domains.named(trace.space.mesh)
        tags = [data.regions[name] for name in trace.parts]
        inside = np.isin(data.cell_tags.values, tags)
        off = data.cell_tags.indices[~inside]
        trace.function.x.array[trace.space.dofmap.list[off].ravel()] = 0.0
    trace.function.x.scatter_forward()
    for past in trace.history:
        past.x.array[:] = trace.function.x.array


def check_degree(degree: int, traces: list[Field], group: str) -> None:
    """A projection needs a rule exact for the product of two trace functions: degree 1 makes
    it singular for a linear trace.

    Raises:
        CaseError: The group's quadrature degree is below twice the trace's degree.
    """
    for trace in traces:
        needed = 2 * trace.spec.space[1]
        if degree < needed:
            raise CaseError(
                "solver.quadrature_degree",
                f"group '{group}' integrates at quadrature degree {degree}, but the trace "
                f"'{trace.spec.name}' needs at least {needed} (its projection is singular below)",
                f"set quadrature_degree = {needed} or more, or leave it to the default",
            )
