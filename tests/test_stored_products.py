"""Right-hand sides and quantities from stored matrices and vectors (app/affine.py) give the
results of assembling every form over all cells (``[solver] stored_products = false``), on 1 and
2 ranks, and assemble again only what changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ufl
from dolfinx import default_scalar_type, fem, mesh
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc

from app.affine import WHOLE_EVALUATIONS, AffineScalar, AffineVector
from app.fields import owned_size
from tests.conftest import assert_same_quantities, read_quantities, scalebridge

# Time-dependent data in every place a stored piece can read it: a source and a boundary
# temperature that follow t (constants watched by the stored pieces), a convection condition,
# a second-order scheme (two earlier levels in the right-hand side) and a step change.
TRANSIENT_HEAT = """
[mesh]
type = "box"
length = [1.0, 0.5, 0.5]
cells = [8, 4, 4]

[physics.heat]
conductivity = "1.5 W/(m*K)"
density = "1000 kg/m^3"
specific_heat = "1000 J/(kg*K)"
source = "1e5*(1 + x)*(1 + t/100)"  # W/m^3, t in s
initial = "293.15 K"
boundaries.left = { type = "temperature", value = "293.15 + 0.1*t" }
boundaries.right = { type = "convection", h = "50 W/(m^2*K)", ambient = "293.15 K" }

[time]
scheme = "bdf2"
end = "10 min"
dt = "60 s"

[solver]
preset = "cg_gamg"
rtol = 1e-12
"""

STEADY_MECHANICS = """
[mesh]
type = "rectangle"
length = [2.0, 0.5]
cells = [16, 4]

