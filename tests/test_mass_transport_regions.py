"""mass_transport with a species on a region: one species everywhere, one only in the matrix
(cases/matrix_uptake.toml): the balances of the steady state and 1 vs 2 ranks."""

import numpy as np
import pytest

from app.simulation import Simulation
from tests.conftest import read_quantities, scalebridge
from tests.test_paraview import _NO_PARAVIEW, _array, _run_probe


def nodal(function) -> tuple[np.ndarray, np.ndarray]:
    return function.function_space.tabulate_dof_coordinates()[:, 0], function.x.array


def test_species_on_a_matrix_region_balances(cases):
    """mass_transport with one species everywhere and one only in the matrix region."""
    sim = Simulation.from_case(cases / "matrix_uptake.toml")
    result = sim.run()
    B = result.fields["B"]
    x, _ = nodal(B)
    assert x.min() == pytest.approx(1.0) and x.max() == pytest.approx(2.0)
    q = {name: values[-1] for name, values in result.quantities.items()}
    inflow = -q["transport_outflow_A_left_mol_per_s_per_m2"]
    uptake = 2 * q["transport_amount_A_matrix_mol_per_m2"]
    decay = 0.5 * q["transport_amount_B_mol_per_m2"]
    assert inflow > 0.1
    assert uptake == pytest.approx(inflow, rel=1e-10)
    assert decay == pytest.approx(uptake, rel=1e-10)


def test_matrix_uptake_on_two_ranks(tmp_path, cases):
    runs = []
    for ranks in (1, 2):
        out = tmp_path / f"ranks{ranks}"
        run = scalebridge("run", cases / "matrix_uptake.toml", "-o", out, ranks=ranks)
        assert run.returncode == 0, run.stderr[-2000:]
        runs.append(read_quantities(out))
    for name, values in runs[0].items():
        np.testing.assert_allclose(runs[1][name], values, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.skipif(_NO_PARAVIEW is not None, reason=_NO_PARAVIEW or "")
def test_region_field_opens_in_paraview_on_its_own_mesh(tmp_path, cases):
    """B is written to fields_matrix.xdmf on the matrix's 20 cells, with the CSV's range."""
    out = tmp_path / "run"
    run = scalebridge("run", cases / "matrix_uptake.toml", "-o", out, "-q")
    assert run.returncode == 0, run.stderr[-2000:]
    report, output = _run_probe(out / "fields_matrix.xdmf")
    grids = {(block["points"], block["cells"]) for block in report["blocks"]}
    assert grids == {(21, 20)}, output
    quantities = read_quantities(out)
    B = _array(report, "point", "B")
    expected = [quantities[f"transport_{kind}_B_mol_per_m3"][-1] for kind in ("min", "max")]
    assert B["range"] == pytest.approx(expected, rel=1e-6), output
    whole, output = _run_probe(out / "fields.xdmf")
    assert {block["points"] for block in whole["blocks"]} == {41}, output
    assert "B" not in {a for block in whole["blocks"] for a in block["point_arrays"]}, output
