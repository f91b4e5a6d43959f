"""Bayesian calibration of the Danckwerts problem (cases/studies/reaction_diffusion_calibration
.toml): synthetic uptake data from a known diffusivity and rate constant with Gaussian noise;
the posterior must cover the truth and narrow with more data; direct runs resume exactly."""

import csv
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from mpi4py import MPI

from app.simulation import Simulation
from app.studies.design import member_overrides
from app.studies.runner import Study
from app.studies.spec import load_study
from tests.conftest import CASES

STUDY = CASES / "studies" / "reaction_diffusion_calibration.toml"
D, K = "physics.mass_transport.species.c.diffusivity", "physics.rate.fields.k.value"
COLUMN = "outflow_c_left_mol_per_s_per_m2"


def synthetic_data(path: Path, times, truth: dict, noise: float, seed: int) -> None:
    """The study's model at ``truth``, at ``times``, plus Gaussian noise: a data CSV."""
    spec = load_study(STUDY)
    overrides = member_overrides(spec, truth) | {"output.times": list(times)}
    case = (STUDY.parent / spec.case).resolve()
    series = Simulation.from_case(case, overrides, comm=MPI.COMM_SELF).run().quantities
    values = np.interp(times, series["time_s"], series[COLUMN])
    values += noise * np.random.default_rng(seed).normal(size=len(times))
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["time_s", COLUMN])
        writer.writerows(
            [[repr(float(t)), repr(float(v))] for t, v in zip(times, values, strict=True)]
        )


def calibration_study(tmp_path: Path, data: Path, name: str, **method) -> Path:
    raw = tomllib.loads(STUDY.read_text())
    raw["case"] = str((STUDY.parent / raw["case"]).resolve())
    raw["method"] |= {"data": str(data)} | method
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def test_shipped_data_are_the_documented_synthetic_data(tmp_path):
    shipped = STUDY.parent / "data" / "danckwerts_uptake.csv"
    times = np.genfromtxt(shipped, delimiter=",", names=True)["time_s"]
    synthetic_data(tmp_path / "again.csv", times, {D: 0.8, K: 1.5}, noise=0.01, seed=11)
    again = np.genfromtxt(tmp_path / "again.csv", delimiter=",", names=True)
    expected = np.genfromtxt(shipped, delimiter=",", names=True)
    assert np.allclose(again[COLUMN], expected[COLUMN], rtol=1e-12)


def test_posterior_covers_the_truth_and_narrows_with_more_data(tmp_path):
    truth = {D: 0.8, K: 1.5}
    widths = []
    for count in (5, 20):
        data = tmp_path / f"data{count}.csv"
        synthetic_data(data, np.linspace(0.05, 1.0, count), truth, noise=0.01, seed=count)
        path = calibration_study(tmp_path, data, f"points{count}", steps=1500, burn=500)
        study = Study.from_file(path, tmp_path / f"out{count}")
        table = study.run()
        assert len(table) == 40 and table.completed.all()  # the surrogate's design runs
        posterior = study.posterior
        mean, std, interval = posterior.mean, posterior.std, posterior.interval(0.95)
        for i, name in enumerate(posterior.names):
            assert interval[i, 0] < truth[name] < interval[i, 1], (count, name, interval[i])
            assert abs(mean[i] - truth[name]) < 2 * std[i], (count, name, mean[i], std[i])
        assert 0.2 < posterior.acceptance < 0.9
        widths.append(interval[:, 1] - interval[:, 0])
        summary = study.analysis["posterior"]
        assert summary["runs"] == 40 and summary["surrogate_sd_over_noise"] < 0.3
        for figure in ("posterior_corner.png", "calibration_fit.png"):
            assert (tmp_path / f"out{count}" / "plots" / figure).stat().st_size > 10_000
    assert np.all(widths[1] < 0.8 * widths[0]), widths  # 4x the points: about half as wide


def test_direct_runs_follow_one_chain_and_resume_it_exactly(tmp_path):
    """Every walker step is a member; a second run finds every member in the table and
    reproduces the chain bit for bit (the chain asks for the same members in the same order)."""
    data = STUDY.parent / "data" / "danckwerts_uptake.csv"
    path = calibration_study(
        tmp_path, data, "direct", sampler="direct", walkers=4, steps=12, burn=4
    )
    first = Study.from_file(path, tmp_path / "out")
    table = first.run()
    assert first.posterior.runs == len(table) <= 4 * 13
    assert table.completed.all()
    # each member's row holds what its run computed: check one against a fresh run
    member = {name: float(table.parameters[name][-1]) for name in first.names}
    overrides = member_overrides(first.spec, member)
    fresh = Simulation.from_case(first.facts.path, overrides, comm=MPI.COMM_SELF).run()
    data_times = first.data.times
    expected = np.interp(data_times, fresh.quantities["time_s"], fresh.quantities[COLUMN])
    recorded = [table.quantities[q][-1] for q in first.quantities]
    assert np.allclose(recorded, expected, rtol=1e-12)

    again = Study.from_file(path, tmp_path / "out")
    again.run()
    assert np.array_equal(again.posterior.samples, first.posterior.samples)


