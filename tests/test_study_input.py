"""Bad study files: one message naming the place in the study file, exit code 2, and no member
run (no study folder), on one rank and on two."""

import numpy as np
import pytest
import tomli_w

from app.cli import main
from app.studies.design import from_unit
from app.studies.spec import TRUNCATION_REACH, ParameterSpec
from tests.conftest import CASES, scalebridge

ROD = str(CASES / "heated_rod.toml")


def study(tmp_path, **changes) -> str:
    """A small valid study of the heated rod, with top-level tables replaced."""
    data = {
        "case": ROD,
        "parameters": {
            "physics.heat.conductivity": {"distribution": "uniform", "lower": 10.0, "upper": 20.0}
        },
        "quantities": {"flow": {"column": "heat_flow_left_W_per_m2"}},
        "method": {"type": "monte_carlo", "samples": 4},
    } | changes
    path = tmp_path / "study.toml"
    path.write_text(tomli_w.dumps(data))
    return str(path)


def uniform(lower, upper):
    return {"distribution": "uniform", "lower": lower, "upper": upper}


BAD = {
    "unknown parameter path": (
        {"parameters": {"physics.heat.condctivity": uniform(10.0, 20.0)}},
        "parameters.physics.heat.condctivity: 'physics.heat.condctivity' cannot be set: "
        "physics.heat.condctivity: unknown key 'condctivity' (did you mean 'conductivity'?)",
    ),
    "path that adds an instance": (
        {"parameters": {"physics.cooling.conductivity": uniform(10.0, 20.0)}},
        "parameters.physics.cooling.conductivity: 'physics.cooling.conductivity' cannot be set",
    ),
    "path that adds a boundary": (
        {"parameters": {"physics.heat.boundaries.top": {"values": [{"type": "flux", "value": 1}]}}},
        "'physics.heat.boundaries.top' is not a value of the case: setting it adds "
        "'physics.heat.boundaries.top'; under 'physics.heat.boundaries' there are: left, right",
    ),
    "no parameters": (
        {"parameters": {}},
        "parameters: expected at least 1 entry, got 0. Fix: add a table [parameters.<name>]",
    ),
    "bounds in the wrong order": (
        {"parameters": {"physics.heat.conductivity": uniform(20.0, 10.0)}},
        "parameters.physics.heat.conductivity: lower (20) must be below upper (10).",
    ),
    "truncated normal out of its normal's reach": (
        {
            "parameters": {
                "physics.heat.conductivity": {
                    "distribution": "truncated_normal",
                    "mean": 15.0,
                    "std": 0.5,
                    "lower": 30.0,  # 30 std above the mean: every member took 19.11, below it
                    "upper": 40.0,
                }
            }
        },
        "parameters.physics.heat.conductivity: the interval [30, 40] lies 30 standard "
        "deviations from the mean 15",
    ),
    "bounds outside the valid range": (
        {"parameters": {"physics.heat.conductivity": uniform(-1.0, 10.0)}},
        "parameters.physics.heat.conductivity: the lower bound, -1.0, is not accepted by the "
        "case: physics.heat.conductivity: must be > 0",
    ),
    "normal reaching invalid values": (
        {
            "parameters": {
                "physics.heat.conductivity": {"distribution": "normal", "mean": 15.0, "std": 5.0}
            }
        },
        "the 1e-06 quantile, -8.76",
    ),
    "negative standard deviation": (
        {
            "parameters": {
                "physics.heat.conductivity": {"distribution": "normal", "mean": 15.0, "std": -1.0}
            }
        },
        "parameters.physics.heat.conductivity.std: expected greater than 0, got -1.0",
    ),
    "misspelt distribution": (
        {"parameters": {"physics.heat.conductivity": {"distribution": "unifrom"}}},
        "got 'unifrom' (did you mean 'uniform'?)",
    ),
    "arguments of another distribution": (
        {"parameters": {"physics.heat.conductivity": {"distribution": "lognormal", "mean": 1.0}}},
        "lognormal takes mu, sigma: mu, sigma missing; remove mean",
    ),
    "quantity no run writes": (
        {"quantities": {"flow": {"column": "heat_flow_lft_W_per_m2"}}},
        "quantities.flow.column: no run of the case writes a column 'heat_flow_lft_W_per_m2' "
        "(did you mean 'heat_flow_left_W_per_m2'?)",
    ),
    "reduction over time of a steady case": (
        {"quantities": {"flow": {"column": "heat_flow_left_W_per_m2", "reduce": "integral"}}},
        "quantities.flow.reduce: the case is steady (one row per run), so it has no time integral",
    ),
    "unknown method": (
        {"method": {"type": "sobol", "samples": 4}},
        "method: unknown type 'sobol'",
    ),
    "saltelli samples not a power of two": (
        {"method": {"type": "saltelli", "samples": 100}},
        "method: samples must be a power of 2",
    ),
    "placeholder of no parameter": (
        {
            "parameters": {
                "q": uniform(1.0, 2.0) | {"path": "physics.heat.source", "expression": "{q}*{r}"}
            }
        },
        "parameters.q.expression: {r} is not a parameter of the study",
    ),
}


