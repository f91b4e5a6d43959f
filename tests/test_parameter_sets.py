"""Parameter sets as a framework feature: a case names a set, overrides its values, and every
plug-in expression uses its constants and calls its functions; bad input is one case error.

The physics is steady conduction in a slab with a heat source: with constant k the nodal values
of P1 are exact (T_max - T_0 = q L^2/(8 k)), and with k(T) from a set function the solution must
equal the same case written with the expression itself."""

import math
from pathlib import Path

import pytest

from app import Simulation
from app.case import load_case
from app.cli import main
from app.errors import CaseError
from tests.conftest import assert_same_quantities, runs_on_ranks, scalebridge

SLAB_SET = """
name = "Slab"
description = "A conducting slab with a heat source"
citation = "A. Author, The slab, J. Tests 1 (2026) 1"

[constants]
k0 = { value = "2 W/(m*K)", units = "W/(m*K)", description = "Conductivity at T0" }
beta = { value = 0.01, units = "1/K", description = "Relative change of k per kelvin" }
q = { value = "1 kW/m^3", units = "W/m^3", description = "Heat source" }
q_double = { value = "2*q", units = "W/m^3", description = "Twice the source" }
T0 = { value = "300 K", units = "K", description = "Wall temperature" }

[functions.k_of]
arguments = { T = "K" }
units = "W/(m*K)"
expression = "k0*(1 + beta*(T - T0))"
description = "Conductivity, linear in T"

[functions.share]
arguments = { theta = "dimensionless" }
units = "W/(m*K)"
expression = "k0*theta"
"""

CASE = """
title = "Slab from a parameter set"

[parameters]
set = "slab.toml"

[mesh]
type = "interval"
cells = [32]

[physics.heat]
conductivity = "k_of(temperature)"
source = "q"
reference = "T0"
boundaries.left = { type = "temperature", value = "T0" }
boundaries.right = { type = "temperature", value = "T0" }
"""

LITERAL = CASE.replace('[parameters]\nset = "slab.toml"\n', "").replace(
    '"k_of(temperature)"', '"2*(1 + 0.01*(temperature - 300))"'
)
LITERAL = LITERAL.replace('source = "q"', "source = 1000").replace('"T0"', "300")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "slab.toml").write_text(SLAB_SET)
    (tmp_path / "case.toml").write_text(CASE)
    return tmp_path


def peak(source, overrides=None, base_dir=None) -> float:
    result = Simulation.from_case(source, overrides, base_dir=base_dir).run()
    return float(result.quantities["max_temperature_K"][-1])


def test_set_functions_give_the_same_solution_as_the_expression_written_out(folder, tmp_path):
    (tmp_path / "literal.toml").write_text(LITERAL)
    assert peak(folder / "case.toml") == pytest.approx(peak(tmp_path / "literal.toml"), 1e-12)


def test_constant_conductivity_from_an_override_meets_the_closed_form(folder):
    # beta = 0: k = k0 = 2; overriding q with units, the source doubles
    overrides = {"parameters.beta": 0, "parameters.q": "2 kW/m^3"}
    assert peak(folder / "case.toml", overrides) - 300 == pytest.approx(2000 / (8 * 2), 1e-12)
    # a function body overridden over the same arguments
    overrides = {"parameters.k_of": "4 + 0*T"}
    assert peak(folder / "case.toml", overrides) - 300 == pytest.approx(1000 / (8 * 4), 1e-12)


def test_float_parameters_take_set_constants_when_the_case_loads(folder):
    loaded = load_case(folder / "case.toml")
    assert loaded.physics["heat"].params.reference == 300.0
    overridden = load_case(folder / "case.toml", {"parameters.T0": "20 degC"})
    assert overridden.physics["heat"].params.reference == pytest.approx(293.15, 1e-15)
    assert overridden.parameters.constants["T0"].value == pytest.approx(293.15, 1e-15)


