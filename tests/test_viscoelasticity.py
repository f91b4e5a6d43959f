"""Viscoelasticity and incremental elasticity through the whole framework, against closed forms.

- A standard linear solid (cases/viscoelastic_relaxation.toml): relaxation under a step strain
  and creep under a step stress, with the exponential update and with BDF2 on the branches,
  to 1e-6 of the closed forms; the dissipated energy of a relaxation.
- Time-temperature superposition: at a constant temperature the relaxation runs on t/a_T (WLF
  and Arrhenius); a temperature step mid-way switches to the shifted clock there.
- Incremental elasticity (cases/cure_locked_stress.toml): a bar stiffened at a fixed strain
  keeps its stress to round-off; the total form restiffens it.
- 1 and 2 ranks agree.
"""

import math
import tomllib

import numpy as np
import pytest

from app.contracts import GAS_CONSTANT
from app.simulation import Simulation
from app.testing import check_plugin
from tests.conftest import CASES, assert_same_by_units, runs_on_ranks

E_INF, E_1, TAU, STRAIN = 1e9, 2e9, 10.0, 1e-3
AREA, LENGTH = 1e-4, 0.1
TRACTION = 1e6


def relaxation_case(**time) -> dict:
    case = tomllib.loads((CASES / "viscoelastic_relaxation.toml").read_text())
    case["time"] |= time
    return case


def relaxed(t, clock=lambda t: t):
    """sigma(t) of the standard linear solid after a strain step at t = 0; ``clock`` maps time
    to reduced time (a shift factor)."""
    return (E_INF + E_1 * np.exp(-clock(t) / TAU)) * STRAIN


def crept(t):
    """eps(t) of the standard linear solid under a stress step at t = 0."""
    retardation = TAU * (E_INF + E_1) / E_INF
    return TRACTION * (1 / E_INF - E_1 / (E_INF * (E_INF + E_1)) * np.exp(-t / retardation))


def run(case: dict) -> dict[str, np.ndarray]:
    return Simulation.from_case(case, base_dir=CASES).run().quantities


def stress_error(q, exact) -> float:
    """Largest error of the stress after t = 0 (a transient scheme also records the state
    before the step), relative to the instantaneous stress."""
    after = q["time_s"] > 0
    stress = q["reaction_top_y_N"][after] / AREA
    return float(np.abs(stress - exact(q["time_s"][after])).max() / ((E_INF + E_1) * STRAIN))


# Relaxation and creep -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def relaxation():
    return run(relaxation_case())


def test_relaxation_with_the_exponential_update(relaxation):
    """Exact once the strain is held: the error is the first step's ramp, 1 us over tau."""
    assert stress_error(relaxation, relaxed) < 1e-6
    assert relaxation["reaction_top_y_N"][-1] == pytest.approx(relaxed(30.0) * AREA, rel=1e-7)


def test_relaxation_dissipates_the_branch_energy(relaxation):
    """The dashpot turns the branch's energy E_1 eps_0^2/2 into heat: 1 - exp(-2t/tau) of it by
    t (the trapezoidal rule over steps up to tau/20: 0.5 %)."""
    t, dissipated = relaxation["time_s"], relaxation["dissipated_energy_J"]
    energy = E_1 * STRAIN**2 / 2 * AREA * LENGTH
    assert dissipated == pytest.approx(energy * (1 - np.exp(-2 * t / TAU)), rel=5e-3)


def test_viscoelastic_parameters_and_jacobian_in_the_conformance_kit():
    """Prony terms and a shift round-trip through a stored case; J d matches finite
    differences inside a relaxing step (BDF2 on the branches)."""
    case = shifted_case(ARRHENIUS, "375", scheme="bdf2", end=0.5)
    case["physics"]["mechanics"]["viscoelasticity"]["integrator"] = "scheme"
    report = check_plugin("mechanics", case, checks=("schema", "fields", "jacobian"))
    assert "inside one more step" in report.checks["jacobian"]


