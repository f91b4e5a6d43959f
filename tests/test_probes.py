"""Probes: field values at named points (quantities.csv columns) and along lines (profiles/).

Closed forms: steady conduction with the quadratic T = x^2 + 2xy - y^2/2 + 3y (-div grad T = -1)
is exact in P2, so a probe inside a cell (not at a node) reads T and the heat flux -grad T to
round-off, on 1 and 2 ranks. A pulled bar (nu = 0) gives the displacement at a point and the
support reaction in closed form; fields on a region and on a boundary are read where they live.
"""

import csv
import math

import numpy as np
import pytest

from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import CASES, read_quantities, scalebridge
from tests.region_plugin import coupled_case, exact_species, surface_case, use_plugin

POINT = (0.3137, 0.7071)  # inside a cell of the 8 x 4 mesh, at no node of P2


def exact_temperature(x, y):
    return x * x + 2 * x * y - 0.5 * y * y + 3 * y


def exact_flux(x, y):  # -grad T
    return -(2 * x + 2 * y), -(2 * x - y + 3)


QUADRATIC = f"""
title = "Steady conduction with a quadratic solution, probed"
[mesh]
type = "rectangle"
length = [2.0, 1.0]
cells = [8, 4]
[physics.heat]
degree = 2
source = -1.0
boundaries.left = {{ type = "temperature", value = "x*x + 2*x*y - 0.5*y*y + 3*y" }}
boundaries.right = {{ type = "temperature", value = "x*x + 2*x*y - 0.5*y*y + 3*y" }}
boundaries.bottom = {{ type = "temperature", value = "x*x + 2*x*y - 0.5*y*y + 3*y" }}
boundaries.top = {{ type = "temperature", value = "x*x + 2*x*y - 0.5*y*y + 3*y" }}
[output.probes]
D = [{POINT[0]}, "{POINT[1] * 100} cm"]
corner = {{ at = [0.5, 0.5], fields = ["heat_flux"] }}
middle = {{ from = [0, 0.4321], to = [2, 0.4321], points = 11 }}
"""


def read_profile(path) -> dict[str, np.ndarray]:
    with path.open() as stream:
        rows = list(csv.reader(stream))
    return {name: np.array([float(r[i]) for r in rows[1:]]) for i, name in enumerate(rows[0])}


@pytest.mark.mpi
def test_point_and_line_probes_read_the_exact_solution_on_one_and_two_ranks(tmp_path):
    case = tmp_path / "quadratic.toml"
    case.write_text(QUADRATIC)
    runs = {}
    for ranks in (1, 2):
        out = tmp_path / f"np{ranks}"
        process = scalebridge("run", case, "-o", out, "-q", ranks=ranks, cwd=tmp_path)
        assert process.returncode == 0, process.stderr
        runs[ranks] = out
    qx, qy = exact_flux(*POINT)
    for out in runs.values():
        q = {name: values[-1] for name, values in read_quantities(out).items()}
        assert q["D_temperature_K"] == pytest.approx(exact_temperature(*POINT), abs=1e-12)
        assert q["D_heat_flux_x_W_per_m2"] == pytest.approx(qx, abs=1e-11)
        assert q["D_heat_flux_y_W_per_m2"] == pytest.approx(qy, abs=1e-11)
        assert "corner_temperature_K" not in q  # fields = ["heat_flux"]
        assert q["corner_heat_flux_x_W_per_m2"] == pytest.approx(-2.0, abs=1e-11)

        profile = read_profile(out / "profiles" / "middle.csv")
        assert list(profile) == [
            "time_s", "distance_m", "x_m", "y_m", "temperature_K",
            "heat_flux_x_W_per_m2", "heat_flux_y_W_per_m2",
        ]  # fmt: skip
        x = np.linspace(0, 2, 11)
        assert np.abs(profile["x_m"] - x).max() < 1e-15
        assert np.abs(profile["distance_m"] - x).max() < 1e-15
        exact = exact_temperature(x, 0.4321)
        assert np.abs(profile["temperature_K"] - exact).max() < 1e-12
        assert np.abs(profile["heat_flux_y_W_per_m2"] - exact_flux(x, 0.4321)[1]).max() < 1e-11