def test_a_protocol_sets_a_constant_and_the_constants_defined_from_it_follow(folder):
    case = CASE.replace("boundaries.left", "#").replace("boundaries.right", "#")
    case = case.replace('conductivity = "k_of(temperature)"', 'conductivity = "k0"')
    case = case.replace('source = "q"', 'source = "q_double"')
    case += """
[time]
scheme = "bdf1"
dt = 1.0
end = 30.0

[protocol]
steps = ["Heat at 2 kW/m^3 for 10 s", "Cool for 10 s"]
controls.Heat = { target = "parameters.q" }
controls.Cool = { target = "parameters.q", value = 0 }
"""
    (folder / "protocol.toml").write_text(case)
    simulation = Simulation.from_case(folder / "protocol.toml")
    result = simulation.run()
    energy = result.quantities["stored_energy_J_per_m2"]
    # the source is 2 q: 4 kW/m^3 for 10 s into a slab of unit length and rho c_p = 1
    assert energy[-1] - energy[0] == pytest.approx(2 * 2000 * 10, 1e-10)
    assert simulation.loaded.parameters.constants["q_double"].value == 0.0
    constants = simulation.parameter_constants.on(simulation.mesh_data.mesh)
    assert float(constants["q_double"].value) == 0.0


def test_the_stored_case_loads_and_runs_again_from_elsewhere(folder, tmp_path, monkeypatch):
    run = folder / "run"
    first = Simulation.from_case(folder / "case.toml", {"parameters.beta": 0.02}).run(run)
    stored = (run / "case.toml").read_text()
    assert "beta = 0.02" in stored
    assert str(folder / "slab.toml") in stored  # a set given by path is stored absolute
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = Simulation.from_case(run / "case.toml").run()
    assert again.quantities["max_temperature_K"][-1] == pytest.approx(
        first.quantities["max_temperature_K"][-1], 1e-14
    )
    # a shipped set is stored by its name
    shipped = {"parameters": {"set": "Chen2020"}, "mesh": {"type": "interval"}}
    shipped["physics"] = {"heat": {"conductivity": "lambda_n"}}
    assert load_case(shipped).resolved()["parameters"] == {"set": "Chen2020"}


def test_check_lists_the_set_and_its_citation(folder, capsys):
    assert main(["check", str(folder / "case.toml"), "--set", "parameters.q=2000"]) == 0
    out = capsys.readouterr().out
    assert f"Parameters: set Slab ({folder / 'slab.toml'})" in out
    assert "citation: A. Author, The slab, J. Tests 1 (2026) 1" in out
    assert "functions: k_of(T), share(theta)" in out
    assert "overridden by the case: q" in out


@pytest.mark.mpi
def test_two_ranks_give_the_same_answer(folder):
    serial, parallel = runs_on_ranks(folder / "case.toml", folder, "--set", "parameters.beta=0.05")
    assert_same_quantities(serial, parallel, rtol=1e-10)


def test_the_initial_soc_is_available_to_initial_values_by_name():
    case = {
        "parameters": {"set": "Chen2020", "initial_soc": 0.5},
        "mesh": {"type": "interval", "cells": [4], "length": ["L_n"]},  # lengths may be too
        "physics": {
            "particle": {
                "type": "mass_transport",
                "species": {
                    "c_s": {"diffusivity": "D_s_n(c_s/c_max_n, T_ref)", "initial": "c_n_init"}
                },
            }
        },
        "time": {"scheme": "bdf1", "dt": 1.0, "end": 1.0},
    }
    result = Simulation.from_case(case).run()
    theta = 0.468481918462  # PyBaMM's stoichiometry at SOC 0.5 (see test_parameter_sets_pybamm)
    amount = result.quantities["particle_amount_c_s_mol_per_m2"][0]
    assert amount == pytest.approx(theta * 33133 * 85.2e-6, 1e-10)


