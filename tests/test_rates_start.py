"""The rates at the start (app/rates.py) solved in the step solver's matrix before its first
assembly: the same reactions as in a matrix of their own, one sparsity pattern and matrix fewer.

Under BDF only the first row uses the rates; under Crank-Nicolson every row does, in a matrix of
their own from the start (assembled once); both are compared with rates that never borrow.
"""

import dolfinx.fem.petsc as fem_petsc
import pytest

from app.rates import Rates
from app.simulation import Simulation
from tests.conftest import ROOT, assert_same_quantities, runs_on_ranks

CASE = ROOT / "benchmarks" / "heat_3d.toml"
SMALL = ["mesh.cells=[8,8,8]", "time.end=300", "output.interval=60"]


def _run(monkeypatch, scheme: str, borrow: bool) -> tuple[int, dict]:
    """(matrices created, quantities) of the heat benchmark at 8^3."""
    created = []
    original = fem_petsc.create_matrix

    def counted(*args, **kwargs):
        created.append(1)
        return original(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(fem_petsc, "create_matrix", counted)
        if not borrow:
            patch.setattr(Rates, "_borrowable", lambda self, step_solver: None)
        sim = Simulation.from_case(CASE, [*SMALL, f'time.scheme="{scheme}"'])
        quantities = sim.run().quantities
    return len(created), quantities


@pytest.mark.parametrize("scheme", ["bdf1", "cn"])
def test_rates_in_the_step_matrix_give_the_same_reactions(monkeypatch, scheme):
    borrowed, quantities = _run(monkeypatch, scheme, borrow=True)
    own, reference = _run(monkeypatch, scheme, borrow=False)
    assert quantities["heat_flow_left_W"][0] > 0  # heat drawn by the cold plate at t = 0
    for column, values in reference.items():
        assert list(quantities[column]) == list(values), column
    # BDF: the step operator only (the stored right-hand side shares its pattern); CN needs
    # the rates at every row and keeps their own matrix from the start
    assert (borrowed, own) == ((1, 2) if scheme == "bdf1" else (2, 2))


def test_the_start_on_two_ranks_as_on_one(tmp_path):
    serial, parallel = runs_on_ranks(CASE, tmp_path, *(f"--set={item}" for item in SMALL))
    # the rates at t = 0 are solved to round-off; the steps to CG's rtol 1e-8, on other
    # partitions
    assert_same_quantities(
        {k: v[:1] for k, v in serial.items()}, {k: v[:1] for k, v in parallel.items()}, rtol=1e-10
    )
    assert_same_quantities(serial, parallel, rtol=1e-6)