@pytest.mark.parametrize("changes, message", BAD.values(), ids=list(BAD))
def test_bad_study_is_one_message_and_exit_2_before_any_member(tmp_path, capsys, changes, message):
    path = study(tmp_path, **changes)
    assert main(["study", path, "-o", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.err.count("error:") == 1 and "Traceback" not in captured.err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_a_folder_given_as_the_study_file_is_named_as_one(tmp_path, capsys):
    assert main(["study", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"scalebridge: error: {tmp_path}: study file '{tmp_path}' is a folder. Fix: give the "
        "path of the study file\n"
    )


def test_missing_case_file_names_the_study_key(tmp_path, capsys):
    path = study(tmp_path, case="no_such_case.toml")
    assert main(["study", path]) == 2
    assert "case: case file" in capsys.readouterr().err


@pytest.mark.mpi
def test_bad_study_on_two_ranks_is_one_message(tmp_path):
    changes, message = BAD["quantity no run writes"]
    process = scalebridge("study", study(tmp_path, **changes), "-o", tmp_path / "out", ranks=2)
    assert process.returncode == 2
    assert process.stderr.count("scalebridge: error:") == 1
    assert message in process.stderr
    assert not (tmp_path / "out").exists()


def test_ranks_that_do_not_split_into_groups_are_refused(tmp_path):
    path = study(tmp_path, ranks_per_member=2)
    process = scalebridge("study", path, "-o", tmp_path / "out", ranks=1)
    assert process.returncode == 2
    assert "ranks_per_member: 1 ranks do not split into groups of 2" in process.stderr


def test_a_set_constant_may_change_the_values_written_with_it(tmp_path):
    """battery_discharge.toml writes the electrolyte's transference as the set's t_plus, which
    the resolved case holds as its number: varying parameters.t_plus changes it, as it should,
    and the study is accepted (it was refused as a path that 'adds' the transference)."""
    from app.studies.runner import Study

    data = {
        "case": str(CASES / "battery_discharge.toml"),
        "overrides": {"parameters.t_plus": 0.2594},
        "parameters": {"parameters.t_plus": uniform(0.2, 0.4)},
        "quantities": {"capacity": {"column": "discharge_capacity_Ah"}},
        "method": {"type": "monte_carlo", "samples": 4},
    }
    path = tmp_path / "study.toml"
    path.write_text(tomli_w.dumps(data))
    study = Study.from_file(path, tmp_path / "out")
    assert study.names == ["parameters.t_plus"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sigmas", [0.0, 3.0, TRUNCATION_REACH, -TRUNCATION_REACH])
def test_a_truncated_normal_within_reach_samples_its_interval(sigmas):
    """Up to the reach the spec allows, chaospy's quantiles are scipy's (beyond 7.5 std they
    are not: raising the reach fails here)."""
    from scipy import stats

    lower = 15.0 + sigmas * 0.5 if sigmas >= 0 else 15.0 + sigmas * 0.5 - 2.0
    upper = lower + 2.0
    spec = ParameterSpec(
        distribution="truncated_normal", mean=15.0, std=0.5, lower=lower, upper=upper
    )
    u = np.linspace(0.001, 0.999, 41)
    values = np.array(from_unit(spec, u))
    exact = stats.truncnorm((lower - 15.0) / 0.5, (upper - 15.0) / 0.5, 15.0, 0.5).ppf(u)
    assert np.all((values >= lower) & (values <= upper))
    np.testing.assert_allclose(values, exact, atol=1e-4 * 0.5)


def test_overwrite_keeps_a_study_folder_that_holds_the_study_file(tmp_path, capsys):
    """--overwrite deleted the folder with the study file kept in it, then failed reading it:
    the study file was lost. Now refused before anything is deleted."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.toml").write_text("# the copy an earlier study kept\n")
    mine = out / "mine.toml"
    mine.write_text((tmp_path / study(tmp_path)).read_text())
    assert main(["study", str(mine), "-o", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"output: '{out}' holds '{mine}', a file this study reads, which --overwrite" in err
    assert mine.exists()
