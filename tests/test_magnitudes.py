"""The magnitude of the terms of an expression (app.magnitudes), against closed forms."""

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

from app.magnitudes import magnitude, magnitude_form

COMM = MPI.COMM_WORLD


@pytest.fixture(scope="module")
def square():
    return mesh.create_unit_square(COMM, 4, 4)


def integral(form) -> float:
    return COMM.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)


def test_a_difference_that_cancels_keeps_the_size_of_its_terms(square):
    a, b = fem.Constant(square, 5.0), fem.Constant(square, 5.0)
    difference = (a - b) * ufl.dx
    assert integral(difference) == 0.0
    assert integral(magnitude_form(difference)) == pytest.approx(10.0, rel=1e-14)


def test_tensor_contractions_bound_each_product(square):
    """M(A : B) = sum |A_ij| |B_ij|, and a free thermal strain against its eigenstrain."""
    A = ufl.as_matrix([[1.0, -2.0], [3.0, -4.0]])
    B = ufl.as_matrix([[-1.0, 1.0], [1.0, 1.0]])
    assert integral(ufl.inner(A, B) * ufl.dx(domain=square)) == pytest.approx(-4.0)
    assert integral(magnitude(ufl.inner(A, B)) * ufl.dx(domain=square)) == pytest.approx(10.0)
    V = fem.functionspace(square, ("Lagrange", 1, (2,)))
    u = fem.Function(V)
    u.interpolate(lambda x: 1e-3 * x[:2])  # a free expansion: strain 1e-3 I
    stress = ufl.sym(ufl.grad(u)) - 1e-3 * ufl.Identity(2)
    assert abs(integral(ufl.inner(stress, stress) * ufl.dx)) < 1e-30
    assert integral(magnitude(ufl.tr(stress)) * ufl.dx) == pytest.approx(4e-3, rel=1e-12)


def test_functions_of_values(square):
    """sqrt of the magnitude, quotients by |denominator|, conditionals on the values."""
    x = ufl.SpatialCoordinate(square)
    c, five = fem.Constant(square, -2.0), fem.Constant(square, 5.0)
    cases = {
        # expression: the integral of its magnitude over the unit square
        ufl.sqrt(five - 1.0): np.sqrt(6.0),
        (x[0] - 1.0) / c: 0.5 * (0.5 + 1.0),
        ufl.conditional(ufl.gt(x[0], 2.0), x[0], c * x[1]): 1.0,
        ufl.exp(c): np.exp(-2.0),
    }
    for expression, expected in cases.items():
        assert integral(magnitude(expression) * ufl.dx) == pytest.approx(expected), expression
