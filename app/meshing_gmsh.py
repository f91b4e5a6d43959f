"""gmsh meshes for :mod:`app.meshing`: ``.msh`` files, ``.geo`` geometries and ``.py`` scripts.

gmsh runs on rank 0 only. Everything that can go wrong there (missing file, bad ``.geo``, a
script that raises, missing physical groups) is caught and broadcast before the collective
``model_to_mesh``, so every rank raises the same :class:`~app.errors.CaseError` instead of the
other ranks waiting forever.
"""

import importlib.util
import inspect
import pathlib
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

import gmsh
from dolfinx import mesh as dmesh
from dolfinx.io import gmsh as dgmsh
from mpi4py import MPI

from app.errors import CaseError, listing

if TYPE_CHECKING:
    from app.meshing import MeshSpec

_WORDS = ("point", "curve", "surface", "volume")
_SUFFIXES = (".msh", ".geo", ".py")
_BUILTIN_ONLY = ("length", "origin", "cells", "cell")


def check_gmsh_spec(spec: "MeshSpec") -> None:
    """Reject [mesh] settings that do not fit a gmsh file of the given type."""
    for key in _BUILTIN_ONLY:
        if getattr(spec, key) is not None:
            raise CaseError(
                f"mesh.{key}",
                f"'{key}' is only read for built-in meshes (interval, rectangle, box)",
                "remove it: the gmsh file defines the geometry and cells",
            )
    if not spec.file:
        raise CaseError(
            "mesh.file",
            "a gmsh mesh needs a file",
            'give file = "meshes/part.geo" (a .msh, .geo or .py file)',
        )
    suffix = pathlib.PurePath(spec.file).suffix.lower()
    if suffix not in _SUFFIXES:
        raise CaseError(
            "mesh.file",
            f"unknown mesh file type '{suffix or spec.file}'",
            "give a gmsh .msh mesh, a .geo geometry or a .py script with build(model)",
        )
    if suffix == ".msh":
        if spec.size is not None:
            raise CaseError("mesh.size", "a .msh file is already meshed", "remove 'size'")
        if spec.order != 1:
            raise CaseError(
                "mesh.order",
                "a .msh file keeps the order it was written with",
                "remove 'order', or mesh the .geo/.py source instead",
            )
    if spec.parameters and suffix != ".py":
        raise CaseError("mesh.parameters", "'parameters' are only passed to a .py script's build()")
    if spec.order not in (1, 2):
        raise CaseError("mesh.order", f"order must be 1 or 2, got {spec.order}")
    if spec.size is not None and spec.size_si() <= 0:
        raise CaseError("mesh.size", f"size must be positive, got {spec.size!r}")


def load_gmsh(
    spec: "MeshSpec", comm: MPI.Comm, base_dir: pathlib.Path
) -> tuple[dmesh.Mesh, dmesh.MeshTags, dmesh.MeshTags | None, dict[str, int], dict[str, int]]:
    """Read or generate the gmsh model of ``spec`` on rank 0 and distribute it over ``comm``.

    Returns:
        The mesh, its cell and facet tags (None without boundary groups), and the physical
        names of the cells (regions) and facets (boundaries) with their tag values.

    Raises:
        CaseError: On every rank, for any problem with the file.
    """
    outcome: tuple = ()
    try:
        if comm.rank == 0:
            gmsh.initialize(readConfigFiles=False, interruptible=False)
            gmsh.option.setNumber("General.Terminal", 0)
            try:
                outcome = ("ok", _gmsh_model(spec, base_dir))
            except CaseError as exc:
                outcome = ("error", (exc.path, exc.problem, exc.fix))
            except Exception as exc:  # any failure must reach the other ranks
                outcome = ("error", ("mesh.file", f"gmsh failed on '{spec.file}': {exc}", None))
        status, payload = comm.bcast(outcome, root=0)
        if status == "error":
            raise CaseError(*payload)
        dim, groups = payload
        partitioner = dmesh.create_cell_partitioner(dmesh.GhostMode.shared_facet, 2)
        data = dgmsh.model_to_mesh(gmsh.model, comm, 0, gdim=dim, partitioner=partitioner)
    finally:
        if comm.rank == 0 and gmsh.isInitialized():
            gmsh.finalize()
    regions = {name: tag for d, tag, name in groups if d == dim}
    boundaries = {name: tag for d, tag, name in groups if d == dim - 1}
    return data.mesh, data.cell_tags, data.facet_tags, regions, boundaries


def _gmsh_model(spec: "MeshSpec", base_dir: pathlib.Path) -> tuple[int, list[tuple[int, int, str]]]:
    """Load the file into the gmsh model and mesh it (rank 0); returns its dimension and groups.

    ``.msh`` is merged here rather than through ``dolfinx.io.gmsh.read_from_msh``, which would
    leave the other ranks waiting forever if gmsh failed to read the file.
    """
    path = find_file(spec.file, base_dir)
    if path.suffix.lower() == ".py":
        _run_script(path, spec.parameters)
    else:
        _gmsh_step(f"read '{spec.file}'", gmsh.open, str(path))
    dim = gmsh.model.getDimension()
    if dim < 1:
        raise CaseError("mesh.file", f"'{spec.file}' defines no geometry")
    if path.suffix.lower() != ".msh":
        if spec.size is not None:
            gmsh.option.setNumber("Mesh.CharacteristicLengthMax", spec.size_si())
        _gmsh_step(f"mesh '{spec.file}'", gmsh.model.mesh.generate, dim)
        if spec.order > 1:
            _gmsh_step(
                f"make '{spec.file}' order {spec.order}", gmsh.model.mesh.setOrder, spec.order
            )
    return dim, physical_groups(spec.file, dim)