@pytest.mark.mpi
def test_a_discontinuous_field_on_a_vertex_reads_alike_on_any_partition(tmp_path):
    """P1 temperature: its DG0 heat flux jumps between the six cells at (0.5, 0.5); the probe
    reads one of them, the same one on 1 and 2 ranks."""
    case = tmp_path / "quadratic.toml"
    case.write_text(QUADRATIC)
    fluxes = []
    for ranks in (1, 2):
        out = tmp_path / f"np{ranks}"
        process = scalebridge(
            "run", case, "-o", out, "-q", "--set", "physics.heat.degree=1", ranks=ranks
        )
        assert process.returncode == 0, process.stderr
        q = read_quantities(out)
        fluxes.append([q[f"corner_heat_flux_{axis}_W_per_m2"][-1] for axis in "xy"])
    assert fluxes[0] == pytest.approx(fluxes[1], rel=1e-10)  # the same cell on both
    assert fluxes[0] != pytest.approx(exact_flux(0.5, 0.5), abs=1e-6)  # P1: a cell's value


def quadratic_case(**probes) -> dict:
    boundary = {"type": "temperature", "value": "x*x + 2*x*y - 0.5*y*y + 3*y"}
    return {
        "mesh": {"type": "rectangle", "length": [2.0, 1.0], "cells": [8, 4]},
        "physics": {
            "heat": {
                "degree": 2,
                "source": -1.0,
                "boundaries": {side: boundary for side in ("left", "right", "bottom", "top")},
            }
        },
        "output": {"probes": probes},
    }


def test_result_holds_the_profiles_and_probe_columns():
    line = {"from": [0.1, 0.0], "to": [0.1, 1.0], "points": 4}
    result = Simulation.from_case(quadratic_case(D=list(POINT), axial=line)).run()
    assert result.quantities["D_temperature_K"][-1] == pytest.approx(
        exact_temperature(*POINT), abs=1e-12
    )
    profile = result.profiles["axial"]
    y = np.linspace(0, 1, 4)
    assert np.abs(profile["y_m"] - y).max() < 1e-15
    assert np.abs(profile["temperature_K"] - exact_temperature(0.1, y)).max() < 1e-12
    assert set(profile["time_s"]) == {0.0}


@pytest.mark.parametrize(
    ("probe", "where", "message"),
    [
        ([3.0, 0.5], "output.probes.D", "the point (3, 0.5) m lies outside the mesh, which spans "
                                        "x 0 to 2, y 0 to 1 m"),
        ([1.0], "output.probes.D", "expected 2 coordinates on a 2D mesh, got 1"),
        ({"at": [1, 0.5], "fields": ["temprature"]}, "output.probes.D.fields[0]",
         "unknown field 'temprature' (did you mean 'temperature'?)"),
        ({"at": [1, 0.5], "from": [0, 0]}, "output.probes.D",
         "a probe is a point (at) or a line (from, to, points), not both"),
        ({"from": [0, 0], "to": [1, 1]}, "output.probes.D", "a line is { from = [x, y], to = "
                                                           "[x, y], points = 100 }"),
        ({"from": [0, 0.5], "to": [2.5, 0.5], "points": 3}, "output.probes.D",
         "the line's end (2.5, 0.5) m lies outside the mesh"),
        (["2 kg", 0.5], "output.probes.D.at", "'2 kg' has units of kg but m was expected"),
        ({"at": [1, 0.5], "form": [1, 1]}, "output.probes.D.form",
         "unknown key 'form' (did you mean 'from'?)"),
        (3, "output.probes", "D: expected a point [x, y] or a table"),
    ],
)  # fmt: skip
def test_bad_probes(probe, where, message):
    with pytest.raises(CaseError) as error:
        Simulation.from_case(quadratic_case(D=probe)).build()
    assert error.value.path == where
    assert message in error.value.problem


