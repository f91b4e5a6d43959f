"""Surrogates serving macro models: refresh against the FE2 reference, closed forms, ranks,
database reuse (app.multiscale with cases/mineralisation_front.toml)."""

import numpy as np
import pytest

from app import Simulation
from app.multiscale import laws
from tests.conftest import (
    CASES,
    assert_same_quantities,
    read_quantities,
    runs_on_ranks,
    scalebridge,
)

FRONT = CASES / "mineralisation_front.toml"
COMPARED = [
    "transport_amount_A_mol_per_m2",
    "transport_outflow_A_left_mol_per_s_per_m2",
    "transport_generated_A_mol_per_s_per_m2",
    "chemistry_amount_B_mol_per_m2",
    "chemistry_amount_mineral_mol_per_m2",
]


def front(**overrides) -> dict[str, np.ndarray]:
    return Simulation.from_case(FRONT, overrides=overrides).run().quantities


def worst(run: dict, reference: dict) -> float:
    """Largest deviation over the compared columns and output times, relative to each
    column's largest value."""
    return max(
        float(np.max(np.abs(run[c] - reference[c])) / np.max(np.abs(reference[c])))
        for c in COMPARED
    )


def test_front_with_refresh_matches_fe2_with_a_few_percent_of_its_rve_solves():
    adaptive = front()
    fe2 = front(**{"surrogates.mineral.mode": "direct"})
    frozen = front(**{"surrogates.mineral.refresh": False})
    solves = adaptive["surrogate_mineral_rve_solves"]
    design = 4  # the case's initial design
    assert solves[0] == design and solves[-1] > design  # the front drove refreshes
    assert solves[-1] <= 0.05 * fe2["surrogate_mineral_rve_solves"][-1]
    assert fe2["surrogate_mineral_calls"][-1] == 0
    assert adaptive["chemistry_max_mineral"][-1] == pytest.approx(0.3, rel=1e-6)  # beyond 0.1
    error, frozen_error = worst(adaptive, fe2), worst(frozen, fe2)
    print(f"surrogate vs FE2 {error:.2e}; frozen at its design {frozen_error:.2e}")
    assert error < 5e-3
    assert frozen_error > 5e-3 and frozen_error > 20 * error
    assert frozen["surrogate_mineral_rve_solves"][-1] == design
    assert adaptive["surrogate_mineral_max_uncertainty"].max() < 0.003  # the case's tolerance
    assert frozen["surrogate_mineral_max_uncertainty"].max() > 0.003


@pytest.mark.mpi
def test_front_is_the_same_on_two_ranks_and_a_rerun_reuses_the_database(tmp_path):
    serial, parallel = runs_on_ranks(FRONT, tmp_path)
    assert_same_quantities(serial, parallel, rtol=1e-8)
    assert serial["surrogate_mineral_rve_solves"][-1] > 4
    database = tmp_path / "np1" / "surrogate_mineral.jsonl"
    records = database.read_text().splitlines()
    assert len(records) == serial["surrogate_mineral_rve_solves"][-1]
    again = tmp_path / "again"
    process = scalebridge(
        "run", FRONT, "-o", again, "-q", "--set", f"surrogates.mineral.database={database}"
    )
    assert process.returncode == 0, process.stderr
    rerun = read_quantities(again)
    assert set(rerun["surrogate_mineral_rve_solves"]) == {0.0}
    # fitted on all records from the start rather than refreshed on the way: the same answer
    # to well within the surrogate's tolerance
    for column in COMPARED:
        assert rerun[column] == pytest.approx(serial[column], rel=1e-5, abs=1e-12)
    assert (again / "surrogate_mineral.png").stat().st_size > 10_000


LAMINATE_WALL = """
title = "Heat through a laminate, its conductivity from a cell"

[mesh]
type = "rectangle"
length = [2.0, 1.0]
cells = [8, 4]

[physics.heat]
conductivity = {{ surrogate = "layers" }}
boundaries.{hot} = {{ type = "temperature", value = 400 }}
boundaries.{cold} = {{ type = "temperature", value = 300 }}

[surrogates.layers]
microstructure = "{root}/meshes/rve_laminate.py"
parameters = {{ volume_fraction = 0.3 }}
property = "conductivity"
matrix = "1 W/(m*K)"
inclusion = "10 W/(m*K)"
degree = 1
mesh_size = 0.25
"""


@pytest.mark.parametrize(
    ("hot", "cold", "law", "width", "length"),
    [("left", "right", laws.reuss, 1.0, 2.0), ("bottom", "top", laws.voigt, 2.0, 1.0)],
)
def test_layers_conduct_in_series_across_and_in_parallel_along(
    tmp_path, hot, cold, law, width, length
):
    """Layers normal to x: a tensor conductivity diag(Reuss, Voigt) in heat's equation."""
    case = tmp_path / "wall.toml"
    case.write_text(LAMINATE_WALL.format(hot=hot, cold=cold, root=CASES.parent))
    result = Simulation.from_case(case).run(tmp_path / "run")
    flow = result.quantities[f"heat_flow_{cold}_W_per_m"][-1]
    exact = law(1.0, 10.0, 0.3) * 100.0 * width / length
    assert flow == pytest.approx(exact, rel=1e-9)
    assert result.quantities["surrogate_layers_rve_solves"][-1] == 1
    assert result.fields["layers_tensor"].x.array.reshape(-1, 2, 2)[:, 0, 1] == pytest.approx(0)