def _gmsh_step(what: str, step: Callable[..., None], *args: object) -> None:
    try:
        step(*args)
    except Exception as exc:  # the gmsh API raises plain Exception
        raise CaseError("mesh.file", f"gmsh could not {what}: {exc}") from None


def find_file(file: str, base_dir: pathlib.Path, where: str = "mesh.file") -> pathlib.Path:
    """The file a case names: absolute, or relative to the case's folder, then the cwd."""
    given = pathlib.Path(file).expanduser()
    candidates = [given] if given.is_absolute() else [base_dir / given, pathlib.Path.cwd() / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    folders = ", ".join(dict.fromkeys(str(c.parent.resolve()) for c in candidates))
    raise CaseError(
        where,
        f"file '{file}' not found (looked in: {folders})",
        "check the name; a relative path is read from the case file's folder, "
        "then from the current directory",
    )


def load_script(path: pathlib.Path, where: str = "mesh.file") -> types.ModuleType:
    """Import a .py geometry script by its path; it must define ``build(model, ...)``."""
    loader_spec = importlib.util.spec_from_file_location(f"scalebridge_mesh_{path.stem}", path)
    module = importlib.util.module_from_spec(loader_spec)
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # user code may raise anything
        raise CaseError(where, f"{path.name} failed to load: {type(exc).__name__}: {exc}") from None
    if not callable(getattr(module, "build", None)):
        raise CaseError(
            where,
            f"{path.name} has no build() function",
            "define build(model, **parameters) that adds the geometry and physical groups "
            "(see meshes/two_layer.py)",
        )
    return module


def check_arguments(
    function: Callable, parameters: dict, where: str = "mesh.parameters", skip: int = 1
) -> None:
    """Refuse ``parameters`` that a script's function does not take (after ``skip`` positional
    arguments, the gmsh model for build())."""
    signature = inspect.signature(function)
    try:
        signature.bind(*([None] * skip), **parameters)
    except TypeError as exc:
        accepted = list(signature.parameters)[skip:]
        raise CaseError(
            where,
            f"{function.__name__}() of the script does not take these parameters ({exc})",
            f"its parameters are: {listing(accepted)}",
        ) from None


def _run_script(path: pathlib.Path, parameters: dict[str, float | int | str]) -> None:
    """Run a .py geometry script's ``build(model, **parameters)``."""
    build = load_script(path).build
    check_arguments(build, parameters)
    try:
        build(gmsh.model, **parameters)
    except Exception as exc:  # user code may raise anything
        raise CaseError(
            "mesh.file", f"build() in {path.name} raised {type(exc).__name__}: {exc}"
        ) from None


def physical_groups(file: str, dim: int, where: str = "mesh.file") -> list[tuple[int, int, str]]:
    """Named physical groups of the cells and facets, checked so model_to_mesh cannot fail."""
    model = gmsh.model
    groups = []
    owner: dict[tuple[int, int], str] = {}  # (dimension, entity) -> group name
    for d in (dim, dim - 1):
        for _, tag in model.getPhysicalGroups(d):
            name = model.getPhysicalName(d, tag) or f"{'region' if d == dim else 'boundary'}_{tag}"
            if any(name == other for d_other, _, other in groups if d_other == d):
                raise CaseError(where, f"two physical groups of '{file}' are named '{name}'")
            groups.append((d, tag, name))
            for entity in model.getEntitiesForPhysicalGroup(d, tag):
                if (d, entity) in owner:
                    raise CaseError(
                        where,
                        f"{_WORDS[d]} {entity} is in both '{owner[d, entity]}' and '{name}'",
                        "put every cell and facet into at most one physical group",
                    )
                owner[d, int(entity)] = name
    word = _WORDS[dim]
    fix = (
        f'add e.g. Physical {word.title()}("solid") = {{...}}; to a .geo, or '
        f'model.addPhysicalGroup({dim}, tags, name="solid") to a .py script'
    )
    if not any(d == dim for d, _, _ in groups):
        raise CaseError(where, f"'{file}' has no physical {word} groups, so no cells", fix)
    loose = [tag for _, tag in model.getEntities(dim) if (dim, tag) not in owner]
    if loose:
        raise CaseError(where, f"{word}(s) {loose} of '{file}' are in no physical group", fix)
    cell_types = model.mesh.getElementTypes(dim)
    if len(cell_types) != 1:
        names = [model.mesh.getElementProperties(t)[0] for t in cell_types]
        raise CaseError(
            where,
            f"'{file}' mixes cell types {names}; DOLFINx meshes have one",
            "mesh with one cell type (all triangles, or all quadrilaterals, ...)",
        )
    return groups
