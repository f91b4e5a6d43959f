"""Forms with exterior facet integrals on a mesh whose facets were never created.

Why it exists: DOLFINx 0.11 builds a compiled form through ``create_form_factory``, and the
sparsity pattern of a bilinear form through ``create_sparsity_pattern``; both create the mesh's
facets and their connectivity whenever the form has any facet integral, even when every exterior
facet integral comes with its integration entities as (cell, local facet) pairs and needs no
facet numbers. On a mesh read from the cache (app/mesh_cache.py, which stores
its boundaries as such pairs, app/facet_tags.py) that creation is most of what the read saved:
3.2 s of 4 s at 1M cells; a built-in box finds its sides as such pairs too (app/box_sides.py).
DOLFINx's ``Form`` also has a constructor that takes the integrals themselves (kernel,
entities, active coefficients), as its custom-kernel demos use; it creates nothing.
:func:`install` makes ``dolfinx.fem.form`` use it for the forms that need nothing else:
float64 forms of cell and exterior facet integrals on a single-cell-type mesh without facets,
whose exterior facet integrals all have their entities given, and whose kernels need no facet
permutations. The matrix of such a bilinear form (``dolfinx.fem.petsc.create_matrix``, which
DOLFINx's linear and nonlinear problems call) gets its sparsity pattern from a form of one cell
integral over the cells of all its integrals: an exterior facet integral couples the dofs of its
cell, as a cell integral over that cell does. Every other form and matrix is built by DOLFINx as
before (creating the facets if it must).

The integrals are keyed as DOLFINx keys them: by type, by position in FFCx's list of the form's
integrals of that type (sorted by subdomain id) and kernel 0; a cell integral without an id runs
over the owned cells, as DOLFINx's default (which ignores any entities given for it). Delete
this module once DOLFINx creates facets only for the integrals that need them.
"""

from __future__ import annotations

from typing import Any

import cffi
import dolfinx
import numpy as np
from dolfinx import cpp
from dolfinx.fem import IntegralType
from dolfinx.fem import forms as dolfinx_forms
from dolfinx.fem import petsc as dolfinx_petsc
from ffcx.codegeneration import jit as ffcx_jit

_SUPPORTED = (IntegralType.cell, IntegralType.exterior_facet)
_ffi: cffi.FFI | None = None


def install() -> None:
    """Route ``dolfinx.fem.form`` through :func:`_factory` and
    ``dolfinx.fem.petsc.create_matrix`` through :func:`_matrix` (once per process)."""
    original = getattr(dolfinx_forms, "form_cpp_class", None)
    if original is None or getattr(original, "facetless", False) or not _written_for_this():
        return  # another DOLFINx (a cluster's own build): it creates the facets, as it must
    create_matrix = dolfinx_petsc.create_matrix

    def matrix(a: Any, kind: Any = None) -> Any:
        made = _matrix(a, kind)
        return create_matrix(a, kind) if made is None else made

    dolfinx_petsc.create_matrix = matrix

    def form_cpp_class(dtype: Any) -> Any:
        form_class = original(dtype)
        if np.dtype(dtype) != np.float64:
            return form_class
        return lambda *args, **kwargs: _factory(form_class, args, kwargs)

    form_cpp_class.facetless = True
    dolfinx_forms.form_cpp_class = form_cpp_class


def _factory(form_class: Any, args: tuple, kwargs: dict) -> Any:
    """DOLFINx's form from a compiled form's address, built without facets when it can be."""
    if kwargs or len(args) != 7:
        return form_class(*args, **kwargs)
    addresses, spaces, coefficients, constants, subdomains, entity_maps, mesh = args
    integrals = _integrals(addresses, subdomains, mesh) if len(addresses) == 1 else None
    if integrals is None:
        return form_class(*args)
    return form_class(spaces, integrals, coefficients, constants, False, entity_maps, mesh)


