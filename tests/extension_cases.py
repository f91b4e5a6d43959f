"""Cases of a field of a boundary read on the parent's regions (app/extensions.py), and a script
that prints how far the read values are from the field's closed form (for 1 and 2 ranks):

    mpirun -n 2 python -m tests.extension_cases solved 2d

The boundary is the plane r = 1 of a 2D cell's (x, y, r) mesh ("2d") or the line r = 1 of a 1D
cell's pseudo-2D (x, r) mesh ("1d").
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
MESH_1D = {
    "type": "pseudo2d",
    "layers": [
        {"name": "negative", "thickness": 2.0, "cells": 5},
        {"name": "separator", "thickness": 1.0, "cells": 2},
        {"name": "positive", "thickness": 2.0, "cells": 5},
    ],
    "radial_cells": 4,
    "radial_grading": 1.5,
}
MESHES = {"2d": MESH, "1d": MESH_1D}
# K, not in the meshes' spaces; y is r on the 1D cell's mesh (1 on its line r = 1)
PLANE = "300 + 10*sin(x)*cos(0.7*y) + x*y"


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


def read_case(kind: str, cell: str = "2d") -> dict:
    """The plane's temperature read at the nodes of the negative electrode's cells (a
    prescribed field there: the temperature as its value) and by a diffusion there."""
    return {
        "mesh": MESHES[cell],
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


def largest_error(kind: str, cell: str = "2d") -> float:
    """max |value read - PLANE at the point above| over the read field's nodes (all ranks)."""
    result = Simulation.from_case(read_case(kind, cell)).run()
    fields = [result.fields["seen"]]
    if kind == "solved":
        fields.append(result.fields["temperature_negative"])
    error = 0.0
    for function in fields:
        points = function.function_space.tabulate_dof_coordinates()
        if cell == "1d":
            points[:, 1] = 1.0  # the line r = 1 above
        x, y = points[:, :2].T
        exact = 300 + 10 * np.sin(x) * np.cos(0.7 * y) + x * y
        error = max(error, float(np.abs(function.x.array - exact).max(initial=0.0)))
    return MPI.COMM_WORLD.allreduce(error, op=MPI.MAX)


if __name__ == "__main__":
    error = largest_error(*sys.argv[1:])
    if MPI.COMM_WORLD.rank == 0:
        print(f"error {error:.3e}")
