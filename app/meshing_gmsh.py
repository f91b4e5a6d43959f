"""gmsh meshes for :mod:`app.meshing`: ``.msh`` files, ``.geo`` geometries and ``.py`` scripts.

gmsh runs on rank 0 only. Everything that can go wrong there (missing file, bad ``.geo``, a
script that raises, missing physical groups) is caught and broadcast before the collective
``model_to_mesh``, so every rank raises the same :class:`~app.errors.CaseError` instead of the
other ranks waiting forever.
"""

import importlib.util
import inspect
import math
import pathlib
import types
from collections.abc import Callable
from typing import Protocol

import gmsh
from dolfinx import mesh as dmesh
from dolfinx.io import gmsh as dgmsh
from mpi4py import MPI

from app.errors import CaseError, listing
from app.mesh_memory import GMSH_BYTES_PER_CELL, GMSH_CELLS_PER_SIZE, MemoryBudget, memory_budget
from app.trust import check_geo, check_script

_WORDS = ("point", "curve", "surface", "volume")


class GmshSource(Protocol):
    """What a gmsh mesh is made from (the validated ``[mesh]`` section)."""

    file: str
    order: int
    parameters: dict[str, float | int | str]

    def size_si(self) -> float | None: ...


def group_kind(dim: int, tdim: int) -> str:
    """What the physical groups of dimension ``dim`` name in a mesh of dimension ``tdim``."""
    if dim == tdim:
        return "region"
    if dim == tdim - 1:
        return "boundary"
    return "point" if dim == 0 else "edge"


def load_gmsh(
    spec: GmshSource, comm: MPI.Comm, base_dir: pathlib.Path
) -> tuple[dmesh.Mesh, dict[int, dmesh.MeshTags | None], dict[int, dict[str, int]]]:
    """Read or generate the gmsh model of ``spec`` on rank 0 and distribute it over ``comm``.

    Returns:
        The mesh; its tags by entity dimension (cells, facets, and on 2D and 3D meshes edges
        and vertices; None where no physical group has that dimension); the physical names
        of each dimension with their tag values (see :func:`group_kind`).

    Raises:
        CaseError: On every rank, for any problem with the file.
    """
    outcome: tuple = ()
    budget = memory_budget(comm)
    try:
        if comm.rank == 0:
            gmsh.initialize(readConfigFiles=False, interruptible=False)
            gmsh.option.setNumber("General.Terminal", 0)
            try:
                outcome = ("ok", _gmsh_model(spec, base_dir, budget))
            except CaseError as exc:
                outcome = ("error", (exc.path, exc.problem, exc.fix))
            except Exception as exc:  # any failure must reach the other ranks
                outcome = ("error", ("mesh.file", f"gmsh failed on '{spec.file}': {exc}", None))
        status, payload = comm.bcast(outcome, root=0)
        if status == "error":
            raise CaseError(*payload)
        dim, groups = payload
        partitioner = (  # one rank has nothing to distribute: DOLFINx then skips that work
            dmesh.create_cell_partitioner(dmesh.GhostMode.shared_facet, 2)
            if comm.size > 1
            else None
        )
        data = dgmsh.model_to_mesh(gmsh.model, comm, 0, gdim=dim, partitioner=partitioner)
    finally:
        if comm.rank == 0 and gmsh.isInitialized():
            gmsh.finalize()
    by_codim = (data.cell_tags, data.facet_tags, data.ridge_tags, data.peak_tags)
    tags = {dim - codim: by_codim[codim] for codim in range(dim + 1)}
    names = {d: {name: tag for d_group, tag, name in groups if d_group == d} for d in tags}
    return data.mesh, tags, names