def _integrals(addresses: list[int], subdomains: dict, mesh: Any) -> dict | None:
    """The integrals of the compiled form for the constructor that takes them, or None when
    DOLFINx's own factory must build it (see the module docstring)."""
    if mesh is None or len(mesh.topology.cell_types) != 1 or _has_facets(mesh.topology):
        return None
    form = _ufcx().cast("ufcx_form *", addresses[0])
    offsets = form.form_integral_offsets
    if any(
        offsets[kind.value + 1] > offsets[kind.value]
        for kind in IntegralType
        if kind not in _SUPPORTED
    ):
        return None
    integrals: dict[IntegralType, list] = {}
    for kind in _SUPPORTED:
        given = {identifier: entities for identifier, entities in subdomains.get(kind, [])}
        for position, index in enumerate(range(offsets[kind.value], offsets[kind.value + 1])):
            integral = form.form_integrals[index]
            identifier = form.form_integral_ids[index]
            if integral.needs_facet_permutations:
                return None
            if identifier == -1 and kind == IntegralType.cell:  # whatever the subdomain data
                owned = mesh.topology.index_map(mesh.topology.dim).size_local
                entities = np.arange(owned, dtype=np.int32)
            elif identifier != -1 and identifier in given:
                entities = np.asarray(given[identifier], dtype=np.int32)
            else:  # every exterior facet, or an id without entities: DOLFINx's to find
                return None
            active = [i for i in range(form.num_coefficients) if integral.enabled_coefficients[i]]
            kernel = int(_ufcx().cast("uintptr_t", integral.tabulate_tensor_float64))
            integrals.setdefault(kind, []).append(
                (position, kernel, entities, np.array(active, dtype=np.int8))
            )
    return integrals


def _matrix(a: Any, kind: Any) -> Any:
    """The PETSc matrix of a single bilinear form on a mesh without facets, from the pattern of
    its cells (see the module docstring); None for DOLFINx to make."""
    if isinstance(a, list | tuple) or not isinstance(kind, str | None):
        return None
    form = a._cpp_object
    mesh = form.mesh
    types = form.integral_types
    if (
        IntegralType.exterior_facet not in types
        or not types <= set(_SUPPORTED)
        or _has_facets(mesh.topology)
        or any(space.mesh != mesh for space in form.function_spaces)
    ):
        return None
    cell_map = mesh.topology.index_map(mesh.topology.dim)
    covered = np.zeros(cell_map.size_local + cell_map.num_ghosts, dtype=bool)
    for integral_type in types:
        width = 1 if integral_type == IntegralType.cell else 2
        for i in range(form.num_integrals(integral_type, 0)):
            covered[np.asarray(form.domains(integral_type, i))[::width]] = True
    # Never assembled (only its cells and dofmaps are read): it needs no kernel.
    no_kernel = 0
    surrogate = type(form)(
        form.function_spaces,
        {
            IntegralType.cell: [
                (0, no_kernel, np.flatnonzero(covered).astype(np.int32), np.empty(0, np.int8))
            ]
        },
        [],
        [],
        False,
        [],
        mesh,
    )
    spaces = form.function_spaces
    maps = [space.dofmap.index_map for space in spaces]
    pattern = cpp.la.SparsityPattern(mesh.comm, maps, [s.dofmap.index_map_bs for s in spaces])
    cpp.fem.build_sparsity_pattern(pattern, surrogate)
    pattern.finalize()
    return cpp.la.petsc.create_matrix(mesh.comm, pattern, kind)


def _written_for_this() -> bool:
    """Whether DOLFINx is the minor version whose internals (the ``Form`` constructor taking
    integrals, the ufcx structs) this module was written against."""
    return dolfinx.__version__.startswith("0.11.")


def _has_facets(topology: Any) -> bool:
    try:
        topology.index_map(topology.dim - 1)
    except RuntimeError:  # "Missing IndexMap in Topology"
        return False
    return True


def _ufcx() -> cffi.FFI:
    """A cffi interface to FFCx's ``ufcx_form`` and ``ufcx_integral`` (the one every compiled
    form module declares), to read a compiled form from its address."""
    global _ffi
    if _ffi is None:
        _ffi = cffi.FFI()
        _ffi.cdef(
            ffcx_jit.UFC_HEADER_DECL.format("float64")
            + ffcx_jit.UFC_INTEGRAL_DECL
            + ffcx_jit.UFC_FORM_DECL
        )
    return _ffi
