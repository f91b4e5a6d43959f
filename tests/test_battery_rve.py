"""cases/battery_discharge_rve.toml: the DFN whose electrodes' electrolyte transport factor
eps/tau comes from RVEs of a particle packing through a surrogate (issue 17), against the same
case with the served factors written as constants, against Bruggeman's eps^1.5
(cases/battery_discharge.toml), and on 2 ranks. Small meshes (tests/battery.py SMALL_MESH) and
coarse RVEs (the case's mesh_size 0.3, P2: about 1 s each)."""

import tomllib

import numpy as np
import pytest

from tests.battery import CASE, SMALL_MESH, discharge
from tests.conftest import ROOT, scalebridge

RVE_CASE = ROOT / "cases" / "battery_discharge_rve.toml"
#: the script by absolute path: the tests run a copy of the case from another folder
SCRIPT = f"surrogates.packing.microstructure={ROOT / 'meshes' / 'rve_particles.py'}"
SERVED = (
    'transport_factor = { negative = { surrogate = "packing" }, separator = "eps_s**b_e_s", '
    'positive = { surrogate = "packing" } }'
)
#: what the surrogate case changes in the electrolyte's two instances
ELECTROLYTE = {
    "electrolyte": {"effective_diffusivity", "transport_factor", "exponent"},
    "electrolyte_potential": {"conductivity", "transport_factor"},
}
PREFIX = "transport_factor_"  # the case's quantities of the served factors


def test_shared_sections_follow_battery_discharge():
    """No include mechanism for cases: the copy is kept equal here. Every section of the
    discharge is in the RVE case unchanged but the electrolyte's transport; the RVE case adds
    the porosity field its surrogate reads, the surrogate and the served factors' quantities."""
    discharge_case, rve = (tomllib.loads(path.read_text()) for path in (CASE, RVE_CASE))
    for name in ("parameters", "mesh", "time", "solver", "protocol", "events"):
        assert rve[name] == discharge_case[name], name
    assert set(rve["physics"]) - set(discharge_case["physics"]) == {"microstructure"}
    for name, section in discharge_case["physics"].items():
        changed = ELECTROLYTE.get(name, set())
        mine = {k: v for k, v in rve["physics"][name].items() if k not in changed}
        assert mine == {k: v for k, v in section.items() if k not in changed}, name
    assert rve["physics"]["electrolyte_potential"]["conductivity"] == "kappa_e(c_e, T_amb)"
    assert set(rve["surrogates"]) == {"packing"}
    output, theirs = dict(rve["output"]), dict(discharge_case["output"])
    quantities = output.pop("quantities")
    assert {k: v for k, v in quantities.items() if not k.startswith(PREFIX)} == theirs.pop(
        "quantities"
    )
    assert output == theirs