def _gmsh_model(
    spec: GmshSource, base_dir: pathlib.Path, budget: MemoryBudget
) -> tuple[int, list[tuple[int, int, str]]]:
    """Load the file into the gmsh model and mesh it (rank 0); returns its dimension and groups.

    A mesh the memory cannot hold is refused before generation when the largest cell size
    is known (from the geometry's measure), and in any case before DOLFINx receives it.

    ``.msh`` is merged here rather than through ``dolfinx.io.gmsh.read_from_msh``, which would
    leave the other ranks waiting forever if gmsh failed to read the file.
    """
    path = find_file(spec.file, base_dir)
    if path.suffix.lower() == ".py":
        _run_script(path, spec.parameters)
    else:
        if path.suffix.lower() == ".geo":
            check_geo(path, "mesh.file")
        _gmsh_step(f"read '{spec.file}'", gmsh.open, str(path))
    dim = gmsh.model.getDimension()
    if dim < 1:
        raise CaseError("mesh.file", f"'{spec.file}' defines no geometry")
    where = "mesh.size" if spec.size is not None else "mesh.file"
    if path.suffix.lower() != ".msh":
        if spec.size is not None:
            gmsh.option.setNumber("Mesh.CharacteristicLengthMax", spec.size_si())
        largest = gmsh.option.getNumber("Mesh.CharacteristicLengthMax")
        if largest < _UNSET_SIZE:
            measure = _measure(dim)
            cells = GMSH_CELLS_PER_SIZE[dim] * measure / largest**dim
            what = (
                f"cell size {largest:g} m on a geometry of about {measure:.3g} m^{dim} makes "
                f"at least about {cells:.3g} cells"
            )
            budget.check(cells, GMSH_BYTES_PER_CELL[dim, spec.order], where, what)
        _gmsh_step(f"mesh '{spec.file}'", gmsh.model.mesh.generate, dim)
        if spec.order > 1:
            _gmsh_step(
                f"make '{spec.file}' order {spec.order}", gmsh.model.mesh.setOrder, spec.order
            )
    groups = physical_groups(spec.file, dim)
    cell_type = gmsh.model.mesh.getElementTypes(dim)[0]  # one type: physical_groups checked
    name, _, order, *_ = gmsh.model.mesh.getElementProperties(cell_type)
    cells = sum(len(tags) for tags in gmsh.model.mesh.getElements(dim)[1])
    what = f"'{spec.file}' is meshed into {cells} {name} cells"
    budget.check(cells, GMSH_BYTES_PER_CELL[dim, min(order, 2)], where, what)
    return dim, groups


# gmsh's default Mesh.CharacteristicLengthMax (1e22): no largest cell size was set.
_UNSET_SIZE = 1e21


def _measure(dim: int) -> float:
    """Length, area or volume of the geometry: exact for OpenCASCADE entities, else the
    bounding box's (an upper bound)."""
    entities = gmsh.model.getEntities(dim)
    try:
        return sum(gmsh.model.occ.getMass(dim, tag) for _, tag in entities)
    except Exception:  # not OpenCASCADE entities (the gmsh API raises plain Exception)
        box = gmsh.model.getBoundingBox(-1, -1)
        extents = sorted((box[axis + 3] - box[axis] for axis in range(3)), reverse=True)
        return math.prod(extents[:dim])


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
    """Import a .py geometry script by its path (a trusted one, see :mod:`app.trust`); it must
    define ``build(model, ...)``."""
    check_script(path, where)
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
    """Named physical groups of every dimension, checked so model_to_mesh cannot fail: cells
    (regions), facets (boundaries), and points and edges to fix values on."""
    model = gmsh.model
    groups = []
    owner: dict[tuple[int, int], str] = {}  # (dimension, entity) -> group name
    for d in range(dim, -1, -1):
        kind = group_kind(d, dim)
        for _, tag in model.getPhysicalGroups(d):
            name = model.getPhysicalName(d, tag) or f"{kind}_{tag}"
            lower = d < dim - 1  # a point or edge set: its name must be unique in the mesh
            if name in (other for d_other, _, other in groups if lower or d_other == d):
                raise CaseError(
                    where,
                    f"two physical groups of '{file}' are named '{name}'",
                    "give every point and edge group a name no other group has" if lower else None,
                )
            groups.append((d, tag, name))
            for entity in model.getEntitiesForPhysicalGroup(d, tag):
                if (d, entity) in owner:
                    raise CaseError(
                        where,
                        f"{_WORDS[d]} {entity} is in both '{owner[d, entity]}' and '{name}'",
                        f"put every {_WORDS[d]} into at most one physical group",
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
    if len(cell_types) == 0:
        raise CaseError(
            where,
            f"'{file}' has physical {word} groups but no {dim}D elements in them",
            f"mesh the geometry (gmsh -{dim}) and save the .msh again, or give the .geo",
        )
    if len(cell_types) != 1:
        names = [model.mesh.getElementProperties(t)[0] for t in cell_types]
        raise CaseError(
            where,
            f"'{file}' mixes cell types {names}; DOLFINx meshes have one",
            "mesh with one cell type (all triangles, or all quadrilaterals, ...)",
        )
    return groups