def test_probe_names_become_columns_so_they_must_fit():
    with pytest.raises(CaseError, match=r"output.probes: probe names are letters, digits"):
        Simulation.from_case(quadratic_case(**{"my-probe": [1, 0.5]})).build()
    with pytest.raises(CaseError) as error:
        Simulation.from_case(quadratic_case(max=[1, 0.5])).build()
    assert error.value.path == "output.probes.max"
    assert "column 'max_temperature_K' is already a quantities.csv column" in str(error.value)


def test_point_outside_the_mesh_from_the_command_line(tmp_path):
    case = tmp_path / "quadratic.toml"
    case.write_text(QUADRATIC)
    process = scalebridge("check", case, "--set", 'output.probes.D=["2 cm", "1.5 m"]')
    assert process.returncode == 2
    assert process.stderr.count("\n") == 1 and "Traceback" not in process.stderr
    assert "output.probes.D: the point (0.02, 1.5) m lies outside the mesh" in process.stderr


def test_units_of_coordinates_and_the_check_listing(tmp_path):
    case = tmp_path / "quadratic.toml"
    case.write_text(QUADRATIC)
    process = scalebridge("check", case)
    assert process.returncode == 0, process.stderr
    assert "  D at (0.3137, 0.7071) m: temperature, heat_flux" in process.stdout
    assert "  corner at (0.5, 0.5) m: heat_flux" in process.stdout
    assert (
        "  middle: 11 points from (0, 0.4321) to (2, 0.4321) m -> profiles/middle.csv: "
        "temperature, heat_flux"
    ) in process.stdout


# Fields on a region and on a boundary -------------------------------------------------------
def test_region_field_is_probed_where_it_lives(monkeypatch):
    """c lives on the core [0, 1] of the bar [0, 2]: a point in the core reads c (cosh profile),
    a point outside reads temperature only; a line has c empty (NaN) outside the core."""
    use_plugin(monkeypatch)
    case = coupled_case()
    case["output"] = {
        "probes": {
            "inside": [0.3],
            "outside": [1.5],
            "bar": {"from": [0.0], "to": [2.0], "points": 5},
        }
    }
    sim = Simulation.from_case(case)
    sim.build()
    described = "\n".join(sim.probes.describe())
    assert "outside at (1.5) m: temperature, heat_flux; not c, heat_source (on 'core' only)" in (
        described
    )
    result = sim.run()
    q = {name: values[-1] for name, values in result.quantities.items()}
    assert q["inside_c_mol_per_m3"] == pytest.approx(exact_species(np.array(0.3), 1.0), abs=1e-5)
    assert "outside_c_mol_per_m3" not in q and "outside_temperature_K" in q
    c = result.profiles["bar"]["c_mol_per_m3"]
    assert np.isnan(c[3:]).all() and not np.isnan(c[:3]).any()
    assert c[:3] == pytest.approx(exact_species(np.array([0.0, 0.5, 1.0]), 1.0), abs=1e-5)


def test_boundary_field_is_probed_on_its_boundary(monkeypatch):
    """theta lives on the top side: a point there reads its nodal value; a point inside does
    not read it."""
    use_plugin(monkeypatch)
    case = surface_case()
    case["output"]["probes"] = {"top": [0.5, 1.0], "inside": [0.5, 0.5]}
    result = Simulation.from_case(case).run()
    theta = result.fields["theta"]
    nodes = theta.function_space.tabulate_dof_coordinates()
    node = np.argmin(np.linalg.norm(nodes[:, :2] - [0.5, 1.0], axis=1))
    q = {name: values[-1] for name, values in result.quantities.items()}
    assert q["top_theta_mol_per_m2"] == pytest.approx(theta.x.array[node], abs=1e-14)
    assert q["top_theta_mol_per_m2"] > 0.1
    assert "inside_theta_mol_per_m2" not in q and "inside_c_mol_per_m3" in q


