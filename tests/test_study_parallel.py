"""Studies on MPI and across interruptions: two groups of ranks write the same table as one
rank; a study killed (SIGKILL) mid-way runs only its missing members when started again, and
ends with the table an uninterrupted run writes."""

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from tests.conftest import BIN, CASES, ROOT, scalebridge


def read_table(folder: Path, keep_wall_time: bool = False) -> list[list[str]]:
    """results.csv, without the wall-time column unless asked."""
    with (folder / "results.csv").open(newline="") as stream:
        rows = list(csv.reader(stream))
    column = rows[0].index("wall_time_s")
    return rows if keep_wall_time else [r[:column] + r[column + 1 :] for r in rows]


def rod_study(tmp_path: Path, **changes) -> Path:
    data = {
        "case": str(CASES / "heated_rod.toml"),
        "seed": 4,
        "parameters": {
            "physics.heat.conductivity": {"distribution": "uniform", "lower": 10.0, "upper": 20.0},
            "physics.heat.source": {"distribution": "lognormal", "mu": 9.9, "sigma": 0.1},
        },
        "quantities": {
            "flow": {"column": "heat_flow_left_W_per_m2"},
            "hottest": {"column": "max_temperature_K"},
        },
        "method": {"type": "sobol_sequence", "samples": 24},
    } | changes
    path = tmp_path / "rod.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def slow_study(tmp_path: Path) -> Path:
    """Members of about a second each: the Danckwerts problem, built afresh every time."""
    data = {
        "case": str(CASES / "reaction_diffusion.toml"),
        "seed": 9,
        "reuse": False,
        "overrides": {"mesh.cells": [40], "time.dt": 0.02},
        "parameters": {
            "physics.mass_transport.species.c.diffusivity": {
                "distribution": "uniform",
                "lower": 0.5,
                "upper": 2.0,
            }
        },
        "quantities": {
            "uptake": {"column": "outflow_c_left_mol_per_s_per_m2", "reduce": "integral"},
            "amount": {"column": "amount_c_mol_per_m2", "reduce": "at", "time": 0.5},
        },
        "method": {"type": "monte_carlo", "samples": 10},
    }
    path = tmp_path / "slow.toml"
    path.write_text(tomli_w.dumps(data))
    return path


@pytest.mark.mpi
def test_two_groups_write_the_table_one_rank_writes(tmp_path):
    path = rod_study(tmp_path)
    serial = scalebridge("study", path, "-o", tmp_path / "one", "-q")
    assert serial.returncode == 0, serial.stderr
    groups = scalebridge("study", path, "-o", tmp_path / "two", "-q", ranks=2)
    assert groups.returncode == 0, groups.stderr
    assert read_table(tmp_path / "one") == read_table(tmp_path / "two")  # bit for bit
    assert len(read_table(tmp_path / "one")) == 1 + 24


@pytest.mark.mpi
def test_members_on_two_ranks_each_agree_with_one_rank(tmp_path):
    path = rod_study(tmp_path, ranks_per_member=2)
    serial = scalebridge("study", rod_study(tmp_path), "-o", tmp_path / "one", "-q")
    shared = scalebridge("study", path, "-o", tmp_path / "shared", "-q", ranks=2)
    assert serial.returncode == 0 and shared.returncode == 0, shared.stderr
    one, two = read_table(tmp_path / "one"), read_table(tmp_path / "shared")
    assert [row[:4] for row in one] == [row[:4] for row in two]  # members, parameters
    for a, b in zip(one[1:], two[1:], strict=True):
        assert np.allclose(np.array(a[4:6], float), np.array(b[4:6], float), rtol=1e-10)


def part_rows(folder: Path) -> list[list[str]]:
    rows = []
    for part in (folder / "parts").glob("*.csv"):
        with part.open(newline="") as stream:
            lines = list(csv.reader(stream))[1:]
        rows += [line for line in lines if line and line[1] == "completed"]
    return rows


@pytest.mark.mpi
@pytest.mark.slow
def test_killed_study_resumes_with_only_the_missing_members(tmp_path):
    path = slow_study(tmp_path)
    uninterrupted = scalebridge("study", path, "-o", tmp_path / "whole", "-q")
    assert uninterrupted.returncode == 0, uninterrupted.stderr

    folder = tmp_path / "killed"
    command = [str(BIN / "mpirun"), "-n", "2", str(BIN / "scalebridge"), "study", str(path)]
    process = subprocess.Popen(
        [*command, "-o", str(folder), "-q"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: mpirun and both ranks get the signal
    )
    deadline = time.monotonic() + 300
    while len(part_rows(folder)) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = {row[0]: row for row in part_rows(folder)}
    assert 3 <= len(finished) < 10, "the kill came too late to leave members missing"
    assert not (folder / "results.csv").exists()

    resumed = scalebridge("study", path, "-o", folder)  # one rank now: any layout resumes
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(finished)} already in" in resumed.stdout
    table = read_table(folder, keep_wall_time=True)
    for row in table[1:]:
        if row[0] in finished:  # recorded before the kill, not run again
            assert row == finished[row[0]]
    assert read_table(folder) == read_table(tmp_path / "whole")


def test_a_failing_member_is_recorded_and_the_study_goes_on(tmp_path):
    """One Newton iteration cannot solve the nonlinear rod: that member fails, the others run."""
    path = rod_study(
        tmp_path,
        overrides={"physics.heat.conductivity": "15*(1 + 1e-3*temperature)"},
        parameters={"solver.newton.max_iterations": {"values": [25, 1, 10]}},
        method={"type": "grid"},
    )
    process = scalebridge("study", path, "-o", tmp_path / "out")
    assert process.returncode == 0, process.stderr
    assert "3 members, 1 failed" in process.stdout
    table = read_table(tmp_path / "out")
    header, rows = table[0], table[1:]
    assert [row[1] for row in rows] == ["completed", "failed", "completed"]
    assert rows[1][-1] == "the solve failed at t = 0 s (Newton DIVERGED_MAX_IT)"
    assert rows[1][header.index("flow")] == "nan"
    assert rows[0][header.index("flow")] == rows[2][header.index("flow")]  # converged alike
