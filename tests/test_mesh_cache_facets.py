"""A mesh read from the cache has no facets until something needs their numbers
(app/facet_tags.py): boundary dofs and exterior facet integrals come from (cell, local facet)
pairs, and must be exactly what DOLFINx's own facet-based calls give, on 1 and 2 ranks."""

import json
import tomllib
from pathlib import Path

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.domains import Domains
from app.mesh_spec import MeshSpec
from app.meshing import build_mesh
from app.simulation import Simulation
from tests.conftest import ROOT, assert_same_quantities, mpi_python, read_quantities, scalebridge

MESHES = {
    "rectangle": {"type": "rectangle", "length": [1.0, 0.7], "cells": [7, 5]},
    "box": {"type": "box", "length": [1.0, 0.8, 0.6], "cells": [5, 4, 3]},
}


def _facets(tdim: int, msh) -> int | None:
    """The number of owned facets, None when they have not been created."""
    try:
        return msh.topology.index_map(tdim - 1).size_local
    except RuntimeError:  # "Missing IndexMap in Topology"
        return None


def _cached(kind: str, folder: Path):
    """The mesh ``kind`` read back from a cache in ``folder`` (built into it first)."""
    spec = MeshSpec.model_validate(MESHES[kind] | {"cache": str(folder)})
    build_mesh(spec, MPI.COMM_WORLD, folder)
    return build_mesh(spec, MPI.COMM_WORLD, folder)


def _built(kind: str, folder: Path):
    """The mesh ``kind`` built (no cache): a box's sides are found without facets."""
    return build_mesh(MeshSpec.model_validate(MESHES[kind]), MPI.COMM_WORLD, folder)


def compare(folder: Path, built: bool = False) -> dict:
    """For each mesh (read from the cache, or ``built``), degree and boundary: whether the dofs
    located from the pairs, the dofs of one component (with their collapsed numbers) and the ds
    integral of a field equal DOLFINx's own, found from the facets created afterwards; and
    whether the facets were absent before."""
    results = {}
    for kind in MESHES:
        data = _built(kind, folder) if built else _cached(kind, folder / kind)
        msh, tdim = data.mesh, data.mesh.topology.dim
        domains = Domains(data)
        measures = domains.measures(data)
        # (a P2 space in 2D creates them: its edges are the facets)
        facetless = _facets(tdim, msh) is None
        spaces = {
            degree: fem.functionspace(msh, ("Lagrange", degree, (tdim,))) for degree in (1, 2)
        }
        x = ufl.SpatialCoordinate(msh)
        integrand = 1 + x[0] ** 2 + 3 * x[1]
        located, integrals = {}, {}
        for name in data.boundaries:
            for degree, space in spaces.items():
                component = space.sub(1)
                located[name, degree] = (
                    domains.locate(space, name)[0],
                    domains.locate(component, name)[0],
                )
            value = fem.assemble_scalar(fem.form(integrand * measures.ds(name)))
            integrals[name] = msh.comm.allreduce(value, op=MPI.SUM)
        everywhere = fem.assemble_scalar(fem.form(integrand * measures.ds()))
        everywhere = msh.comm.allreduce(everywhere, op=MPI.SUM)
        # DOLFINx's own, from the facets (created now)
        tags = data.facet_tags
        ds = ufl.Measure("ds", domain=msh, subdomain_data=tags)
        same_dofs, same_integrals = True, True
        for name, tag in data.boundaries.items():
            facets = tags.find(tag)
            for degree, space in spaces.items():
                whole, component = located[name, degree]
                same_dofs &= np.array_equal(
                    whole, fem.locate_dofs_topological(space, tdim - 1, facets)
                )
                same_dofs &= np.array_equal(
                    component, fem.locate_dofs_topological(space.sub(1), tdim - 1, facets)
                )
            own = msh.comm.allreduce(fem.assemble_scalar(fem.form(integrand * ds(tag))), MPI.SUM)
            same_integrals &= abs(own - integrals[name]) <= 1e-14 * abs(own)
            same_integrals &= own > 0
        own = msh.comm.allreduce(fem.assemble_scalar(fem.form(integrand * ufl.ds(msh))), MPI.SUM)
        results[kind] = {
            "facetless": facetless,
            "dofs": bool(msh.comm.allreduce(same_dofs, op=MPI.LAND)),
            "integrals": bool(msh.comm.allreduce(same_integrals, op=MPI.LAND)),
            "everywhere": abs(own - everywhere) <= 1e-14 * abs(own),
            "boundaries": sorted(data.boundaries),
        }
    return results


def _check(results: dict) -> None:
    for kind, row in results.items():
        assert row["facetless"], f"{kind}: the cached mesh was read with its facets"
        assert row["dofs"] and row["integrals"] and row["everywhere"], (kind, row)
        assert len(row["boundaries"]) == 2 * (2 if kind == "rectangle" else 3)


def test_pairs_give_dolfinx_own_dofs_and_integrals(tmp_path):
    _check(compare(tmp_path))


def test_the_same_on_two_ranks(tmp_path):
    script = tmp_path / "pairs.py"
    script.write_text(
        f"import json, sys\nfrom pathlib import Path\nsys.path.insert(0, {str(ROOT)!r})\n"
        "import app\nfrom mpi4py import MPI\n"
        "from tests.test_mesh_cache_facets import compare\n"
        f"results = compare(Path({str(tmp_path)!r}))\n"
        "if MPI.COMM_WORLD.rank == 0:\n    print(json.dumps(results))\n"
    )
    serial = compare(tmp_path / "serial")
    _check(serial)
    # the first 2-rank run partitions the XDMF file (with facets) and stores its pairs; the
    # second reads them
    for _ in range(2):
        process = mpi_python(script)
        assert process.returncode == 0, process.stderr
    _check(json.loads(process.stdout.strip().splitlines()[-1]))


