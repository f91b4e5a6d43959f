"""Block preconditioning of multi-field groups (PETSc fieldsplit on a nest matrix).

The ``fieldsplit`` preset must reproduce the direct solution of the same coupled system: the
Joule-heating case (Newton over potential and temperature) and a linear group over a field on
the whole mesh and one on a region's submesh.
"""

import pytest

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import CASES
from tests.region_plugin import coupled_case, use_plugin


def final(result) -> dict[str, float]:
    return {name: values[-1] for name, values in result.quantities.items()}


def compare(case, overrides: dict) -> tuple[dict, dict, Simulation]:
    direct = Simulation.from_case(case, {**overrides, "solver.preset": "direct"}).run()
    split_sim = Simulation.from_case(case, {**overrides, "solver.preset": "fieldsplit"})
    split = split_sim.run()
    return final(direct), final(split), split_sim


def test_fieldsplit_matches_direct_on_joule_heating():
    overrides = {"solver.rtol": 1e-12, "time.end": "20 s"}
    direct, split, sim = compare(CASES / "joule_heating.toml", overrides)
    assert "solver fieldsplit" in sim.describe_solvers()
    for name, value in direct.items():
        if name not in ("linear_iterations", "iterations"):
            assert split[name] == pytest.approx(value, rel=1e-8, abs=1e-12), name
    assert split["linear_iterations"] > direct["linear_iterations"]  # a Krylov method ran


def test_fieldsplit_matches_direct_across_a_region(monkeypatch):
    use_plugin(monkeypatch)
    direct, split, _ = compare(coupled_case(), {"solver.rtol": 1e-12})
    for name, value in direct.items():
        if name not in ("linear_iterations", "iterations"):
            assert split[name] == pytest.approx(value, rel=1e-8, abs=1e-12), name


def test_fieldsplit_needs_several_fields():
    with pytest.raises(CaseError, match=r"solver\.preset"):
        Simulation.from_case(CASES / "slab_cooling.toml", {"solver.preset": "fieldsplit"}).run()
