"""The shipped parameter sets against PyBaMM's own: every constant and every function (at
sample points, evaluated through PyBaMM) to 1e-12 relative, and the initial stoichiometries of
``initial_soc``/``initial_voltage`` against PyBaMM's ``set_initial_state`` algorithm to 1e-10."""

from pathlib import Path

import numpy as np
import pytest

from app.parameter_resolution import resolve

pybamm = pytest.importorskip("pybamm")

SETS = ("Chen2020", "Marquis2019")

#: Our name -> PyBaMM's parameter name (and a factor from ours to PyBaMM's unit).
CONSTANTS = {
    "L_cn": "Negative current collector thickness [m]",
    "L_n": "Negative electrode thickness [m]",
    "L_s": "Separator thickness [m]",
    "L_p": "Positive electrode thickness [m]",
    "L_cp": "Positive current collector thickness [m]",
    "L_z": "Electrode height [m]",
    "L_y": "Electrode width [m]",
    "A_cool": "Cell cooling surface area [m2]",
    "V_cell": "Cell volume [m3]",
    "n_parallel": "Number of electrodes connected in parallel to make a cell",
    "n_series": "Number of cells connected in series to make a battery",
    "Q_nom": ("Nominal cell capacity [A.h]", 1 / 3600),
    "I_app": "Current function [A]",
    "R_contact": "Contact resistance [Ohm]",
    "V_min": "Lower voltage cut-off [V]",
    "V_max": "Upper voltage cut-off [V]",
    "V_ocv_0": "Open-circuit voltage at 0% SOC [V]",
    "V_ocv_100": "Open-circuit voltage at 100% SOC [V]",
    "sigma_cn": "Negative current collector conductivity [S.m-1]",
    "sigma_cp": "Positive current collector conductivity [S.m-1]",
    "rho_cn": "Negative current collector density [kg.m-3]",
    "rho_cp": "Positive current collector density [kg.m-3]",
    "cp_cn": "Negative current collector specific heat capacity [J.kg-1.K-1]",
    "cp_cp": "Positive current collector specific heat capacity [J.kg-1.K-1]",
    "lambda_cn": "Negative current collector thermal conductivity [W.m-1.K-1]",
    "lambda_cp": "Positive current collector thermal conductivity [W.m-1.K-1]",
    "c_e_init": "Initial concentration in electrolyte [mol.m-3]",
    "t_plus": "Cation transference number",
    "TDF": "Thermodynamic factor",
    "T_ref": "Reference temperature [K]",
    "T_amb": "Ambient temperature [K]",
    "T_init": "Initial temperature [K]",
    "h_total": "Total heat transfer coefficient [W.m-2.K-1]",
    "eps_s": "Separator porosity",
    "b_e_s": "Separator Bruggeman coefficient (electrolyte)",
    "rho_s": "Separator density [kg.m-3]",
    "cp_s": "Separator specific heat capacity [J.kg-1.K-1]",
    "lambda_s": "Separator thermal conductivity [W.m-1.K-1]",
    "c_n_init": "Initial concentration in negative electrode [mol.m-3]",
    "c_p_init": "Initial concentration in positive electrode [mol.m-3]",
}
for k, electrode in (("n", "Negative"), ("p", "Positive")):
    CONSTANTS |= {
        f"sigma_{k}": f"{electrode} electrode conductivity [S.m-1]",
        f"c_max_{k}": f"Maximum concentration in {electrode.lower()} electrode [mol.m-3]",
        f"eps_{k}": f"{electrode} electrode porosity",
        f"eps_act_{k}": f"{electrode} electrode active material volume fraction",
        f"R_{k}": f"{electrode} particle radius [m]",
        f"b_e_{k}": f"{electrode} electrode Bruggeman coefficient (electrolyte)",
        f"b_s_{k}": f"{electrode} electrode Bruggeman coefficient (electrode)",
        f"alpha_{k}": f"{electrode} electrode charge transfer coefficient",
        f"C_dl_{k}": f"{electrode} electrode double-layer capacity [F.m-2]",
        f"rho_{k}": f"{electrode} electrode density [kg.m-3]",
        f"cp_{k}": f"{electrode} electrode specific heat capacity [J.kg-1.K-1]",
        f"lambda_{k}": f"{electrode} electrode thermal conductivity [W.m-1.K-1]",
    }
#: Particle mechanics: neither cell's set has them; both take PyBaMM's Ai2020 values.
MECHANICS = {
    f"{ours}_{k}": f"{electrode} electrode {theirs}"
    for k, electrode in (("n", "Negative"), ("p", "Positive"))
    for ours, theirs in (
        ("young", "Young's modulus [Pa]"),
        ("poisson", "Poisson's ratio"),
        ("Omega", "partial molar volume [m3.mol-1]"),
        ("c_0", "reference concentration for free of deformation [mol.m-3]"),
        ("stress_critical", "critical stress [Pa]"),
    )
}
#: Constants defined by expressions, against PyBaMM's symbolic parameters.
DERIVED = {
    "L": lambda p: p.L_x,
    "A_cc": lambda p: p.A_cc,
    "a_n": lambda p: p.n.prim.a_typ,
    "a_p": lambda p: p.p.prim.a_typ,
    "rho_cp_eff": lambda p: p.rho_c_p_eff(pybamm.Scalar(298.15)),
}

THETA = np.linspace(0.005, 0.995, 67)
TEMPERATURES = np.array([253.15, 273.15, 298.15, 318.15, 343.15])
C_E = np.linspace(50.0, 4000.0, 41)


