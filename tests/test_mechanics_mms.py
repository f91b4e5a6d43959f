"""Manufactured solutions for the mechanics plug-in: L2 rates of the displacement, 2 for P1 and 3
for P2, in plane strain and in axisymmetry (hoop strain, 2 pi r weighting), with displacement,
traction and body-force data all taken from the exact solution.
"""

import math

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from app.expressions import parse
from app.simulation import Simulation

E, NU = 1.0, 0.3
LAM, MU = E * NU / ((1 + NU) * (1 - 2 * NU)), E / (2 * (1 + NU))
L, M = repr(LAM), repr(MU)

# Plane strain: u = (sin(pi x) sin(pi y), x^2 y); f = -div sigma, t = sigma n.
PLANE = {
    "u": ["sin(pi*x)*sin(pi*y)", "x**2*y"],
    "f": [
        f"({L} + 3*{M})*pi**2*sin(pi*x)*sin(pi*y) - 2*({L} + {M})*x",
        f"-({L} + {M})*pi**2*cos(pi*x)*cos(pi*y) - 2*{M}*y",
    ],
    "sxx": f"({L} + 2*{M})*pi*cos(pi*x)*sin(pi*y) + {L}*x**2",
    "syy": f"{L}*pi*cos(pi*x)*sin(pi*y) + ({L} + 2*{M})*x**2",
    "sxy": f"{M}*(pi*sin(pi*x)*cos(pi*y) + 2*x*y)",
}

# Axisymmetric (x = r, y = z): u_r = r^2 sin(pi z), u_z = z^2 cos(pi r). Then
#   sigma_rr = lam tr + 4 mu r sin(pi z),  sigma_zz = lam tr + 4 mu z cos(pi r),
#   sigma_rz = mu pi (r^2 cos(pi z) - z^2 sin(pi r)),  tr = 3 r sin(pi z) + 2 z cos(pi r),
# and f = -(d_r s_rr + d_z s_rz + (s_rr - s_tt)/r, d_r s_rz + d_z s_zz + s_rz/r).
TRACE = "(3*x*sin(pi*y) + 2*y*cos(pi*x))"
AXISYMMETRIC = {
    "u": ["x**2*sin(pi*y)", "y**2*cos(pi*x)"],
    "f": [
        f"-(3*{L} + 6*{M})*sin(pi*y) + 2*pi*({L} + {M})*y*sin(pi*x) + {M}*pi**2*x**2*sin(pi*y)",
        f"-3*({L} + {M})*pi*x*cos(pi*y) + {M}*pi**2*y**2*cos(pi*x)"
        f" - (2*{L} + 4*{M})*cos(pi*x) + {M}*pi*y**2*sin(pi*x)/x",
    ],
    "syy": f"{L}*{TRACE} + 4*{M}*y*cos(pi*x)",
    "sxy": f"{M}*pi*(x**2*cos(pi*y) - y**2*sin(pi*x))",
}


def plane_case(cells: int, degree: int) -> dict:
    exact = {"type": "displacement", "x": PLANE["u"][0], "y": PLANE["u"][1]}
    return {
        "mesh": {"type": "rectangle", "cells": [cells, cells]},
        "physics": {
            "mechanics": {
                "formulation": "plane_strain",
                "degree": degree,
                "youngs_modulus": E,
                "poisson_ratio": NU,
                "body_force": PLANE["f"],
                "boundaries": {
                    "left": exact,
                    "bottom": exact,
                    "right": {"type": "traction", "value": [PLANE["sxx"], PLANE["sxy"]]},
                    "top": {"type": "traction", "value": [PLANE["sxy"], PLANE["syy"]]},
                },
            }
        },
    }


def axisymmetric_case(cells: int, degree: int) -> dict:
    exact = {"type": "displacement", "x": AXISYMMETRIC["u"][0], "y": AXISYMMETRIC["u"][1]}
    return {
        "mesh": {"type": "rectangle", "cells": [cells, cells]},
        "physics": {
            "mechanics": {
                "formulation": "axisymmetric",
                "degree": degree,
                "youngs_modulus": E,
                "poisson_ratio": NU,
                "body_force": AXISYMMETRIC["f"],
                "boundaries": {
                    "left": {"type": "displacement", "x": 0},  # the axis: u_r = 0
                    "bottom": exact,
                    "right": exact,
                    "top": {
                        "type": "traction",
                        "value": [AXISYMMETRIC["sxy"], AXISYMMETRIC["syy"]],
                    },
                },
            }
        },
    }


def l2_error(sim: Simulation, exact: list[str], weighted: bool) -> float:
    ctx = sim.context("mechanics")
    u = sim.store["displacement"].function
    reference = ufl.as_vector([parse(c).to_ufl(ctx.namespace()) for c in exact])
    dx = ufl.dx(domain=u.function_space.mesh, metadata={"quadrature_degree": 10})
    weight = ctx.x[0] if weighted else 1
    local = fem.assemble_scalar(fem.form(ufl.dot(u - reference, u - reference) * weight * dx))
    return math.sqrt(MPI.COMM_WORLD.allreduce(local, op=MPI.SUM))


@pytest.mark.parametrize("formulation", ["plane_strain", "axisymmetric"])
@pytest.mark.parametrize(("degree", "meshes"), [(1, (16, 32, 64)), (2, (4, 8, 16))])
def test_displacement_convergence_rate(formulation: str, degree: int, meshes: tuple):
    build, exact = (
        (plane_case, PLANE["u"])
        if formulation == "plane_strain"
        else (axisymmetric_case, AXISYMMETRIC["u"])
    )
    errors = []
    for cells in meshes:
        sim = Simulation.from_case(build(cells, degree))
        sim.run()
        errors.append(l2_error(sim, exact, formulation == "axisymmetric"))
    rate = float(np.polyfit(np.log([1 / n for n in meshes]), np.log(errors), 1)[0])
    assert abs(rate - (degree + 1)) < 0.1, (rate, errors)
