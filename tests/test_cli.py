"""The command line: run folders, check, modules, overrides, and the same behaviour under MPI."""

import json
import subprocess
import sys
import tomllib

import pytest
from tqdm import tqdm

import app.scheduler
from app.cli import BROKEN_PIPE
from app.simulation import Simulation
from tests.conftest import BIN, CASES, read_quantities, scalebridge

SHORT_PLATE = ["--set", "time.end=120", "--set", "output.interval=60"]


@pytest.fixture(scope="module")
def plate_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "plate"
    process = scalebridge("run", "cases/heated_plate.toml", "-o", out, "-q", *SHORT_PLATE)
    assert process.returncode == 0, process.stderr
    return out


def test_run_folder_contents(plate_run):
    names = {path.name for path in plate_run.iterdir()}
    assert {"case.toml", "provenance.json", "quantities.csv", "run.log"} <= names
    assert {"fields.xdmf", "fields.h5"} <= names
    provenance = json.loads((plate_run / "provenance.json").read_text())
    assert provenance["status"] == "completed"
    assert provenance["mpi_ranks"] == 1
    for key in ("scalebridge_version", "git_commit", "dolfinx_version", "petsc_version"):
        assert key in provenance
    assert provenance["wall_time_s"] > 0
    assert "completed" in (plate_run / "run.log").read_text()


def test_quantities_table(plate_run):
    q = read_quantities(plate_run)
    columns = list(q)
    assert columns[:3] == ["time_s", "dt_s", "newton_iterations"]
    assert q["time_s"] == [0.0, 60.0, 120.0]  # one row per output time, hit exactly
    assert "heat_flow_heater_W_per_m" in columns and "max_temperature_K" in columns
    # The heater delivers 4e4 W/m^2 over 5 cm: 2 kW per metre of depth enters (negative out).
    assert q["heat_flow_heater_W_per_m"][-1] == pytest.approx(-2000.0)
    assert q["max_temperature_K"][-1] > q["max_temperature_K"][0]


def test_written_case_is_complete_and_reruns(plate_run, tmp_path):
    case = tomllib.loads((plate_run / "case.toml").read_text())
    assert case["time"]["end"] == 120.0 and case["output"]["interval"] == 60.0
    assert case["physics"]["heat"]["density"] == 7850.0  # SI, defaults filled in
    assert case["physics"]["heat"]["initial"] == pytest.approx(293.15)
    again = tmp_path / "again"
    process = scalebridge("run", plate_run / "case.toml", "-o", again, "-q")
    assert process.returncode == 0, process.stderr
    first, second = read_quantities(plate_run), read_quantities(again)
    assert first["max_temperature_K"] == pytest.approx(second["max_temperature_K"], rel=1e-12)


def test_override_changes_the_result(tmp_path):
    out = tmp_path / "weak"
    process = scalebridge(
        "run",
        "cases/heated_plate.toml",
        "-o",
        out,
        "-q",
        *SHORT_PLATE,
        "--set",
        "physics.heat.boundaries.heater.value=2e4",
    )
    assert process.returncode == 0, process.stderr
    assert read_quantities(out)["heat_flow_heater_W_per_m"][-1] == pytest.approx(-1000.0)


def test_check_prints_the_plan():
    process = scalebridge("check", "cases/two_layer_wall.toml")
    assert process.returncode == 0, process.stderr
    out = process.stdout
    for expected in (
        "insulation",
        "brick",
        "interface",
        "temperature [scalar, K, solved] from heat",
        "heat_flux [vector, W/m^2, derived] from heat",
        "steady: one solve",
        "linear, operator reused across steps; solver direct; quadrature degree 2)",
        "heat_flow_left_W_per_m",
        "OK: the case is valid.",
    ):
        assert expected in out, expected
    assert "output: the steady solution; fields: temperature, heat_flux (XDMF)" in out


def test_a_steady_run_reports_its_one_solve(tmp_path):
    """Not "0 steps (0 rejected)", which read as if nothing had been solved."""
    process = scalebridge("run", "cases/two_layer_wall.toml", "-o", tmp_path / "wall")
    assert process.returncode == 0, process.stderr
    assert "run completed: one solve in " in process.stdout + process.stderr
    assert len(read_quantities(tmp_path / "wall")["time_s"]) == 1


def test_check_names_the_field_files_of_vtx_alone():
    process = scalebridge(
        "check",
        "cases/two_layer_wall.toml",
        "--set",
        "output.xdmf=false",
        "--set",
        "output.vtx=true",
    )
    assert process.returncode == 0, process.stderr
    assert "fields: temperature, heat_flux (VTX)" in process.stdout  # it said "none"


def test_modules_lists_fields_and_parameters():
    process = scalebridge("modules")
    assert process.returncode == 0, process.stderr
    out = process.stdout
    assert "\nheat: Transient heat conduction" in f"\n{out}"
    assert "temperature [scalar, K, Lagrange 1]" in out
    assert "heat_source [scalar, W/m^3, Lagrange 1, optional]" in out
    assert "conductivity [W/(m*K)] default 1.0 (> 0)" in out
    assert "type = 'convection'" in out and "h [W/(m^2*K)] required (>= 0)" in out
    # a nested table's defaults are listed under it, not as one long repr on its line
    assert "default FieldNames(" not in out and "    fields defaults below: Field names" in out