# Mechanics: displacement at a point, reaction per fixed boundary ------------------------------
def test_mechanics_displacement_at_a_probe_and_reactions_per_support():
    """A bar clamped at its base (nu = 0: no lateral contraction to hold back) pulled by 3 MPa
    at its top: u = (0, s y / E) at any point, and the clamp's reaction is the load reversed."""
    stress, modulus = 3e6, 1e9
    case = {
        "mesh": {"type": "rectangle", "length": [1.0, 2.0], "cells": [3, 5]},
        "physics": {
            "mechanics": {
                "youngs_modulus": modulus,
                "poisson_ratio": 0.0,
                "boundaries": {
                    "bottom": {"type": "fixed"},
                    "top": {"type": "traction", "value": [0, stress]},
                },
            }
        },
        "output": {"probes": {"P": [0.37, 1.23]}},
    }
    result = Simulation.from_case(case).run()
    q = {name: values[-1] for name, values in result.quantities.items()}
    assert q["P_displacement_x_m"] == pytest.approx(0, abs=1e-15)
    assert q["P_displacement_y_m"] == pytest.approx(stress / modulus * 1.23, rel=1e-10)
    assert q["P_stress_yy_Pa"] == pytest.approx(stress, rel=1e-10)
    assert q["P_stress_xy_Pa"] == pytest.approx(0, abs=1e-6)
    assert q["reaction_bottom_x_N_per_m"] == pytest.approx(0, abs=1e-6)
    assert q["reaction_bottom_y_N_per_m"] == pytest.approx(-stress * 1.0, rel=1e-10)
    assert q["load_top_y_N_per_m"] == pytest.approx(stress * 1.0, rel=1e-10)
    assert math.isfinite(q["P_von_mises_Pa"])


def test_line_across_a_hole_reads_the_lame_displacement_around_it(tmp_path):
    """A chord of the thick cylinder's quarter (order-2 curved cells) dips into the bore: NaN
    there, Lamé's radial displacement u_r = (1 + nu)/E ((1 - 2 nu) A r + B/r) elsewhere."""
    a, b, p, nu, modulus = 0.1, 0.2, 100e6, 0.3, 210e9
    lame_a, lame_b = p * a**2 / (b**2 - a**2), p * a**2 * b**2 / (b**2 - a**2)
    ends = [[0.12 * math.cos(math.radians(d)), 0.12 * math.sin(math.radians(d))] for d in (5, 85)]
    line = {"from": ends[0], "to": ends[1], "points": 7}
    sim = Simulation.from_case(
        CASES / "thick_cylinder.toml", overrides={"output.probes.chord": line}
    )
    profile = sim.run().profiles["chord"]
    r = np.hypot(profile["x_m"], profile["y_m"])
    assert np.abs(r - a).min() > 2e-3  # no point near the bore's curved cells
    in_hole = r < a
    assert 0 < in_hole.sum() < len(r)
    assert np.isnan(profile["displacement_x_m"][in_hole]).all()
    u = np.hypot(profile["displacement_x_m"], profile["displacement_y_m"])[~in_hole]
    exact = (1 + nu) / modulus * ((1 - 2 * nu) * lame_a * r[~in_hole] + lame_b / r[~in_hole])
    assert np.abs(u / exact - 1).max() < 1e-3


def test_an_event_can_watch_a_probe():
    """Insulated bar heated uniformly: T = 300 + 2 t everywhere; 'P_temperature_K > 305' stops
    the run at t = 2.5 s, located between the steps of 0.4 s."""
    case = {
        "mesh": {"type": "interval", "cells": [4]},
        "physics": {"heat": {"source": 2.0, "initial": 300.0}},
        "time": {"scheme": "bdf1", "end": 10.0, "dt": 0.4},
        "output": {"probes": {"P": [0.3]}},
        "events": [{"when": "P_temperature_K > 305"}],
    }
    result = Simulation.from_case(case).run()
    assert result.event == "P_temperature_K > 305"
    assert result.quantities["time_s"][-1] == pytest.approx(2.5, abs=1e-5)
    assert result.quantities["P_temperature_K"][-1] == pytest.approx(305, abs=1e-4)
