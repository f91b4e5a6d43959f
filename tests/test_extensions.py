"""A field of a boundary's mesh read on the parent's regions, as its extension along the
boundary's normal (app/extensions.py): the plane r = 1 of an (x, y, r) cell read by the cells
below it, T_ext(x, y, r) = T(x, y, 1).

- A prescribed field of the plane (an expression of x and y there) and a solved one (heat that
  keeps its initial value) read at the nodes of the negative electrode's cells equal the
  expression at every node, on 1 and 2 ranks (the solved one through the extension unknown);
  the same for a field of the line r = 1 of a 1D cell's (x, r) mesh.
- A diffusion along r whose diffusivity follows a non-uniform temperature of the plane equals
  the same diffusion with the temperature written as an expression of x and y.
- Reads that cannot be extended are refused at the reader's place in the case.
"""

import copy

import numpy as np
import pytest

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import mpi_python
from tests.extension_cases import MESH, largest_error, plane_field


@pytest.mark.parametrize("cell", ["2d", "1d"])
@pytest.mark.parametrize("kind", ["prescribed", "solved"])
def test_a_field_of_the_plane_read_below_it_is_its_value_above(kind, cell):
    assert largest_error(kind, cell) < 1e-12 * 300


@pytest.mark.parametrize("cell", ["2d", "1d"])
@pytest.mark.parametrize("kind", ["prescribed", "solved"])
def test_the_same_on_two_ranks(kind, cell):
    process = mpi_python("-m", "tests.extension_cases", kind, cell)
    assert process.returncode == 0, process.stderr
    error = float(process.stdout.split("error")[-1])
    assert error < 1e-12 * 300


# bilinear: the solved field (Q1 on the plane's quadrilaterals) holds it exactly
BILINEAR = "300 + 8*x - 5*y + 4*x*y"


def particle_case(temperature: str, kind: str | None) -> dict:
    """Spherical diffusion along r in the negative electrode's cells, from a profile in r,
    with an Arrhenius diffusivity in ``temperature`` (and, for ``kind``, the plane's field
    BILINEAR)."""
    arrhenius = f"0.05*exp(3000*(1/300 - 1/({temperature})))"
    physics = {
        "particles": {
            "type": "mass_transport",
            "domain": "negative",
            "coordinates": "spherical",
            "radial_axis": 2,
            "species": {"c": {"diffusivity": arrhenius, "initial": "1 + z**2"}},
        }
    }
    if kind is not None:
        physics["plane"] = plane_field(kind, BILINEAR)
    return {
        "mesh": MESH,
        "physics": physics,
        "time": {"scheme": "bdf2", "dt": 0.05, "end": 0.5},
        "solver": {"newton": {"rtol": 1e-12, "atol": 1e-14}},
        "output": {"fields": [], "xdmf": False},
    }


def concentration(case: dict) -> np.ndarray:
    return Simulation.from_case(case).run().fields["c"].x.array.copy()


@pytest.mark.parametrize("kind", ["prescribed", "solved"])
def test_diffusion_at_the_planes_temperature_is_diffusion_at_its_expression(kind):
    read = concentration(particle_case("temperature", kind))
    written = concentration(particle_case(BILINEAR, None))
    uniform = concentration(particle_case("300", None))
    assert np.abs(read - uniform).max() > 1e-3  # the temperature matters
    assert np.abs(read - written).max() < 1e-9


UNSTRUCTURED = """
def build(model):
    square = model.occ.addRectangle(0, 0, 0, 1, 1)
    model.occ.synchronize()
    model.addPhysicalGroup(2, [square], name="cell")
    top = model.getEntitiesInBoundingBox(-0.1, 0.9, -0.1, 1.1, 1.1, 0.1, 1)
    model.addPhysicalGroup(1, [tag for _, tag in top], name="top")
    model.mesh.setSize(model.getEntities(0), 0.3)
"""


def test_a_mesh_without_columns_is_refused(tmp_path):
    script = tmp_path / "square.py"
    script.write_text(UNSTRUCTURED)
    case = particle_case("temperature", "solved")
    case["mesh"] = {"type": "gmsh", "file": str(script)}
    particles = case["physics"]["particles"]
    del particles["domain"]
    particles["radial_axis"] = 1
    particles["species"]["c"]["initial"] = 1.0
    with pytest.raises(
        CaseError,
        match=r"physics\.particles: 'particles' reads 'temperature', a field of the boundary "
        r"'top', on the whole mesh.*do not stand in columns on the boundary 'top'",
    ):
        Simulation.from_case(case).build()


def test_a_field_of_another_boundary_is_refused():
    case = particle_case("temperature", "solved")
    case["physics"]["particles"] = {
        "type": "mass_transport",
        "domain": "bottom",
        "species": {"c": {"diffusivity": "1e-3*temperature/300", "initial": 1.0}},
    }
    with pytest.raises(CaseError, match=r"physics\.particles: .*a field of the boundary 'top'"):
        Simulation.from_case(case).build()


def test_a_condition_on_the_boundary_itself_reads_the_field_without_extension():
    case = copy.deepcopy(particle_case("300", "solved"))
    species = case["physics"]["particles"]["species"]["c"]
    species["boundaries"] = {"top": {"type": "flux", "value": "1e-3*(temperature - 300)"}}
    sim = Simulation.from_case(case)
    sim.build()
    assert "temperature_negative" not in sim.store
