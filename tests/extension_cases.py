"""Cases of a field of a boundary read on the parent's regions (app/extensions.py), and a script
that prints how far the read values are from the field's closed form (for 1 and 2 ranks):

    mpirun -n 2 python -m tests.extension_cases solved
"""

import sys

import numpy as np
from mpi4py import MPI

from app.simulation import Simulation
from tests.conftest import ROOT

CELL = ROOT / "meshes" / "battery_cell_2d.py"
# a cell of 3 x 2 x 3 layers' cells, 3 cells along y, 3 along r (graded toward r = 1)
MESH = {
    "type": "gmsh",
    "file": str(CELL),
    "parameters": {
        "negative": 2.0,
        "separator": 1.0,
        "positive": 2.0,
        "height": 3.0,
        "negative_cells": 3,
        "separator_cells": 2,
        "positive_cells": 3,
        "height_cells": 3,
        "radial_cells": 3,
        "radial_grading": 1.5,
    },
}
PLANE = "300 + 10*sin(x)*cos(0.7*y) + x*y"  # K, not in the mesh's space


def plane_field(kind: str, value: str = PLANE) -> dict:
    """The field of the plane 'top': prescribed (an expression) or solved (heat that keeps
    its initial value: no conduction to speak of, no source)."""
    if kind == "prescribed":
        return {
            "type": "prescribed",
            "domain": "top",
            "fields": {"temperature": {"units": "K", "value": value}},
        }
    return {"type": "heat", "domain": "top", "conductivity": 1e-200, "initial": value}


def read_case(kind: str) -> dict:
    """The plane's temperature read at the nodes of the negative electrode's cells (a
    prescribed field there: the temperature as its value) and by a diffusion there."""
    return {
        "mesh": MESH,
        "physics": {
            "plane": plane_field(kind),
            "read": {
                "type": "prescribed",
                "domain": "negative",
                "fields": {"seen": {"units": "K", "value": "temperature"}},
            },
            "particles": {
                "type": "mass_transport",
                "domain": "negative",
                "species": {"c": {"diffusivity": "1e-3*temperature/300", "initial": 1.0}},
            },
        },
        "time": {"scheme": "bdf1", "dt": 0.1, "end": 0.1},
        "output": {"fields": [], "xdmf": False},
    }


def largest_error(kind: str) -> float:
    """max |value read - PLANE(x, y)| over the read field's nodes (all ranks)."""
    result = Simulation.from_case(read_case(kind)).run()
    fields = [result.fields["seen"]]
    if kind == "solved":
        fields.append(result.fields["temperature_negative"])
    error = 0.0
    for function in fields:
        x, y = function.function_space.tabulate_dof_coordinates()[:, :2].T
        exact = 300 + 10 * np.sin(x) * np.cos(0.7 * y) + x * y
        error = max(error, float(np.abs(function.x.array - exact).max(initial=0.0)))
    return MPI.COMM_WORLD.allreduce(error, op=MPI.MAX)


if __name__ == "__main__":
    error = largest_error(sys.argv[1])
    if MPI.COMM_WORLD.rank == 0:
        print(f"error {error:.3e}")
