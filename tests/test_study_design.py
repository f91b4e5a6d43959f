"""Study machinery: reductions, grids with lists and expressions, reuse of a built simulation
(and its check against a fresh build), member run folders, nested parameter tables."""

import logging

import numpy as np
import pytest
import tomli_w
import ufl
from mpi4py import MPI

from app.case import load_case
from app.contracts import Dirichlet, FieldSpec, Parameters, Physics, Property, Quantity, quantity
from app.simulation import Simulation
from app.studies.members import reduce
from app.studies.runner import Study
from app.studies.spec import QuantitySpec, load_study
from tests.conftest import CASES

ROD = CASES / "heated_rod.toml"
LENGTH = 0.5


def write(tmp_path, data: dict, name: str = "study.toml"):
    path = tmp_path / name
    path.write_text(tomli_w.dumps({"case": str(ROD)} | data))
    return path


def test_reductions_of_a_linear_series():
    """y = 2 - 3t: trapezoids and linear interpolation are exact."""
    t = np.linspace(0.0, 1.0, 11)
    series = {"time_s": t, "y": 2 - 3 * t}
    expected = {
        "final": 2 - 3 * 1.0,
        "max": 2.0,
        "min": -1.0,
        "integral": 2 - 1.5,
        "mean": (2 - 1.5) / 1.0,
        "end_time": 1.0,
    }
    for kind, value in expected.items():
        spec = QuantitySpec(column=None if kind == "end_time" else "y", reduce=kind)
        assert reduce(spec, series) == pytest.approx(value, abs=1e-14), kind
    assert reduce(QuantitySpec(column="y", reduce="at", time=0.25), series) == pytest.approx(1.25)
    crossing = QuantitySpec(column="y", reduce="crossing", level=0.0)
    assert reduce(crossing, series) == pytest.approx(2 / 3)
    never = QuantitySpec(column="y", reduce="crossing", level=5.0)
    assert np.isnan(reduce(never, series))


def test_grid_of_levels_and_an_expression_parameter(tmp_path):
    """source = a*x: heat_flow_left = k (T_R - T_L)/L + a L^2/6 for every combination."""
    path = write(
        tmp_path,
        {
            "parameters": {
                "physics.heat.conductivity": {"distribution": "uniform", "lower": 10, "upper": 20},
                "a": {"path": "physics.heat.source", "expression": "{a}*x", "values": [1e4, -2e4]},
            },
            "quantities": {"flow": {"column": "heat_flow_left_W_per_m2"}},
            "method": {"type": "grid", "levels": 3},
        },
    )
    study = Study.from_file(path, tmp_path / "out")
    table = study.run()
    k, a = table.parameters["physics.heat.conductivity"], table.parameters["a"]
    assert sorted(set(k)) == list(np.linspace(10, 20, 3)) and len(table) == 6
    difference = 320.0 - 300.0  # the case's end temperatures
    exact = k * difference / LENGTH + a * LENGTH**2 / 6
    assert np.allclose(table.quantities["flow"], exact, rtol=1e-10)


def test_reuse_of_a_built_simulation_equals_a_fresh_build():
    """Transient, with a prescribed field read by an expression (the calibration layout)."""
    case = CASES / "reaction_diffusion.toml"
    base = {
        "mesh.cells": [20],
        "time.dt": 0.05,
        "physics.rate": {"type": "prescribed", "fields": {"k": {"units": "1/s", "value": 1.0}}},
        "physics.mass_transport.species.c.source": "-k*c",
    }
    template = Simulation.from_case(case, base, comm=MPI.COMM_SELF)
    template.run()
    for values in (
        {"physics.rate.fields.k.value": 2.5},
        {"physics.mass_transport.species.c.diffusivity": 0.3},
    ):
        loaded = load_case(case, base | values)
        assert template.reuse(loaded)
        reused = template.run().quantities
        fresh = Simulation(load_case(case, base | values), MPI.COMM_SELF).run().quantities
        for column, series in fresh.items():
            assert np.array_equal(reused[column], series), column
    assert not template.reuse(load_case(case, base | {"time.dt": 0.1}))  # not a constant