GRADED_PLATE = """
title = "A plate whose fibre fraction grows along it, pulled at its end"

[mesh]
type = "rectangle"
length = [1.0, 0.2]
cells = [10, 2]

[physics.mechanics]
formulation = "plane_strain"
youngs_modulus = {{ surrogate = "fibres" }}
poisson_ratio = {{ surrogate = "fibres" }}
boundaries.left = {{ type = "displacement", x = 0 }}
boundaries.bottom = {{ type = "displacement", y = 0 }}
boundaries.right = {{ type = "displacement", x = 1e-3 }}

[surrogates.fibres]
microstructure = "{root}/meshes/rve_inclusion.py"
descriptors = {{ volume_fraction = "0.05 + 0.3*x" }}
property = "elasticity"
matrix = {{ youngs_modulus = "3 GPa", poisson_ratio = 0.35 }}
inclusion = {{ youngs_modulus = "70 GPa", poisson_ratio = 0.22 }}
tolerance = 0.002
mesh_size = 0.1
design = {{ points = 4 }}
limits = {{ volume_fraction = [0, 0.5] }}
"""


def test_graded_plate_stiffness_matches_fe2_and_the_fibre_bounds(tmp_path):
    case = tmp_path / "plate.toml"
    case.write_text(GRADED_PLATE.format(root=CASES.parent))
    adaptive = Simulation.from_case(case).run().quantities
    fe2 = Simulation.from_case(case, {"surrogates.fibres.mode": "direct"}).run().quantities
    for column in ("reaction_left_x_N_per_m", "strain_energy_J_per_m"):
        assert adaptive[column][-1] == pytest.approx(fe2[column][-1], rel=5e-3)
    assert adaptive["surrogate_fibres_rve_solves"][-1] < fe2["surrogate_fibres_rve_solves"][-1]
    # a bar in series under uniaxial in-plane stress (plane strain: E' = 4 G k/(k + G), k the
    # in-plane bulk modulus K + G/3), its moduli between the Reuss and Voigt bounds
    x = np.linspace(0, 1, 2001)
    f = 0.05 + 0.3 * x
    matrix, fibre = (3e9 / 2.7, 3e9 / 0.9), (70e9 / 2.44, 70e9 / 1.68)  # (G, K)

    def bar(bound) -> float:
        shear, bulk = (bound(m, i, f) for m, i in zip(matrix, fibre, strict=True))
        planar = bulk + shear / 3
        modulus = 4 * shear * planar / (planar + shear)
        return 1e-3 * 0.2 / np.trapezoid(1 / modulus, x)  # end force for 1 mm, per metre

    force = -adaptive["reaction_left_x_N_per_m"][-1]
    assert bar(laws.reuss) < force < bar(laws.voigt)


KIRCHHOFF = """
title = "Steady conduction whose layered conductivity depends on the temperature"

[mesh]
type = "interval"
cells = [100]

[physics.heat]
conductivity = {{ surrogate = "layers" }}
boundaries.left = {{ type = "temperature", value = 400 }}
boundaries.right = {{ type = "temperature", value = 300 }}

[surrogates.layers]
microstructure = "{root}/meshes/rve_laminate.py"
descriptors = {{ volume_fraction = "0.1 + 0.004*(temperature - 300)" }}
property = "conductivity"
matrix = 1.0
inclusion = 10.0
degree = 1
mesh_size = 0.25
tolerance = 1e-6
iterations = 40
design = {{ points = 3, range = {{ volume_fraction = [0.1, 0.5] }} }}
"""


def test_a_steady_state_dependent_property_is_iterated_to_kirchhoffs_solution(tmp_path):
    """Steady runs take a step's properties from its end state, solving again until they
    settle. Layers across the flow conduct as Reuss(f), f = 0.1 + 0.004 (T - 300): the heat
    flux is the Kirchhoff integral (1/L) int_300^400 k(T) dT = (2500/9) ln(9.1/5.5)."""
    case = tmp_path / "kirchhoff.toml"
    case.write_text(KIRCHHOFF.format(root=CASES.parent))
    quantities = Simulation.from_case(case).run().quantities
    assert quantities["heat_flow_right_W_per_m2"][-1] == pytest.approx(
        2500 / 9 * np.log(9.1 / 5.5), rel=1e-5
    )
    assert quantities["newton_iterations"][-1] > 2  # solved again as the properties moved
    assert quantities["surrogate_layers_rve_solves"][-1] == 3  # the design: layers are exact