def test_calibration_needs_priors_not_lists(tmp_path, capsys):
    from app.cli import main

    raw = tomllib.loads(STUDY.read_text())
    raw["case"] = str((STUDY.parent / raw["case"]).resolve())
    raw["method"]["data"] = str((STUDY.parent / raw["method"]["data"]).resolve())
    raw["parameters"][D] = {"values": [0.5, 1.0]}
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(raw))
    assert main(["study", str(path), "-o", str(tmp_path / "out")]) == 2
    assert f"parameters.{D}: calibration needs a distribution" in capsys.readouterr().err


BAD_DATA = {
    "missing column": ({"data_column": "amount"}, "method.data_column: 'amount' is not a column"),
    "zero noise": ({"noise_column": "noise"}, "method.noise_column: noise levels must be positive"),
    "time outside the run": ({"time_column": "late"}, "measured time 5 s is outside the run"),
}


@pytest.mark.parametrize("changes, message", BAD_DATA.values(), ids=list(BAD_DATA))
def test_bad_data_are_refused(tmp_path, capsys, changes, message):
    from app.cli import main

    data = tmp_path / "data.csv"
    data.write_text(f"time_s,late,{COLUMN},noise\n0.1,1,-1.8,0\n0.2,5,-1.4,0\n")
    raw = tomllib.loads(STUDY.read_text())
    raw["case"] = str((STUDY.parent / raw["case"]).resolve())
    raw["method"] |= {"data": str(data)} | changes
    if "noise_column" in changes:
        del raw["method"]["noise"]
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(raw))
    assert main(["study", str(path), "-o", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def spreadsheet_export(path: Path, rows: list[list[str]], time_header: str, scale: float) -> None:
    """The rows as a spreadsheet saves them: a byte-order mark, CRLF, a space after each
    comma, blank lines, and the times divided by ``scale`` under ``time_header``."""
    lines = [f"{time_header}, {rows[0][1]}", ""]
    lines += [f"{float(t) / scale!r}, {v}" for t, v in rows[1:]]
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n\r\n").encode())


@pytest.mark.parametrize(("time_header", "scale"), [("time_s", 1), ("time [h]", 3600),
                                                    ("t (min)", 60)])  # fmt: skip
def test_a_spreadsheet_export_reads_as_the_plain_csv(tmp_path, time_header, scale):
    from app.studies.calibration import read_data

    shipped = STUDY.parent / "data" / "danckwerts_uptake.csv"
    plain = read_data(load_study(STUDY).method, STUDY.parent)
    with shipped.open(newline="") as stream:
        rows = list(csv.reader(stream))
    export = tmp_path / "export.csv"
    spreadsheet_export(export, rows, time_header, scale)
    method = load_study(STUDY).method.model_copy(
        update={"data": str(export), "time_column": time_header}
    )
    read = read_data(method, tmp_path)
    np.testing.assert_allclose(read.times, plain.times, rtol=1e-14)
    np.testing.assert_array_equal(read.values, plain.values)


UNREADABLE_DATA = {
    "UTF-16": (
        "time_s".encode("utf-16"),
        {},
        "method.data: data file '{data}': not UTF-8 text: byte 0xff on line 1",
    ),
    "empty": (b"", {}, "method.data: data.csv is empty. Fix: write a header line"),
    "blank": (b"\n\n", {}, "method.data: data.csv is empty"),
    "time unit": (
        f"time [kg],{COLUMN}\n0.1,-1.8\n".encode(),
        {"time_column": "time [kg]"},
        "method.time_column: the time column 'time [kg]' names the unit 'kg', not a unit of time",
    ),
}


@pytest.mark.parametrize("content, changes, message", UNREADABLE_DATA.values(),
                         ids=list(UNREADABLE_DATA))  # fmt: skip
def test_unreadable_data_are_refused_with_exit_2(tmp_path, capsys, content, changes, message):
    from app.cli import main

    data = tmp_path / "data.csv"
    data.write_bytes(content)
    path = calibration_study(tmp_path, data, "bad", **changes)
    assert main(["study", str(path), "-o", str(tmp_path / "out")]) == 2
    assert message.format(data=data) in capsys.readouterr().err