def constant_factors(folder, factors: dict[str, float]):
    """The RVE case with the factors written as constants per region, without the surrogate."""
    text = RVE_CASE.read_text()
    negative, positive = (repr(float(factors[region])) for region in ("negative", "positive"))
    constant = (
        f'transport_factor = {{ negative = {negative}, separator = "eps_s**b_e_s", '
        f"positive = {positive} }}"
    )
    assert text.count(SERVED) == 2, "the case's transport factors moved: update this test"
    text = text.replace(SERVED, constant)
    section = text.index("[surrogates.packing]")
    text = text[:section] + text[text.index("[time]", section) :]
    text = "\n".join(line for line in text.splitlines() if not line.startswith(PREFIX))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "battery_constant_factors.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """quantities at every step of the full 1C discharge: surrogate, constants, Bruggeman."""
    folder = tmp_path_factory.mktemp("battery_rve")
    served = discharge(folder / "served", *SMALL_MESH, SCRIPT, case=RVE_CASE)
    factors = {region: served[f"{PREFIX}{region}"][-1] for region in ("negative", "positive")}
    case = constant_factors(folder / "constant", factors)
    constant = discharge(folder / "constant", *SMALL_MESH, case=case)
    bruggeman = discharge(folder / "bruggeman", *SMALL_MESH)
    return {"served": served, "constant": constant, "bruggeman": bruggeman, "folder": folder}


def test_the_served_factors_give_the_voltage_of_the_same_constants(runs):
    served, constant = runs["served"], runs["constant"]
    assert len(served["time_s"]) == len(constant["time_s"])
    assert np.abs(served["time_s"] - constant["time_s"]).max() < 1e-9
    assert np.abs(served["voltage_V"] - constant["voltage_V"]).max() < 1e-9
    capacity = served["discharge_capacity_Ah"][-1]
    assert capacity == pytest.approx(constant["discharge_capacity_Ah"][-1], rel=1e-10)


def test_the_surrogate_serves_the_electrodes_only_and_refreshes_little(runs):
    """One state per electrode, evaluated on the electrodes' (8 + 8) x 6 cells of the (x, r)
    mesh, not the separator's; the factor is constant in time (the porosity is), so the RVEs
    are the initial design's four and at most one refresh per electrode's state."""
    served = runs["served"]
    assert served[f"{PREFIX}negative"] == pytest.approx(served[f"{PREFIX}negative"][0], rel=1e-14)
    assert served["surrogate_packing_calls"][0] == (8 + 8) * 6
    assert 4 <= served["surrogate_packing_rve_solves"][-1] <= 6
    assert served["surrogate_packing_max_uncertainty"][-1] < 0.003  # the case's tolerance


def test_against_bruggeman_the_packing_conducts_more_and_delivers_more(runs):
    """eps/tau of the packing lies above eps^1.5 at both electrodes' porosities (0.25, 0.335;
    tests/test_rve_particles.py: by 3.0 % and 1.7 %), so the electrolyte's losses are smaller:
    the capacity to the cut-off and the voltage are higher than Bruggeman's, by little (the
    electrolyte is not what limits a 1C discharge of this cell)."""
    served, bruggeman = runs["served"], runs["bruggeman"]
    eps = {"negative": 0.25, "positive": 0.335}  # Chen2020
    for region, porosity in eps.items():
        ratio = served[f"{PREFIX}{region}"][-1] / porosity**1.5
        assert 1.005 < ratio < 1.05, region
    gained = served["discharge_capacity_Ah"][-1] / bruggeman["discharge_capacity_Ah"][-1] - 1
    assert 0 < gained < 1e-3
    halfway = 1800.0
    higher = np.interp(halfway, served["time_s"], served["voltage_V"]) - np.interp(
        halfway, bruggeman["time_s"], bruggeman["voltage_V"]
    )
    assert 0 < higher < 5e-3


def test_two_ranks_and_a_reused_database(runs):
    """The first five minutes on 2 ranks (the design's RVEs split over two groups of one
    rank) give the 1-rank run's voltage; a run reusing the 1-rank run's database solves no
    RVE and serves the same factors."""
    folder, served = runs["folder"], runs["served"]
    short = 'protocol.steps=["Discharge at 1C for 5 minutes"]'
    parallel = discharge(folder / "np2", *SMALL_MESH, SCRIPT, short, ranks=2, case=RVE_CASE)
    # the short run steps toward its end in equal parts from two steps (2 minutes) before it
    # (app/step_control.py landing_step), where the longer one steps on: compare before that
    before = served["time_s"] < parallel["time_s"][-1] - 120
    rows = int(before.sum())
    assert rows > 5
    assert parallel["time_s"][:rows] == pytest.approx(served["time_s"][:rows], rel=1e-12)
    assert np.abs(parallel["voltage_V"][:rows] - served["voltage_V"][:rows]).max() < 1e-9
    database = folder / "served" / "run" / "surrogate_packing.jsonl"
    reuse = f"surrogates.packing.database={database}"
    again = discharge(folder / "reuse", *SMALL_MESH, SCRIPT, short, reuse, case=RVE_CASE)
    assert again["surrogate_packing_rve_solves"][-1] == 0
    for region in ("negative", "positive"):
        column = f"{PREFIX}{region}"
        assert again[column][-1] == pytest.approx(served[column][-1], rel=1e-12)


@pytest.mark.parametrize(
    ("setting", "where", "expected"),
    [
        (
            'physics.electrolyte.transport_factor.negative={ surrogate = "packign" }',
            "physics.electrolyte.transport_factor.negative",
            "unknown surrogate 'packign' (did you mean 'packing'?)",
        ),
        (
            'physics.electrolyte_potential.transport_factor.positive={ surrogate = "packing", '
            'component = "tensor" }',
            "physics.electrolyte_potential.transport_factor",
            "this parameter takes a scalar, not a tensor",
        ),
        (
            'surrogates.packing.descriptors={ volume_fraction = "1 - porosty" }',
            "surrogates.packing.descriptors.volume_fraction",
            "unknown name 'porosty'",
        ),
    ],
)
def test_bad_inputs_exit_2_naming_the_path(tmp_path, setting, where, expected):
    run = scalebridge("check", RVE_CASE, "--set", SCRIPT, "--set", setting, cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert f"{where}" in run.stderr and expected in run.stderr, run.stderr
