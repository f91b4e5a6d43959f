"""Quantities a case defines itself (``[output.quantities]``): means, ratios and integrals of
expressions of fields over the mesh, a region, a boundary or an interface; bad input as one
case error at its path; the same on 1 and 2 ranks."""

import math

import pytest
import tomli_w

from app.cli import main
from app.errors import CaseError
from app.simulation import Simulation
from tests.conftest import CASES, assert_same_quantities, read_quantities, scalebridge


def square(quantities: dict) -> dict:
    """The unit square with a left and a right region, and prescribed fields to read."""
    return {
        "mesh": {
            "type": "rectangle",
            "cells": [8, 8],
            "regions": {"west": "x < 0.5", "east": "x > 0.5"},
        },
        "physics": {
            "given": {
                "type": "prescribed",
                "fields": {
                    "f": {"value": "x"},
                    "v": {"units": "m/s", "value": ["x", "2*y"]},
                    "s": {"value": [["x", "y"], ["y", "3"]]},
                },
            }
        },
        "output": {"xdmf": False, "quantities": quantities},
    }


def values(quantities: dict) -> dict:
    q = Simulation.from_case(square(quantities)).run().quantities
    return {name: column[-1] for name, column in q.items()}


def test_means_ratios_and_integrals():
    q = values(
        {
            "mean_f": {"value": "f"},
            "east_f": {"value": "f", "over": "east"},
            "right_f": {"value": "f", "over": "right"},
            "integral": {"value": "f*y", "integral": True},
            "ratio": {"value": "x*y", "per": "y"},
            "v_y": {"value": "v_y", "over": "top", "units": "m/s"},
            "s_yx": {"value": "s_yx + s_yy"},
        }
    )
    assert q["mean_f"] == pytest.approx(0.5, rel=1e-12)
    assert q["east_f"] == pytest.approx(0.75, rel=1e-12)
    assert q["right_f"] == pytest.approx(1.0, rel=1e-12)  # a boundary mean
    assert q["integral"] == pytest.approx(0.25, rel=1e-12)
    assert q["ratio"] == pytest.approx(0.5, rel=1e-12)
    assert q["v_y_m_per_s"] == pytest.approx(2.0, rel=1e-12)  # units name the column
    assert q["s_yx"] == pytest.approx(3.5, rel=1e-12)


def test_mean_over_an_interface():
    """The two-layer wall's interface (x = 0.05): the mean of the two sides of a cellwise
    field that jumps there, 1 on the insulation and 3 on the brick."""
    spec = {
        "mesh": {"type": "gmsh", "file": "../meshes/two_layer.py"},
        "physics": {
            "given": {
                "type": "prescribed",
                "fields": {"k": {"value": {"insulation": 1.0, "brick": 3.0}, "degree": 0}},
            }
        },
        "output": {
            "xdmf": False,
            "quantities": {
                "k_interface": {"value": "k", "over": "interface"},
                "x_interface": {"value": "x", "over": "interface"},
            },
        },
    }
    q = Simulation.from_case(spec, base_dir=CASES).run().quantities
    assert q["k_interface"][-1] == pytest.approx(2.0, rel=1e-12)
    assert q["x_interface"][-1] == pytest.approx(0.05, rel=1e-12)


def test_a_ratio_of_zeros_is_nan():
    q = values({"undefined": {"value": "0*f", "per": "0*f"}})
    assert math.isnan(q["undefined"])


@pytest.mark.parametrize(
    ("quantity", "path", "message"),
    [
        ({"value": "v_z"}, "output.quantities.q.value", "unknown name 'v_z' (did you mean 'v_y'?)"),
        ({"value": "v"}, "output.quantities.q.value", "unknown name 'v'"),
        ({"value": "f", "over": "easy"}, "output.quantities.q.over", "did you mean 'east'?"),
        ({"value": "f > 1"}, "output.quantities.q.value", "is a condition"),
        ({"value": "f", "per": "f", "integral": True}, "output.quantities.q", "takes no per"),
        ({"value": "f", "units": "parsec/fortnight2"}, "output.quantities.q.units", "unknown"),
    ],
)
def test_bad_input_is_one_case_error_at_its_path(quantity, path, message):
    with pytest.raises(CaseError) as error:
        Simulation.from_case(square({"q": quantity})).build()
    assert error.value.path == path
    assert message in str(error.value)


