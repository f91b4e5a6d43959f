"""Studies: Sobol', Morris, polynomial chaos and uncertainty propagation against closed forms.

The heated rod (cases/heated_rod.toml) has heat_flow_left = k (T_R - T_L)/L + q L/2 exactly in
its discrete solution, so the variance decomposition over independent uniform inputs is known:
a term c*X with X ~ U(a, b) contributes c^2 (b - a)^2 / 12; a product (k/L)*dT contributes
E[dT]^2 Var k / L^2 and E[k]^2 Var dT / L^2 alone and Var k Var dT / L^2 together.
"""

from pathlib import Path

import numpy as np
import pytest
import tomli_w

from app.simulation import Simulation
from app.studies.runner import Study
from tests.conftest import CASES

STUDIES = CASES / "studies"
LENGTH = 0.5  # m, cases/heated_rod.toml
LEFT, RIGHT, SOURCE, CONDUCTIVITY = (
    "physics.heat.boundaries.left.value",
    "physics.heat.boundaries.right.value",
    "physics.heat.source",
    "physics.heat.conductivity",
)


def rod_case() -> dict:
    """The heated rod's constants, read from its case (SI)."""
    case = Simulation.from_case(CASES / "heated_rod.toml").loaded.resolved()["physics"]["heat"]
    return {
        CONDUCTIVITY: case["conductivity"],
        LEFT: case["boundaries"]["left"]["value"],
        RIGHT: case["boundaries"]["right"]["value"],
        SOURCE: case["source"],
    }


def heat_flow(values: dict) -> float:
    """The closed form of the rod's heat flow out through its left end."""
    conduction = values[CONDUCTIVITY] * (values[RIGHT] - values[LEFT]) / LENGTH
    return conduction + values[SOURCE] * LENGTH / 2


def uniform(spec, name) -> tuple[float, float]:
    """Mean and variance of a uniform parameter of a study."""
    parameter = spec.parameters[name]
    return (parameter.lower + parameter.upper) / 2, (parameter.upper - parameter.lower) ** 2 / 12


def coefficients() -> dict[str, float]:
    """d(heat_flow_left)/d(input) for T_L, T_R and q."""
    k = rod_case()[CONDUCTIVITY]
    return {LEFT: -k / LENGTH, RIGHT: k / LENGTH, SOURCE: LENGTH / 2}


def additive_variances(spec) -> np.ndarray:
    """Each input's share of the variance of heat_flow_left over T_L, T_R, q."""
    return np.array([coefficients()[n] ** 2 * uniform(spec, n)[1] for n in spec.parameters])


def additive_indices(spec) -> np.ndarray:
    """Sobol' indices of heat_flow_left over T_L, T_R, q (no interactions: S1 = ST)."""
    variances = additive_variances(spec)
    return variances / variances.sum()


def interaction_indices(spec) -> tuple[np.ndarray, np.ndarray]:
    """First-order and total indices over k, T_L, q of (k/L)(T_R - T_L) + q L/2."""
    right = rod_case()[RIGHT]
    mean_k, var_k = uniform(spec, CONDUCTIVITY)
    mean_left, var_dt = uniform(spec, LEFT)
    mean_dt = right - mean_left
    v_k, v_dt = mean_dt**2 * var_k / LENGTH**2, mean_k**2 * var_dt / LENGTH**2
    v_both = var_k * var_dt / LENGTH**2
    v_q = (LENGTH / 2) ** 2 * uniform(spec, SOURCE)[1]
    total = v_k + v_dt + v_both + v_q
    first = np.array([v_k, v_dt, v_q]) / total
    return first, first + np.array([v_both, v_both, 0.0]) / total


def study_file(tmp_path: Path, source: Path, **changes) -> Path:
    """A copy of a study file with top-level keys (or the method) changed."""
    import tomllib

    data = tomllib.loads(source.read_text())
    data["case"] = str((source.parent / data["case"]).resolve())
    for key, value in changes.items():
        data[key] = value
    path = tmp_path / source.name
    path.write_text(tomli_w.dumps(data))
    return path


def test_heated_rod_case_gives_the_closed_form_heat_flow():
    result = Simulation.from_case(CASES / "heated_rod.toml").run()
    expected = heat_flow(rod_case())
    assert result.quantities["heat_flow_left_W_per_m2"][-1] == pytest.approx(expected, rel=1e-12)