# --------------------------------------------------------------------------------------------
# Bad input: one case error at the place, with what was expected
# --------------------------------------------------------------------------------------------
def problem(folder: Path, overrides: dict, set_text: str | None = None) -> str:
    if set_text is not None:
        (folder / "slab.toml").write_text(set_text)
    with pytest.raises(CaseError) as caught:
        Simulation.from_case(folder / "case.toml", overrides)
    return str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"parameters.set": "Chen202"},
            "parameters.set: unknown parameter set 'Chen202' (did you mean 'Chen2020'?); "
            "shipped sets: Chen2020, Marquis2019.",
        ),
        ({"parameters.set": "nowhere/my.toml"}, "parameters.set: set file 'nowhere/my.toml' not"),
        (
            {"parameters.set": "Chen2020.toml"},
            "set file 'Chen2020.toml' not found. Fix: for the shipped set, write "
            'set = "Chen2020"',
        ),
        (
            {"parameters.kk0": 1},
            "parameters.kk0: unknown parameter 'kk0' of set Slab (did you mean 'k0'?)",
        ),
        (
            {"parameters.k0": "2 m"},
            "parameters.k0: '2 m' has units of m but W/(m*K) was expected",
        ),
        ({"parameters.k0": [1, 2]}, "parameters.k0: expected a number or a string, got [1, 2]"),
        ({"parameters.k0": float("nan")}, "parameters.k0: nan is not a finite number"),
        ({"parameters.q": "1e308*1e308"}, "parameters.q: cannot compute '1e308*1e308'"),
        (
            {"parameters.k_of": "k0*(1 + beta*(T - T1))"},
            "parameters.k_of: unknown name 'T1' in 'k0*(1 + beta*(T - T1))'",
        ),
        (
            {"physics.heat.conductivity": "k_of(temperature, 1)"},
            "physics.heat.conductivity: k_of() takes 1 argument (T), got 2 in "
            "'k_of(temperature, 1)' at column 1.",
        ),
        (
            {"physics.heat.conductivity": "k_off(temperature)"},
            "physics.heat.conductivity: the function 'k_off' is not allowed in "
            "'k_off(temperature)' at column 1 (did you mean 'k_of'?)",
        ),
        (
            {"physics.heat.conductivity": "T0"},
            "physics.heat.conductivity: 'T0' is in K but W/(m*K) was expected.",
        ),
        (
            {"physics.heat.conductivity": "share(temperature)"},
            "physics.heat.conductivity: argument 1 of share() is theta in dimensionless, but "
            "'temperature' is in K.",
        ),
        (
            {"physics.heat.conductivity": "share(T0)"},
            "physics.heat.conductivity: argument 1 of share() is theta in dimensionless, but "
            "'T0' is in K.",
        ),
        (
            {"physics.heat.conductivity": "k0 - 3"},
            "physics.heat.conductivity: 'k0 - 3' = -1: must be > 0 W/(m*K), got -1 W/(m*K)",
        ),
        (
            {"physics.heat.source": "qq"},
            "physics.heat.source: unknown name 'qq' (did you mean 'q'?",
        ),
        (
            {"physics.heat.reference": "temperature"},
            "physics.heat.reference: expected a number in K; expressions are not allowed here",
        ),
        (
            {"parameters.initial_soc": 1},
            "parameters.initial_soc: set Slab has no [state_of_charge] section",
        ),
    ],
)
def test_bad_input(folder, overrides, expected):
    assert expected in problem(folder, overrides)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ('expression = "k0*theta"', 'expression = "k_of(theta*T0) + share(theta)"'),
            "functions.share.expression: share calls itself (share -> share)",
        ),
        (('units = "1/K"', 'units = "%/K"'), "constants.beta: '%/K' is not an SI unit"),
        (('units = "1/K"', 'units = "1/Kelvinn"'), "constants.beta: unknown unit '1/Kelvinn'"),
        (("q_double = {", "x = {"), "constants.x: not a usable name"),
        (('value = "2*q"', 'value = "2*q_double"'), "q_double is defined by itself"),
        (('citation = "A. Author', 'cite = "A. Author'), "citation: Field required"),
    ],
)
def test_bad_set_files(folder, edit, expected):
    message = problem(folder, {}, SLAB_SET.replace(*edit))
    assert message.startswith(f"parameters.set: set file '{folder / 'slab.toml'}'")
    assert expected in message