def test_a_name_taken_by_a_plugin_column_is_refused():
    spec = square({"min_temperature_K": {"value": "f"}})
    spec["physics"]["heat"] = {}
    spec["output"]["quantities"] = {"min_temperature": {"value": "f", "units": "K"}}
    with pytest.raises(CaseError, match="already a quantity of 'heat'"):
        Simulation.from_case(spec).build()


def test_the_cli_reports_a_bad_quantity_in_one_line(tmp_path, capsys):
    text = (CASES / "heated_plate.toml").read_text()
    case = tmp_path / "bad.toml"
    case.write_text(text + '\n[output.quantities]\nmean_T = { value = "temprature" }\n')
    assert main(["check", str(case)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "output.quantities.mean_T.value: unknown name" in lines[0]
    assert "did you mean 'temperature'?" in lines[0]


@pytest.mark.mpi
def test_one_and_two_ranks_agree(tmp_path):
    spec = square(
        {
            "mean_f": {"value": "f*f"},
            "east": {"value": "f + v_y", "over": "east"},
            "top": {"value": "s_xy", "over": "top"},
            "ratio": {"value": "x*f", "per": "1 + y"},
        }
    )
    spec["mesh"]["cells"] = [7, 5]  # partitions cut cells of the regions differently
    case = tmp_path / "square.toml"
    case.write_text(tomli_w.dumps(spec))
    results = []
    for ranks in (1, 2):
        out = tmp_path / f"np{ranks}"
        process = scalebridge("run", case, "-o", out, "-q", ranks=ranks)
        assert process.returncode == 0, process.stderr
        results.append(read_quantities(out))
    assert_same_quantities(*results, rtol=1e-12)
    assert results[0]["top"][-1] == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("ranks", [1, 2])
def test_a_quantity_undefined_mid_run_names_its_path(tmp_path, ranks):
    """sqrt(T_max - 0.6 T_peak) is defined until the slab's peak temperature has fallen by 40 %
    (4/pi exp(-pi^2 t) = 0.6 at t = 0.076 s): the run stops there with one message at the
    quantity's path and exit code 2 on every rank, not an internal error (exit 70)."""
    peak = 'output.quantities.peak={ maximum = "max_temperature_K", units = "K" }'
    excess = (
        'output.quantities.excess={ value = "sqrt(max_temperature_K - 0.6*peak_K)", '
        'units = "K**0.5" }'
    )
    args = ("--set", peak, "--set", excess, "--set", "output.xdmf=false")
    run = scalebridge("run", CASES / "slab_cooling.toml", *args, "-o", tmp_path, ranks=ranks)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert (
        "output.quantities.excess.value: cannot evaluate 'sqrt(max_temperature_K - 0.6*pea"
        in lines[0]
    )
    assert "invalid value encountered in sqrt at t = 0.07" in lines[0]
    assert "Fix: guard it where it is undefined" in lines[0]
    rows = read_quantities(tmp_path)["time_s"]
    assert rows[-1] == pytest.approx(0.05)  # the output before it is kept


@pytest.mark.parametrize("ranks", [1, 2])
def test_a_quantity_undefined_where_every_field_is_finite_is_refused(tmp_path, ranks):
    """The mean of log(f - 0.5) (f = x) integrates the log of negative numbers over half the
    square: NaN over a non-zero area, which was written and the run called completed (only a
    ratio of zeros is NaN by design). Now one message at the quantity's path, exit code 2 on
    every rank, and the run folder says it failed."""
    case = tmp_path / "square.toml"
    case.write_text(tomli_w.dumps(square({"q": {"value": "log(f - 0.5)"}})))
    run = scalebridge("run", case, "-o", tmp_path / "out", "-q", ranks=ranks)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert "output.quantities.q: 'log(f - 0.5)' is nan at t = 0 s, where every field" in lines[0]
    assert "Fix: guard it where it is undefined" in lines[0]
    assert '"status": "failed"' in (tmp_path / "out" / "provenance.json").read_text()