def test_sobol_indices_of_an_additive_output_match_the_closed_form(tmp_path):
    """N = 256 base samples (1,280 runs): within 0.02 of the analytic indices (0.01 here)."""
    path = STUDIES / "heated_rod_sobol.toml"
    study = Study.from_file(path, tmp_path / "sobol")
    table = study.run()
    assert table.completed.all() and len(table) == 256 * (3 + 2)
    expected = additive_indices(study.spec)
    indices = study.analysis["sobol"]["heat_flow_left"]
    assert np.abs(np.array(indices["S1"]) - expected).max() < 0.02
    assert np.abs(np.array(indices["ST"]) - expected).max() < 0.02
    # every member is the closed form (the reused simulation computes what a fresh one does)
    columns = [table.parameters[name] for name in study.names]
    exact = [
        heat_flow(rod_case() | dict(zip(study.names, row, strict=True)))
        for row in zip(*columns, strict=True)
    ]
    assert np.allclose(table.quantities["heat_flow_left"], exact, rtol=1e-12)
    assert (tmp_path / "sobol" / "plots" / "sobol_heat_flow_left.png").stat().st_size > 5000


def test_sobol_indices_with_an_interaction_match_the_closed_form(tmp_path):
    study = Study.from_file(STUDIES / "heated_rod_interaction.toml", tmp_path / "saltelli")
    study.run()
    first, total = interaction_indices(study.spec)
    assert total[0] - first[0] > 0.05  # the interaction is visible at this accuracy
    indices = study.analysis["sobol"]["heat_flow_left"]
    assert np.abs(np.array(indices["S1"]) - first).max() < 0.02
    assert np.abs(np.array(indices["ST"]) - total).max() < 0.02


def test_polynomial_chaos_of_a_bilinear_output_is_exact(tmp_path):
    """Order 2 is exact for (k/L) dT + q L/2: indices, mean and deviation to round-off from 20
    runs (Saltelli needs 1,280 runs for 0.02)."""
    method = {"type": "polynomial_chaos", "order": 2}
    path = study_file(tmp_path, STUDIES / "heated_rod_interaction.toml", method=method)
    study = Study.from_file(path, tmp_path / "pce")
    table = study.run()
    assert len(table) == 20
    first, total = interaction_indices(study.spec)
    chaos = study.analysis["chaos"]["heat_flow_left"]
    assert np.allclose(chaos["S1"], first, atol=1e-8)
    assert np.allclose(chaos["ST"], total, atol=1e-8)
    mean_k, mean_left = uniform(study.spec, CONDUCTIVITY)[0], uniform(study.spec, LEFT)[0]
    mean_flow = mean_k * (rod_case()[RIGHT] - mean_left) / LENGTH
    mean_flow += uniform(study.spec, SOURCE)[0] * LENGTH / 2
    assert chaos["mean"] == pytest.approx(mean_flow, rel=1e-10)


def test_morris_ranks_the_inputs_in_the_analytic_order(tmp_path):
    """A linear output: every elementary effect is exact, mu* = |coefficient| * width."""
    study = Study.from_file(STUDIES / "heated_rod_morris.toml", tmp_path / "morris")
    table = study.run()
    assert len(table) == 10 * (3 + 1)
    widths = {n: p.upper - p.lower for n, p in study.spec.parameters.items()}
    effects = np.array([coefficients()[n] * widths[n] for n in study.names])
    morris = study.analysis["morris"]["heat_flow_left"]
    assert np.allclose(morris["mu"], effects, rtol=1e-9)
    assert np.allclose(morris["sigma"], 0, atol=1e-9 * np.abs(effects).max())
    analytic_rank = np.argsort(np.argsort(-np.abs(effects))) + 1
    assert morris["rank"] == analytic_rank.tolist()
    assert (tmp_path / "morris" / "morris_indices.csv").is_file()


def test_latin_hypercube_propagates_the_mean_and_spread(tmp_path):
    method = {"type": "latin_hypercube", "samples": 64}
    path = study_file(tmp_path, STUDIES / "heated_rod_sobol.toml", method=method)
    study = Study.from_file(path, tmp_path / "lhs")
    study.run()
    row = next(r for r in study.analysis["statistics"] if r["quantity"] == "heat_flow_left")
    mean = heat_flow(rod_case() | {n: uniform(study.spec, n)[0] for n in study.names})
    variance = additive_variances(study.spec).sum()
    assert row["values"] == 64
    assert abs(row["mean"] - mean) < 3 * np.sqrt(variance / 64)
    assert row["std"] == pytest.approx(np.sqrt(variance), rel=0.2)