def test_output_read_by_a_reader_that_leaves_ends_quietly():
    """`scalebridge modules | head -3`: the reader closes the pipe before the listing is
    written (here before any of it, so that every write meets the closed pipe); that was an
    'internal error ... BrokenPipeError ... This is a bug' on stderr, exit 70."""
    command = [str(BIN / "scalebridge"), "modules"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        process.stdout.close()
        errors = process.stderr.read().decode()
        assert process.wait(timeout=120) == BROKEN_PIPE
    assert errors == ""


def test_a_run_whose_reader_leaves_completes(tmp_path):
    """`scalebridge run ... | head -1`: PETSc's signal handler aborted the run on the broken
    pipe (MPI_Abort, exit 15, no quantities.csv); the run completes, its log in run.log."""
    out = tmp_path / "run"
    command = [str(BIN / "scalebridge"), "run", str(CASES / "slab_cooling.toml"), "-o", str(out)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        process.stdout.close()
        errors = process.stderr.read().decode()
        assert process.wait(timeout=300) == 0, errors
    assert errors == ""
    assert "run completed" in (out / "run.log").read_text()
    times = read_quantities(out)["time_s"]
    assert times[-1] == pytest.approx(0.1)  # the case's time.end


def test_modules_shows_nested_boundary_types_and_units_that_depend_on_orders():
    """mass_transport's boundary types sit inside each species (they were filtered out with the
    type keys); a rate constant's unit follows from its law and orders."""
    out = scalebridge("modules", "mass_transport").stdout
    for kind in ("concentration", "flux", "mass_transfer", "current", "outflow"):
        assert f"          type = '{kind}': " in out, kind
    assert "coefficient [m/s] required (>= 0): Mass-transfer coefficient k_m" in out
    assert "type required" not in out
    out = scalebridge("modules", "reaction_kinetics").stdout
    assert (
        "rate_constant [mass_action: (mol/m^3)^(1-n)/s, n the forward order (1/s for n = 1, "
        "m^3/(mol*s) for n = 2); saturation, tst: mol/(m^2*s)] default None: k"
    ) in out
    assert "equilibrium_constant [(mol/m^3)^(n_p - n_r), n_p and n_r the orders" in out


def test_modules_unknown_name():
    process = scalebridge("modules", "haet")
    assert process.returncode == 2
    assert "did you mean 'heat'?" in process.stderr


@pytest.mark.mpi
def test_check_under_mpi_prints_once_and_the_same():
    serial = scalebridge("check", "cases/two_layer_wall.toml")
    parallel = scalebridge("check", "cases/two_layer_wall.toml", ranks=2)
    assert parallel.returncode == 0, parallel.stderr
    assert parallel.stdout == serial.stdout


@pytest.mark.mpi
def test_bad_input_under_mpi_prints_once(tmp_path):
    case = tmp_path / "bad.toml"
    case.write_text('[mesh]\ntype = "rectangle"\n[physics.heat]\nconductivity = -1\n')
    process = scalebridge("run", case, "-o", tmp_path / "out", ranks=2)
    assert process.returncode == 2
    assert process.stderr.count("scalebridge: error:") == 1
    assert "Traceback" not in process.stderr


def test_an_internal_error_is_one_line_with_its_traceback_in_the_run_log(
    tmp_path, capsys, monkeypatch
):
    """A bug (here an exception planted in the time loop) is not the user's input: one line
    on stderr with exit code 70, the traceback in run.log, provenance 'failed'."""
    from app import cli, scheduler

    def planted(self):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(scheduler.TimeLoop, "run", planted)
    monkeypatch.delenv("SCALEBRIDGE_TRACEBACK", raising=False)
    out = tmp_path / "run"
    code = cli.main(["run", str(CASES / "heated_rod.toml"), "-o", str(out), "-q"])
    assert code == cli.INTERNAL_ERROR == 70
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("scalebridge: internal error on rank 0: RuntimeError: planted")
    log = (out / "run.log").read_text()
    assert "Traceback" in log and 'raise RuntimeError("planted failure")' in log
    assert json.loads((out / "provenance.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("terminal", [True, False])
def test_the_progress_bar_is_drawn_on_a_terminal_only(monkeypatch, terminal):
    """In a log file or a pipe (a cluster job, CI, ``2> log``) a bar's redraws are noise and
    would interleave with a failed run's one-line error, so only a terminal gets one."""
    drawn = []

    def bar(*args, disable=False, **kwargs):
        drawn.append(not disable)
        return tqdm(*args, disable=True, **kwargs)

    monkeypatch.setattr(app.scheduler, "tqdm", bar)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    case = tomllib.loads((CASES / "slab_cooling.toml").read_text())
    case["time"]["end"] = 0.01
    case["output"]["xdmf"] = False
    Simulation.from_case(case, base_dir=CASES).run(progress=True)
    assert drawn == [terminal]


def test_every_command_has_a_description_and_the_top_help_says_where_to_start():
    top = scalebridge("--help").stdout
    assert "first steps: 'scalebridge check cases/heated_plate.toml'" in top
    for command in ("run", "restart", "check", "modules", "plot", "new-module", "study"):
        usage, _, rest = scalebridge(command, "--help").stdout.partition("\n\n")
        assert usage.startswith(f"usage: scalebridge {command}")
        assert not rest.startswith("positional arguments"), command  # a description first
