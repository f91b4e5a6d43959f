"""The console script ends without the interpreter's teardown (app/process_end.py): every result
file is complete and readable afterwards, PETSc and MPI are finalised, and exit codes are kept,
on 1 and 2 ranks. The Python API never ends the process."""

import json
import os
import pstats
import subprocess

import numpy as np
import pytest

from app import run_reader
from app.cli import main
from tests.conftest import BIN, CASES, ROOT, read_quantities, scalebridge

# two minutes of the heated plate on a coarse mesh: outputs at 0, 60 and 120 s
SHORT_PLATE = ["--set", "time.end=120", "--set", "mesh.cells=[8,4]", "--set", "output.vtx=true"]
OUTPUT_TIMES = [0.0, 60.0, 120.0]


def last_temperatures(run) -> tuple[np.ndarray, np.ndarray]:
    """The nodes and temperatures at the last time of the XDMF file, sorted by coordinates."""
    series = run_reader.open_run(run).fields["temperature"]
    assert series.times == OUTPUT_TIMES
    data = run_reader.read_snapshot(series, -1)
    points = np.round(np.asarray(data.points), 12)
    order = np.lexsort(points.T[::-1])
    return points[order], np.asarray(data.point_data["temperature"])[order]


@pytest.mark.mpi
def test_every_output_is_complete_after_the_fast_exit_on_one_and_two_ranks(tmp_path):
    """XDMF/HDF5 readable at the last time, each VTX stream closed (ADIOS2 writes one 64-byte
    index record per step after a 64-byte header, and its profile only when a file is closed),
    the CSV's rows all there, the log's last line and provenance written; the same temperatures
    on both rank counts."""
    fields = []
    for ranks in (1, 2):
        out = tmp_path / f"np{ranks}"
        process = scalebridge("run", CASES / "heated_plate.toml", "-o", out, *SHORT_PLATE,
                              ranks=ranks)  # fmt: skip
        assert process.returncode == 0, process.stderr
        assert read_quantities(out)["time_s"] == OUTPUT_TIMES
        assert json.loads((out / "provenance.json").read_text())["status"] == "completed"
        assert "run completed" in (out / "run.log").read_text().splitlines()[-1]
        streams = sorted(out.glob("*.bp"))
        assert streams
        for stream in streams:
            assert (stream / "md.idx").stat().st_size == 64 * (1 + len(OUTPUT_TIMES))
            json.loads((stream / "profiling.json").read_text())
        fields.append(last_temperatures(out))
    (points, serial), (points_np2, parallel) = fields
    np.testing.assert_array_equal(points, points_np2)
    assert serial.max() > 293.15 + 1  # the heater warmed the plate
    assert np.abs(serial - parallel).max() <= 1e-10 * serial.max()


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_petsc_reports_at_finalisation_and_exit_codes_are_kept(tmp_path, ranks):
    """PETSc's -log_view prints (PetscFinalize ran and its C stream was flushed into a pipe);
    bad input still exits with 2 and one message."""
    env = os.environ | {"PETSC_OPTIONS": "-log_view"}
    command = [str(BIN / "scalebridge"), "run", str(CASES / "heated_plate.toml"),
               "-o", str(tmp_path / "out"), "-q", *SHORT_PLATE]  # fmt: skip
    if ranks > 1:
        command = [str(BIN / "mpirun"), "-n", str(ranks), *command]
    process = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert process.returncode == 0, process.stderr
    assert process.stdout.count("PETSc Performance Summary") == 1
    assert f"with {ranks} process" in process.stdout
    bad = scalebridge("run", CASES / "heated_plate.toml", "-o", tmp_path / "bad",
                      "--set", "physics.heat.density=-5", ranks=ranks)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.count("physics.heat.density: must be > 0") == 1
    assert "Traceback" not in bad.stderr


def test_the_python_entry_point_returns_instead_of_ending_the_process(capsys):
    assert main(["modules", "heat"]) == 0
    assert "heat" in capsys.readouterr().out


def test_a_profiled_command_ends_through_the_interpreter(tmp_path):
    """cProfile writes its file after the command returns: the fast exit steps aside."""
    profile = tmp_path / "modules.prof"
    command = [str(BIN / "python"), "-m", "cProfile", "-o", str(profile), "-m", "app.cli",
               "modules", "heat"]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert process.returncode == 0, process.stderr
    assert pstats.Stats(str(profile)).total_calls > 0


@pytest.mark.mpi
def test_every_rank_ends_cleanly_for_mpirun(tmp_path):
    """A wrapper that outlives its rank's process (as GNU time does, writing its report) is not
    killed: each rank finished MPICH's part of the process manager's protocol (it was killed
    when the ranks ended with os._exit)."""
    wrapper = '"$@" && sleep 0.3 && echo done > "$0/rank_$PMI_RANK"'
    command = [str(BIN / "mpirun"), "-n", "2", "sh", "-c", wrapper, str(tmp_path),
               str(BIN / "scalebridge"), "modules", "heat"]  # fmt: skip
    for _ in range(3):
        process = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        assert process.returncode == 0, process.stdout + process.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["rank_0", "rank_1"]
        for report in tmp_path.iterdir():
            report.unlink()