[physics.mechanics]
formulation = "plane_strain"
youngs_modulus = "200 GPa"
poisson_ratio = 0.3
boundaries.left = { type = "fixed" }
boundaries.right = { type = "traction", value = ["1 MPa", "-2 MPa"] }
"""


def _run(case: Path, out: Path, stored: bool, ranks: int) -> dict[str, list[float]]:
    flag = "true" if stored else "false"
    process = scalebridge(
        "run", case, "-o", out, "-q", "--set", f"solver.stored_products={flag}", ranks=ranks
    )
    assert process.returncode == 0, process.stderr
    return read_quantities(out)


@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("text", [TRANSIENT_HEAT, STEADY_MECHANICS], ids=["heat", "mechanics"])
def test_stored_products_match_assembly(tmp_path, text, ranks):
    case = tmp_path / "case.toml"
    case.write_text(text)
    stored = _run(case, tmp_path / "stored", True, ranks)
    assembled = _run(case, tmp_path / "assembled", False, ranks)
    for counts in ("newton_iterations", "linear_iterations"):
        if counts in stored:
            assert stored[counts] == assembled[counts]
    assert_same_quantities(stored, assembled, rtol=1e-10)


def test_pieces_assembled_again_only_when_their_data_change():
    """L = k u_old v dx + k f v dx with f static: one stored matrix k M times u_old, a load
    k f v dx; the matrix is assembled again when k changes, not when u_old does, and the sum
    equals L assembled over all cells."""
    domain = mesh.create_unit_square(MPI.COMM_WORLD, 6, 6)
    space = fem.functionspace(domain, ("Lagrange", 1))
    previous, load = fem.Function(space), fem.Function(space)
    load.interpolate(lambda x: 1 + x[0])
    k = fem.Constant(domain, default_scalar_type(2.0))
    v = ufl.TestFunction(space)
    form = k * previous * v * ufl.dx + k * load * v * ufl.dx
    affine = AffineVector(form, {load}, [])
    assert len(affine.products) == 1 and affine.rest is not None
    (_, matrix, function, data) = affine.products[0]
    assert function is previous

    def stored_sum() -> np.ndarray:
        b = fem_petsc.create_vector(space)
        b.zeroEntries()
        fem_petsc.assemble_vector(b, affine.rest)
        b.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
        affine.add_products(b)
        return b.array.copy()

    def assembled() -> np.ndarray:
        b = fem_petsc.assemble_vector(fem.form(form))
        b.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
        return b.array.copy()

    for step in range(3):
        previous.interpolate(lambda x, s=step: np.sin(x[0] + s) * x[1])
        if step == 2:
            k.value = 5.0
        assert np.allclose(stored_sum(), assembled(), rtol=1e-13, atol=1e-15)
        # An interior vertex's mass: six triangles of area 1/72, a sixth of each.
        assert matrix.getDiagonal().max()[1] == pytest.approx(float(k.value) / 72, rel=1e-12)
    assert not data.changed()
    previous.x.array[:] += 1.0
    assert not data.changed()
    k.value = 1.0
    assert data.changed()


def test_scalar_pieces_only_for_forms_evaluated_often():
    """A quantity evaluated at most twice is assembled whole (nothing split or compiled); from
    the third evaluation on it is the dot products, equal to the whole assembly."""
    domain = mesh.create_unit_square(MPI.COMM_WORLD, 5, 5)
    space = fem.functionspace(domain, ("Lagrange", 1))
    field, other = fem.Function(space), fem.Function(space)
    k = fem.Constant(domain, default_scalar_type(3.0))
    form = k * field * ufl.dx + other**2 * ufl.ds
    quantity = AffineScalar(form, set(), [], domain.comm)
    for evaluation in range(1, WHOLE_EVALUATIONS + 3):
        field.interpolate(lambda x, e=evaluation: e + x[0] * x[1])
        other.interpolate(lambda x, e=evaluation: e - x[0])
        exact = domain.comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)
        assert quantity.value() == pytest.approx(exact, rel=1e-13)
        assert (quantity._pieces is None) == (evaluation <= WHOLE_EVALUATIONS)
    assert len(quantity._pieces) == 1  # k * field * dx; other**2 stays in the rest


def test_the_affinity_read_off_a_form_agrees_with_its_derivative():
    """``surely_not_affine`` (which spares the derivative) says "not affine" only where the
    derivative would read a changing function, and says it for the usual nonlinearities."""
    from ufl.algorithms.analysis import extract_coefficients

    from app.affine import surely_not_affine

    msh = mesh.create_unit_square(MPI.COMM_SELF, 2, 2)
    space = fem.functionspace(msh, ("Lagrange", 1))
    f, g, k = fem.Function(space), fem.Function(space), fem.Function(space)
    static = {k}
    dx = ufl.dx
    expected = {
        "f k": (f * k * dx, False),
        "grad f k": (ufl.grad(f)[0] * k * dx, False),
        "f / k": (f / k * dx, False),
        "f**1 + k**2": ((f**1 + k**2) * dx, False),
        "where(k > 0, f, 0)": (ufl.conditional(ufl.gt(k, 0), f, 0) * dx, False),
        "f + g": ((f + g) * dx, False),
        "f f": (f * f * dx, True),
        "f g": (f * g * dx, True),
        "k / f": (k / f * dx, True),
        "g / (1 + f)": (g / (1 + f) * dx, True),
        "sinh f": (ufl.sinh(f) * k * dx, True),
        "f**2": (f**2 * dx, True),
        "sqrt(f + k)": (ufl.sqrt(f + k) * dx, True),
        "where(f > 0, 1, 0)": (ufl.conditional(ufl.gt(f, 0), 1, 0) * dx, True),
        "where(g > 0, f, 0)": (ufl.conditional(ufl.gt(g, 0), f, 0) * dx, True),
    }
    step = "where(f > 0, 1, 0)"  # its derivative is zero: not a reason to set f to zero
    for name, (form, surely) in expected.items():
        assert surely_not_affine(form, f, static) == surely, name
        derivative = ufl.algorithms.expand_derivatives(
            ufl.derivative(form, f, ufl.TestFunction(space))
        )
        reads_changing = bool(set(extract_coefficients(derivative)) - static)
        assert not surely or reads_changing or name == step, name


def test_a_stored_step_function_of_a_field_follows_the_field():
    """The area where a field exceeds a value, evaluated from stored pieces: the field stays
    in the assembled rest (the derivative of a condition is zero, and setting the field to zero
    there froze the area at its value for a zero field)."""
    msh = mesh.create_unit_square(MPI.COMM_WORLD, 8, 8)
    space = fem.functionspace(msh, ("DG", 0))
    u = fem.Function(space)
    area = AffineScalar(ufl.conditional(ufl.gt(u, 0.5), 1.0, 0.0) * ufl.dx, set(), [], msh.comm)
    x = space.tabulate_dof_coordinates()[:, 0]
    for width in np.linspace(0.0, 1.0, WHOLE_EVALUATIONS + 3):  # whole, then from pieces
        u.x.array[:] = np.where(x < width, 1.0, 0.0)
        expected = np.count_nonzero(x[: owned_size(space)] < width) / 128
        assert area.value() == pytest.approx(msh.comm.allreduce(expected), abs=1e-14)