def test_recursion_through_another_function_names_the_loop(folder):
    text = SLAB_SET.replace('expression = "k0*theta"', 'expression = "k_of(theta)"')
    text = text.replace('expression = "k0*(1 + beta*(T - T0))"', 'expression = "share(T)"')
    message = problem(folder, {}, text)
    assert "functions.k_of.expression: k_of calls itself (k_of -> share -> k_of)" in message


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"initial_soc": 1.5}, "parameters.initial_soc: a state of charge is in [0, 1], got 1.5"),
        ({"initial_soc": "50 %"}, None),
        (
            {"initial_voltage": "5 V"},
            "parameters.initial_voltage: set Chen2020: the open-circuit voltage cannot reach 5 V",
        ),
        ({"initial_voltage": "4 A"}, "parameters.initial_voltage: '4 A' has units of A"),
        (
            {"initial_soc": 1, "initial_voltage": "4 V"},
            "parameters.initial_soc: give initial_soc or initial_voltage, not both",
        ),
    ],
)
def test_bad_initial_states(section, expected):
    from app.parameter_resolution import resolve

    if expected is None:
        table = resolve({"set": "Chen2020"} | section, Path.cwd())
        assert table.initial_state.soc == 0.5
        return
    with pytest.raises(CaseError) as caught:
        resolve({"set": "Chen2020"} | section, Path.cwd())
    assert expected in str(caught.value)


def test_a_field_named_like_a_set_value_is_refused(folder):
    overrides = {
        "physics.tracer": {"type": "mass_transport", "species": {"q": {"diffusivity": 1e-9}}}
    }
    message = problem(folder, overrides)
    assert message.startswith(
        "physics.tracer: field 'q' of 'tracer' has the name of a value of the parameter set Slab"
    )


def test_the_command_line_reports_bad_parameters_without_a_traceback(folder):
    process = scalebridge("check", folder / "case.toml", "--set", "parameters.beta=1 m")
    assert process.returncode == 2
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert lines == [
        f"scalebridge: error: {folder / 'case.toml'}: parameters.beta: '1 m' has units of m but "
        "1/K was expected. Fix: give a value in 1/K or a compatible unit"
    ]


def test_a_protocol_on_a_parameter_written_as_a_set_constant_points_to_the_set(folder):
    case = (
        CASE
        + """
[time]
scheme = "bdf1"
dt = 1.0
end = 2.0

[protocol]
steps = ["Heat at 2 kW/m^3 for 1 s"]
controls.Heat = { target = "physics.heat.source" }
"""
    )
    (folder / "case.toml").write_text(case)
    with pytest.raises(CaseError) as caught:
        Simulation.from_case(folder / "case.toml").build()
    message = str(caught.value)
    assert message.startswith("protocol.controls: target 'physics.heat.source' is not a constant")
    assert message.endswith("Fix: it is the set's constant q: target 'parameters.q'")


def test_the_documented_set_file_loads_and_evaluates(tmp_path):
    from app.parameter_resolution import resolve
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "parameter_sets.md").read_text()
    block = text.split("```toml\n# my_cell.toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_cell.toml").write_text(block)
    table = resolve({"set": "my_cell.toml"}, tmp_path)
    assert (table.name, table.citation) == ("MyCell", "A. Author et al., J. Batteries 1 (2026) 1")
    assert table.constants["a_n"].value == pytest.approx(3 * 0.6 / 5e-6, 1e-15)
    assert table.evaluate("D_s_n", 0.5, 298.15) == pytest.approx(1e-14, 1e-15)
    hot = 1e-14 * math.exp(30e3 / 8.31446261815324 * (1 / 298.15 - 1 / 330))
    assert table.evaluate("D_s_n", 0.5, 330.0) == pytest.approx(hot, 1e-14)
    assert table.evaluate("U_n", 0.5) == pytest.approx(0.1 + 0.8 * math.exp(-15), 1e-15)


def test_a_set_constant_in_si_fills_a_parameter_declared_in_other_units():
    # Q_nom is 18000 C in the set (SI); the protocol's capacity is declared in A*h
    case = {
        "parameters": {"set": "Chen2020"},
        "mesh": {"type": "interval", "length": ["L"]},
        "physics": {"heat": {"source": 0.0}},
        "protocol": {
            "steps": ["Heat at 1 W/m^3 for 1 s"],
            "controls": {"Heat": {"target": "physics.heat.source"}},
            "capacity": "Q_nom",
        },
    }
    assert load_case(case).case.protocol.capacity == pytest.approx(5.0, 1e-15)