def test_relaxation_with_bdf2_on_the_branches():
    case = relaxation_case(scheme="bdf2", end=20.0, adaptive={"growth": 1.2, "dt_max": 0.03})
    case["physics"]["mechanics"]["viscoelasticity"]["integrator"] = "scheme"
    assert stress_error(run(case), relaxed) < 1e-6


@pytest.mark.parametrize(
    ("scheme", "integrator", "dt_max"), [("steady", "exponential", 0.1), ("bdf2", "scheme", 0.05)]
)
def test_creep_under_a_step_stress(scheme, integrator, dt_max):
    """A traction held from t = 0: the strain creeps from sigma/(E_inf + E_1) to sigma/E_inf
    with the retardation time tau (E_inf + E_1)/E_inf. Both updates are second order here (the
    strain is not linear in a step): steps up to tau/100 reach 1e-6."""
    case = relaxation_case(scheme=scheme, adaptive={"growth": 1.2, "dt_max": dt_max})
    mechanics = case["physics"]["mechanics"]
    mechanics["viscoelasticity"]["integrator"] = integrator
    mechanics["boundaries"]["top"] = {"type": "traction", "value": [0, TRACTION, 0]}
    q = run(case)
    after = q["time_s"] > 0
    strain = q["displacement_top_y_m"][after] / LENGTH
    exact = crept(q["time_s"][after])
    assert np.abs(strain - exact).max() / exact.max() < 1e-6
    assert strain[-1] > 0.75 * TRACTION / E_INF  # a retardation time later


# Time-temperature superposition ---------------------------------------------------------------
WLF = {"type": "wlf", "reference_temperature": 373.0, "c1": 17.44, "c2": 51.6}
ARRHENIUS = {"type": "arrhenius", "reference_temperature": 373.0, "activation_energy": 2e5}


def wlf(T: float) -> float:
    return 10 ** (-WLF["c1"] * (T - 373.0) / (WLF["c2"] + T - 373.0))


def arrhenius(T: float) -> float:
    return math.exp(ARRHENIUS["activation_energy"] / GAS_CONSTANT * (1 / T - 1 / 373.0))


def shifted_case(shift: dict, temperature: str, **time) -> dict:
    case = relaxation_case(**({"end": 15.0} | time))
    case["physics"]["mechanics"]["viscoelasticity"]["shift"] = shift
    case["physics"]["oven"] = {
        "type": "prescribed",
        "fields": {"temperature": {"units": "K", "value": temperature}},
    }
    return case


@pytest.mark.parametrize(("shift", "factor"), [(WLF, wlf), (ARRHENIUS, arrhenius)])
def test_a_warmer_solid_relaxes_on_the_shifted_clock(shift, factor):
    """At T = 375 K (2 K above the reference) the branch relaxes with tau a_T: a_T = 0.224
    (WLF) or 0.71 (Arrhenius); the curve is the reference one at t/a_T."""
    a_T = factor(375.0)
    assert 0.1 < a_T < 0.9
    q = run(shifted_case(shift, "375"))
    assert stress_error(q, lambda t: relaxed(t, lambda t: t / a_T)) < 1e-6


def test_a_temperature_step_shifts_the_rest_of_the_relaxation():
    """At T_ref until t = 5 s, then 2 K warmer: reduced time t for t <= 5 s, then
    5 s + (t - 5 s)/a_T: the relaxation speeds up from there as the shift factor says."""
    a_T = wlf(375.0)
    q = run(shifted_case(WLF, "373 if t < 5 + 1e-9 else 375", breakpoints=[5.0]))
    clock = lambda t: np.where(t <= 5.0, t, 5.0 + (t - 5.0) / a_T)  # noqa: E731
    assert stress_error(q, lambda t: relaxed(t, clock)) < 1e-6
    unshifted = stress_error(q, relaxed)
    assert unshifted > 0.1  # without the shift the curve would be far off


