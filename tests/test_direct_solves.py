"""Direct solves: singular operators refused relative to each row's scale, badly scaled regular
systems solved, and MUMPS controls that leave nothing unused in PETSc's options database."""

import pytest
import ufl
from pydantic import Field

from app import registry
from app.contracts import Dirichlet, FieldSpec, Parameters, Physics, Quantity
from app.errors import SolverError
from app.simulation import Simulation
from physics_modules.heat import Heat
from tests.conftest import read_quantities, scalebridge

UNUSED_OPTIONS = "options you set that were not used"


class Exchange(Physics):
    """One field of a steady exchange, its whole equation multiplied by ``scale``:

    scale * [-lap u + k (u - partner) - s] = 0.
    """

    name = "scaled_exchange"

    class Parameters(Parameters):
        field: str
        partner: str
        scale: float = 1.0
        exchange: float = 1.0
        source: float = 1.0
        fixed: str | None = Field(None, description="Boundary where u = 0")

    @property
    def provides(self):
        return [FieldSpec(self.params.field, "scalar", "dimensionless")]

    @property
    def requires(self):
        return [FieldSpec(self.params.partner, "scalar", "dimensionless")]

    def residual(self, ctx):
        p = self.params
        u, v, other = ctx.field(p.field), ctx.test(p.field), ctx.field(p.partner)
        form = ufl.inner(ufl.grad(u), ufl.grad(v)) * ctx.dx()
        form += (p.exchange * (u - other) - p.source) * v * ctx.dx()
        return p.scale * form

    def dirichlet(self, ctx):
        fixed = self.params.fixed
        return [Dirichlet(self.params.field, fixed, 0.0)] if fixed else []

    def quantities(self, ctx):
        u = ctx.field(self.params.field)
        return {"mean": Quantity.integral(u * ctx.dx(), "dimensionless")}


@pytest.fixture
def exchange_plugin(monkeypatch):
    found = registry.Plugins({"heat": Heat, "scaled_exchange": Exchange}, {})
    monkeypatch.setattr(registry, "discover", lambda: found)


def exchange_case(scale: float, exchange: float = 1.0) -> dict:
    """u (fixed on the left) and w (insulated, held by its exchange with u)."""
    return {
        "mesh": {"type": "rectangle", "cells": [8, 8], "cell": "quadrilateral"},
        "physics": {
            "u": {"type": "scaled_exchange", "field": "u", "partner": "w", "fixed": "left"},
            "w": {
                "type": "scaled_exchange",
                "field": "w",
                "partner": "u",
                "scale": scale,
                "exchange": exchange,
            },
        },
    }


def means(case: dict) -> tuple[float, float]:
    q = Simulation.from_case(case).run().quantities
    return q["u_mean"][-1], q["w_mean"][-1]


@pytest.mark.usefixtures("exchange_plugin")
@pytest.mark.parametrize("scale", [1e-12, 1e12])
def test_badly_scaled_regular_system_is_solved(scale: float):
    """w's equation multiplied by 1e-12 (or 1e12), as fields in SI units differ: the same
    solution, not 'singular' (without row and column equilibration the factorisation breaks
    down on these rows)."""
    reference = means(exchange_case(1.0))
    assert means(exchange_case(scale)) == pytest.approx(reference, rel=1e-10)
    assert reference[1] - reference[0] == pytest.approx(1.0, rel=1e-10)  # w - u = s/k on average


@pytest.mark.usefixtures("exchange_plugin")
def test_weakly_held_field_is_solved():
    """An insulated field held only by an exchange 1e-9 of its conductance is regular: its mean
    follows from the balance, int k (w - u) = int s, so w - u = 1/k on average."""
    u, w = means(exchange_case(1.0, exchange=1e-9))
    assert w - u == pytest.approx(1e9, rel=1e-4)  # conditioned like 1e9: digits go


def insulated_heat(mesh: dict, degree: int = 1, conductivity: float = 45.0) -> dict:
    heat = {"degree": degree, "conductivity": conductivity, "source": "1e3*(x - 0.15)"}
    return {"mesh": mesh, "physics": {"heat": heat}}


MESHES = {
    "interval": {"type": "interval", "length": [0.3], "cells": [8]},
    "triangles": {"type": "rectangle", "length": [0.3, 0.17], "cells": [12, 7]},
    "quadrilaterals": {
        "type": "rectangle",
        "length": [0.3, 0.17],
        "cells": [12, 7],
        "cell": "quadrilateral",
    },
    "box": {"type": "box", "length": [0.3, 0.17, 0.1], "cells": [5, 4, 3]},
}


@pytest.mark.parametrize("mesh", list(MESHES))
@pytest.mark.parametrize(("degree", "conductivity"), [(1, 45.0), (1, 1e-6), (2, 45.0)])
def test_singular_operator_is_refused_on_every_cell_type(mesh: str, degree: int, conductivity):
    """Steady heat with insulated sides: T + constant solves it too. MUMPS's default null-pivot
    threshold (1e-5 machine epsilons of the matrix norm) found the round-off pivot only on some
    meshes and conductivities; quadrilaterals and boxes 'completed' with an arbitrary T."""
    with pytest.raises(SolverError, match=r"singular operator \(1 null pivot"):
        Simulation.from_case(insulated_heat(MESHES[mesh], degree, conductivity)).run()


@pytest.mark.mpi
def test_singular_operator_is_refused_on_two_ranks(tmp_path):
    case = tmp_path / "insulated.toml"
    case.write_text(
        """
[mesh]
type = "rectangle"
length = [0.3, 0.17]
cells = [24, 14]
cell = "quadrilateral"
[physics.heat]
conductivity = 45
source = "1e3*(x - 0.15)"
"""
    )
    process = scalebridge("run", case, "-o", tmp_path / "out", "-q", ranks=2)
    assert process.returncode == 1, process.stderr
    assert "singular operator" in process.stderr
    assert "Traceback" not in process.stderr


NO_SOLVE = """
[mesh]
type = "interval"
cells = [8]
[physics.heat]
conductivity = "1 + temperature**2/1e4"
initial = 300
boundaries.right = { type = "convection", h = 10.0, ambient = 300.0 }
"""


@pytest.mark.parametrize("preset", ["direct", "gmres_ilu", "cg_gamg", "fieldsplit"])
def test_a_run_without_a_linear_solve_leaves_no_unused_options(tmp_path, preset: str):
    """T = 300 K is already the steady solution, so Newton converges at its first residual and
    no factorisation or preconditioner is ever set up: PETSc used to warn at exit that the MUMPS
    control (mat_mumps_icntl_24) or the split solvers' options were never used."""
    case = tmp_path / "settled.toml"
    text = NO_SOLVE
    if preset == "fieldsplit":  # needs a group of two fields
        text += '[physics.electrostatics]\nmode = "conduction"\nconductivity = "1 + 0*temperature"'
        text += '\nboundaries.left = { type = "potential", value = 0 }\n'
    case.write_text(text)
    out = tmp_path / "out"
    process = scalebridge("run", case, "-o", out, "-q", "--set", f"solver.preset={preset}")
    assert process.returncode == 0, process.stderr
    assert read_quantities(out)["newton_iterations"] == [0.0]
    assert UNUSED_OPTIONS not in process.stdout + process.stderr