def _heat(folder: Path) -> Simulation:
    case = ROOT / "benchmarks" / "heat_3d.toml"
    overrides = ["mesh.cells=[6,6,6]", f'mesh.cache="{folder}"', "time.end=120"]
    return Simulation.from_case(case, overrides)


def heat_twice(folder: Path) -> dict:
    """The heat benchmark built (writing the cache) and read from it: whether the read mesh
    had no facets after the run, the built one had them, and the quantities were identical."""
    built = _heat(folder)
    expected = built.run().quantities
    cached = _heat(folder)
    quantities = cached.run().quantities
    comm = MPI.COMM_WORLD
    return {
        "built_facets": comm.allreduce(_facets(3, built.mesh_data.mesh) is not None, MPI.LAND),
        "facetless": comm.allreduce(_facets(3, cached.mesh_data.mesh) is None, MPI.LAND),
        "from_cache": "from the mesh cache" in cached.mesh_data.description,
        "same": all(np.array_equal(v, quantities[k]) for k, v in expected.items()),
        "rows": len(expected["time_s"]),
    }


def test_the_heat_benchmark_on_a_cached_mesh_creates_no_facets(tmp_path):
    record = heat_twice(tmp_path / "cache")
    assert record == {
        "built_facets": True,
        "facetless": True,
        "from_cache": True,
        "same": True,
        "rows": 2,
    }


def heat_twice_in_a_process(folder: Path, ranks: int, preamble: str = "") -> dict:
    """:func:`heat_twice` in a fresh process on ``ranks`` ranks (``preamble`` runs after
    ``import app``), with whether DOLFINx's form factory was patched afterwards."""
    script = folder / "heat.py"
    script.write_text(
        f"import json, sys\nfrom pathlib import Path\nsys.path.insert(0, {str(ROOT)!r})\n"
        f"import app\n{preamble}from mpi4py import MPI\nfrom dolfinx.fem import forms\n"
        "from tests.test_mesh_cache_facets import heat_twice\n"
        f"record = heat_twice(Path({str(folder / 'cache')!r}))\n"
        "record['patched'] = hasattr(forms.form_cpp_class, 'facetless')\n"
        "if MPI.COMM_WORLD.rank == 0:\n    print(json.dumps(record))\n"
    )
    process = mpi_python(script, ranks=ranks)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_the_heat_benchmark_on_two_ranks_creates_no_facets(tmp_path):
    assert heat_twice_in_a_process(tmp_path, ranks=2) == {
        "built_facets": True,
        "facetless": True,
        "from_cache": True,
        "same": True,
        "rows": 2,
        "patched": True,
    }


def test_cases_with_interfaces_and_components_agree_with_and_without_the_cache(tmp_path):
    """An interface (dS: the facets are created on first use) and a vector field with fixed
    components, each on 1 and 2 ranks, cached and not."""
    for case, extra in (
        ("two_layer_wall.toml", ()),
        ("thick_cylinder.toml", ()),
    ):
        for ranks in (1, 2):
            runs = {}
            # a cache of its own: the cached run reads the partition the first one built
            cache = ("--set", f'mesh.cache="{tmp_path / f"cache_{case}_{ranks}"}"')
            for label, options in (("plain", ()), ("first", cache), ("cached", cache)):
                out = tmp_path / f"{case}_{ranks}_{label}"
                process = scalebridge(
                    "run", ROOT / "cases" / case, "-o", out, "-q", *options, *extra, ranks=ranks
                )
                assert process.returncode == 0, process.stderr
                runs[label] = read_quantities(out)
            assert_same_quantities(runs["plain"], runs["cached"], rtol=1e-12)
            assert_same_quantities(runs["plain"], runs["first"], rtol=1e-12)


def test_another_dolfinx_keeps_its_own_forms_and_creates_the_facets(tmp_path):
    """The form patch reads DOLFINx 0.11's internals; under another version (a cluster's own
    build) it is not installed, DOLFINx creates the facets it needs and the answer is the same."""
    other = "import dolfinx\ndolfinx.__version__ = '0.12.0'\n"
    assert heat_twice_in_a_process(tmp_path, ranks=1, preamble=other) == {
        "built_facets": True,
        "facetless": False,
        "from_cache": True,
        "same": True,
        "rows": 2,
        "patched": False,
    }


def test_a_component_fixed_by_an_expression_of_time_follows_it():
    """One component of a vector field fixed to an expression of t: its value lives in the
    collapsed space, so the located dofs carry their collapsed numbers (DOLFINx's collapse map
    is a list per cell type; reading it as one array pinned every dof to the first value)."""
    case = tomllib.loads((ROOT / "cases" / "cyclic_bar.toml").read_text())
    mechanics = case["physics"]["mechanics"]
    del mechanics["plasticity"]
    mechanics["boundaries"]["top"] = {"type": "displacement", "y": "1e-4*t"}
    case["time"]["end"] = 0.05
    rows = Simulation.from_case(case, base_dir=ROOT / "cases").run().quantities
    np.testing.assert_allclose(rows["displacement_top_y_m"], 1e-4 * rows["time_s"], rtol=1e-12)