class BakedSource(Physics):
    """-u'' = s on (0, 1), u = 0 at both ends; its quantity reads s as a plain number when the
    forms are built (what a plug-in should not do, and what the reuse check must catch)."""

    name = "baked_source"

    class Parameters(Parameters):
        source: Property = quantity("1/m^2", 1.0, "Source s")

    @property
    def provides(self):
        return [FieldSpec("u", "scalar", "dimensionless", ("Lagrange", 2))]

    def residual(self, ctx):
        u, v = ctx.field("u"), ctx.test("u")
        s = ctx.coefficient(self.params.source)
        return (ufl.inner(ufl.grad(u), ufl.grad(v)) - s * v) * ctx.dx()

    def dirichlet(self, ctx):
        return [Dirichlet("u", side, 0.0) for side in ("left", "right")]

    def quantities(self, ctx):
        baked = self.params.source.value  # a float in the form: a new value needs a new form
        scaled = baked * ctx.field("u") * ctx.dx()
        return {
            "scaled": Quantity.integral(scaled, "dimensionless", "s times the integral"),
            "integral": Quantity.integral(ctx.field("u") * ctx.dx(), "dimensionless", "int u"),
        }


def _baked_study(tmp_path, monkeypatch, column: str):
    from app import registry

    classes = {"baked_source": BakedSource}
    monkeypatch.setattr(registry, "discover", lambda: registry.Plugins(classes, {}))
    case = tmp_path / "baked.toml"
    case.write_text(
        tomli_w.dumps({"mesh": {"type": "interval", "cells": [8]}, "physics": {"baked_source": {}}})
    )
    path = tmp_path / "study.toml"
    path.write_text(
        tomli_w.dumps(
            {
                "case": str(case),
                "parameters": {"physics.baked_source.source": {"values": [1.0, 2.0, 3.0]}},
                "quantities": {column: {"column": column}},
                "method": {"type": "grid"},
            }
        )
    )
    return Study.from_file(path, tmp_path / "out")


def test_reuse_check_catches_a_plugin_that_bakes_a_parameter(tmp_path, monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, logger="scalebridge.study"):
        table = _baked_study(tmp_path, monkeypatch, "scaled").run()
    assert "members are built afresh" in caplog.text
    s = table.parameters["physics.baked_source.source"]
    # u = s x (1 - x)/2 (exact in P2), so s * int u = s^2/12; a reused simulation would give
    # s_first * s/12 instead
    assert np.allclose(table.quantities["scaled"], s**2 / 12, rtol=1e-10)


def test_reuse_check_reads_only_the_columns_the_study_reduces(tmp_path, monkeypatch, caplog):
    """A column the study never reads may differ (a round-off residual does, by 1e-17): the
    members still share one built simulation, and what the study reads is right."""
    with caplog.at_level(logging.WARNING, logger="scalebridge.study"):
        table = _baked_study(tmp_path, monkeypatch, "integral").run()
    assert "members are built afresh" not in caplog.text
    s = table.parameters["physics.baked_source.source"]
    assert np.allclose(table.quantities["integral"], s / 12, rtol=1e-10)  # int s x(1-x)/2


def test_member_run_folders_record_each_members_case(tmp_path):
    path = write(
        tmp_path,
        {
            "keep_runs": True,
            "parameters": {"physics.heat.conductivity": {"values": [11.0, 13.0, 17.0]}},
            "quantities": {"flow": {"column": "heat_flow_left_W_per_m2"}},
            "method": {"type": "grid"},
        },
    )
    Study.from_file(path, tmp_path / "out").run()
    for index, conductivity in enumerate([11.0, 13.0, 17.0]):
        run = tmp_path / "out" / "members" / f"{index:06d}"
        stored = Simulation.from_case(run / "case.toml").loaded.resolved()
        assert stored["physics"]["heat"]["conductivity"] == conductivity
        assert (run / "quantities.csv").is_file()


def test_nested_parameter_tables_read_as_dotted_paths(tmp_path):
    """Unquoted dotted keys nest in TOML; the study reads them as the dotted paths."""
    path = tmp_path / "nested.toml"
    path.write_text(
        f"""case = "{ROD}"
quantities = ["heat_flow_left_W_per_m2"]

[parameters.physics.heat]
conductivity = {{ distribution = "uniform", lower = 10.0, upper = 20.0 }}

[parameters.physics.heat.boundaries.left.value]
distribution = "normal"
mean = 300.0
std = 2.0

[method]
type = "monte_carlo"
samples = 2
"""
    )
    spec = load_study(path)
    assert list(spec.parameters) == [
        "physics.heat.conductivity",
        "physics.heat.boundaries.left.value",
    ]
    assert spec.quantities["heat_flow_left_W_per_m2"].reduce == "final"