# Incremental elasticity -----------------------------------------------------------------------
def modulus(alpha):
    """The resin's modulus of cases/cure_locked_stress.toml."""
    return (1 - alpha) * 10e6 + alpha * 2.757e9


def cure(t):
    return 0.2 + 0.8 * np.minimum(t / 600, 1)


def test_stress_built_before_stiffening_stays_locked_in():
    """Incremental form: the stress of the first step, E(alpha(60 s)) eps_0, for ever after (to
    round-off) while E rises 3.5-fold; the total form follows E(alpha(t)) eps_0."""
    case = tomllib.loads((CASES / "cure_locked_stress.toml").read_text())
    q = run(case)
    locked = modulus(cure(60.0)) * STRAIN * AREA
    assert q["reaction_top_y_N"] == pytest.approx(np.full(10, locked), rel=1e-12)
    assert modulus(cure(600.0)) / modulus(cure(60.0)) > 3.5
    case["physics"]["mechanics"]["stress_form"] = "total"
    total = run(case)
    expected = modulus(cure(total["time_s"])) * STRAIN * AREA
    assert total["reaction_top_y_N"] == pytest.approx(expected, rel=1e-12)


def test_incremental_form_without_stiffening_is_the_total_form():
    """With a constant modulus the rate form adds up to C : eps, also when the strain is
    applied in many increments with a thermal eigenstrain."""
    case = tomllib.loads((CASES / "cure_locked_stress.toml").read_text())
    mechanics = case["physics"]["mechanics"]
    mechanics["youngs_modulus"] = 1e9
    mechanics["thermal_expansion"] = 1e-5
    mechanics["boundaries"]["top"]["y"] = "1e-4*t/600"
    case["physics"]["cure"]["fields"]["temperature"] = {"units": "K", "value": "293.15 + t/10"}
    incremental = run(case)
    mechanics["stress_form"] = "total"
    total = run(case)
    assert incremental["reaction_top_y_N"] == pytest.approx(total["reaction_top_y_N"], rel=1e-10)


# Parallel ---------------------------------------------------------------------------------------
@pytest.mark.mpi
def test_viscoelastic_and_incremental_cases_on_one_and_two_ranks(tmp_path):
    for case, shorter in (("viscoelastic_relaxation", "5 s"), ("cure_locked_stress", "3 min")):
        folder = tmp_path / case
        serial, parallel = runs_on_ranks(
            f"cases/{case}.toml", folder, "--set", f"time.end={shorter}"
        )
        assert_same_by_units(serial, parallel, rtol=1e-9)


def test_temperature_from_heat_shifts_the_relaxation():
    """Heat warms the bar at 0.1 K/s from the reference temperature (solved in the same Newton
    system): the branch relaxes on the reduced time xi(t) = int dt/a_T(T(t)). The update takes
    a_T at the end of each step, so the error is first order in dt: halving dt halves it."""
    from scipy.integrate import quad

    def errors(dt_max: float) -> float:
        case = shifted_case(ARRHENIUS, "373")
        del case["physics"]["oven"]
        case["time"] |= {"end": 10.0, "adaptive": {"growth": 1.2, "dt_max": dt_max}}
        case["physics"]["heat"] = {
            "density": 1000.0,
            "specific_heat": 1000.0,
            "source": 1e5,
            "initial": 373.0,
        }
        case["time"]["scheme"] = "bdf1"  # T is linear in t: exact
        q = run(case)

        def clock(times):
            rate = lambda s: 1 / arrhenius(373.0 + 0.1 * s)  # noqa: E731
            return np.array([quad(rate, 0, t, epsabs=0, epsrel=1e-13)[0] for t in times])

        assert q["max_temperature_K"][-1] == pytest.approx(374.0, rel=1e-12)
        return stress_error(q, lambda t: relaxed(t, clock))

    coarse, fine = errors(0.5), errors(0.25)  # 9.1e-4 and 4.9e-4
    assert fine < 1e-3
    assert 1.6 < coarse / fine < 2.4