def samples(arguments: tuple[str, ...], c_max: float) -> dict[str, np.ndarray]:
    """A grid over the arguments of a set function (stoichiometry, concentrations, T)."""
    axes = {
        "theta": THETA,
        "T": TEMPERATURES,
        "c_e": C_E[::4],
        "c_s_surf": THETA[::6] * c_max,
        "c_s_max": np.array([c_max]),
    }
    grids = np.meshgrid(*(axes[name] for name in arguments), indexing="ij")
    return {name: grid.ravel() for name, grid in zip(arguments, grids, strict=True)}


#: Our function -> PyBaMM's parameter (for the electrode: its maximum concentration's name).
FUNCTIONS = {
    "U_n": "Negative electrode OCP [V]",
    "U_p": "Positive electrode OCP [V]",
    "dUdT_n": "Negative electrode OCP entropic change [V.K-1]",
    "dUdT_p": "Positive electrode OCP entropic change [V.K-1]",
    "D_s_n": "Negative particle diffusivity [m2.s-1]",
    "D_s_p": "Positive particle diffusivity [m2.s-1]",
    "j0_n": "Negative electrode exchange-current density [A.m-2]",
    "j0_p": "Positive electrode exchange-current density [A.m-2]",
    "D_e": "Electrolyte diffusivity [m2.s-1]",
    "kappa_e": "Electrolyte conductivity [S.m-1]",
}


def relative(ours, theirs) -> float:
    ours, theirs = np.broadcast_arrays(np.asarray(ours, float), np.asarray(theirs, float))
    scale = np.maximum(np.abs(ours), np.abs(theirs))
    return float(np.max(np.where(scale > 0, np.abs(ours - theirs) / np.where(scale, scale, 1), 0)))


@pytest.fixture(scope="module", params=SETS)
def both(request):
    """(our resolved set, PyBaMM's parameter values) for each shipped set."""
    return resolve({"set": request.param}, Path.cwd()), pybamm.ParameterValues(request.param)


def test_every_constant_equals_pybamms(both):
    table, values = both
    ai2020 = pybamm.ParameterValues("Ai2020")
    worst = 0.0
    checked = set()
    for ours, theirs in (CONSTANTS | MECHANICS).items():
        name, factor = theirs if isinstance(theirs, tuple) else (theirs, 1.0)
        source = ai2020 if ours in MECHANICS else values
        worst = max(worst, relative(table.constants[ours].value * factor, source[name]))
        checked.add(ours)
    symbols = pybamm.LithiumIonParameters()
    for ours, symbol in DERIVED.items():
        worst = max(worst, relative(table.constants[ours].value, values.evaluate(symbol(symbols))))
        checked.add(ours)
    print(f"{table.name}: constants, largest relative difference to PyBaMM {worst:.1e}")
    assert worst <= 1e-12, worst
    # everything the set defines is checked, except what lives inside a PyBaMM function
    inside = {"E_r_n", "E_r_p", "m_n", "m_p", "E_D_s_n", "E_D_s_p", "E_D_e", "E_k_e"}
    physical = {"FARADAY", "GAS_CONSTANT"}
    assert set(table.constants) - checked - physical == inside & set(table.constants)
    for name in physical:  # the framework's constants are PyBaMM's
        expected = {"FARADAY": pybamm.constants.F, "GAS_CONSTANT": pybamm.constants.R}[name]
        assert relative(table.constants[name].value, expected.value) <= 1e-15


def test_every_function_equals_pybamms_at_sample_points(both):
    table, values = both
    assert set(table.functions) == set(FUNCTIONS)
    worst = 0.0
    for ours, theirs in FUNCTIONS.items():
        arguments = table.functions[ours].function.arguments
        c_max = table.constants["c_max_p" if ours.endswith("_p") else "c_max_n"].value
        points = samples(arguments, c_max)
        expected = values.evaluate(
            pybamm.FunctionParameter(theirs, {n: pybamm.Vector(v) for n, v in points.items()})
        )
        got = table.evaluate(ours, *points.values())
        worst = max(worst, relative(got, expected.ravel()))
        assert relative(got, expected.ravel()) <= 1e-12, (table.name, ours)
    print(f"{table.name}: functions, largest relative difference to PyBaMM {worst:.1e}")


def pybamm_stoichiometries(name: str, target) -> tuple[float, float]:
    values = pybamm.ParameterValues(name)
    x, y = pybamm.lithium_ion.get_initial_stoichiometries(target, values, tol=1e-14)
    return float(x), float(y)


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("target", [1.0, 0.5, 0.0, "voltage"])
def test_initial_state_reproduces_pybamm(name, target):
    section = {"set": name}
    if target == "voltage":
        volts = {"Chen2020": 3.9, "Marquis2019": 3.8}[name]
        section["initial_voltage"], target = f"{volts} V", f"{volts}V"
    else:
        section["initial_soc"] = target
    table = resolve(section, Path.cwd())
    x, y = pybamm_stoichiometries(name, target)
    c = table.constants
    print(f"{name} {target}: x - x_PyBaMM = {c['c_n_init'].value / c['c_max_n'].value - x:.1e}")
    assert abs(c["c_n_init"].value / c["c_max_n"].value - x) <= 1e-10
    assert abs(c["c_p_init"].value / c["c_max_p"].value - y) <= 1e-10
    state = table.initial_state
    assert (state.negative, state.positive) == pytest.approx((x, y), abs=1e-10)
