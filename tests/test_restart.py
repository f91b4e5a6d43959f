"""Checkpoints and restarts (issue 14): a killed, signalled or disk-starved run continues from
its last checkpoint to the result of an unbroken run, on any number of ranks; a diverging run
says where it diverged and writes nothing non-finite.

The case is cases/heated_uptake.toml: heat + mass transport coupled through a temperature-
dependent diffusivity, BDF2, adaptive steps, a heat/cool protocol and an event that ends the run
(a checkpoint every 5 steps).
"""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import (
    BIN,
    CASES,
    ROOT,
    assert_same_by_units,
    assert_same_quantities,
    read_quantities,
    scalebridge,
)

CASE = CASES / "heated_uptake.toml"
EVENT_THRESHOLD = 2.7e-4  # the case's event: amount_c_mol_per_m > 2.7e-4
EXIT_SIGNAL = 3  # README "Restarts": stopped by SIGTERM/SIGINT with a checkpoint
EXIT_OUTPUT = 4  # output failed mid-run, the last checkpoint intact


@pytest.fixture(scope="module")
def unbroken_run(tmp_path_factory) -> Path:
    """The folder of the case run from start to end on one rank."""
    folder = tmp_path_factory.mktemp("unbroken") / "run"
    process = scalebridge("run", CASE, "-o", folder, "-q")
    assert process.returncode == 0, process.stderr
    return folder


@pytest.fixture(scope="module")
def unbroken(unbroken_run) -> dict[str, list[float]]:
    return read_quantities(unbroken_run)


def start(folder: Path, *args: str, ranks: int = 1) -> subprocess.Popen:
    command = [str(BIN / "scalebridge"), "run", str(CASE), "-o", str(folder), "-q", *args]
    if ranks > 1:
        command = [str(BIN / "mpirun"), "-n", str(ranks), *command]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    """Until ``path`` exists; the run must still be going then."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the run ended before {path.name}: {process.stderr.read()}"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.02)


def provenance(folder: Path) -> dict:
    return json.loads((folder / "provenance.json").read_text())


def checkpoint_numbers(folder: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in (folder / "checkpoints").glob("checkpoint-*"))


def xdmf_times(folder: Path) -> list[float]:
    """The time stamps of the first field's series in fields.xdmf (what ParaView shows)."""
    text = (folder / "fields.xdmf").read_text()
    series = text.split('CollectionType="Temporal"')[1].split("</Grid>\n    </Grid>")[0]
    return [float(value) for value in re.findall(r'<Time Value="([^"]+)"', series)]


def assert_continues_unbroken(folder: Path, unbroken_run: Path, rtol: float = 1e-10) -> None:
    """Every row of the continued run (quantities, line profiles) equals the unbroken run's to
    ``rtol``; no row is missing or repeated, and the field files hold each output time once."""
    unbroken, continued = read_quantities(unbroken_run), read_quantities(folder)
    assert continued["time_s"] == pytest.approx(unbroken["time_s"], rel=1e-12)
    assert_same_quantities(unbroken, continued, rtol=rtol)
    assert xdmf_times(folder) == pytest.approx(unbroken["time_s"], rel=1e-10)  # CSV: 12 digits
    assert continued["amount_c_mol_per_m"][-1] > EVENT_THRESHOLD  # the event ended both runs
    assert continued["cycle"][-1] == 2  # in the last cycle of the protocol
    profile = read_quantities(folder, "profiles/depth.csv")
    expected = read_quantities(unbroken_run, "profiles/depth.csv")
    assert profile["time_s"] == expected["time_s"]  # 5 points per output time, none repeated
    assert_same_quantities(expected, profile, rtol=rtol)


def test_sigkill_mid_run_then_restart_equals_the_unbroken_run(tmp_path, unbroken, unbroken_run):
    folder = tmp_path / "run"
    process = start(folder)
    wait_for(folder / "checkpoints" / "checkpoint-000002", process)
    process.kill()
    process.wait()
    assert provenance(folder)["status"] == "running"  # killed: nothing could record it
    cut = read_quantities(folder)["time_s"]
    assert cut[-1] < unbroken["time_s"][-1]

    again = scalebridge("restart", folder, "-q")

    assert again.returncode == 0, again.stderr
    assert_continues_unbroken(folder, unbroken_run)
    record = provenance(folder)
    assert record["status"] == "completed"
    assert record["restarts"][0]["checkpoint"].endswith("checkpoint-000002")


@pytest.mark.parametrize("ranks", [(2, 1), (1, 2)], ids=["2-to-1", "1-to-2"])
def test_restart_on_another_number_of_ranks(tmp_path, unbroken, ranks):
    first, second = ranks
    folder = tmp_path / "run"
    process = scalebridge("run", CASE, "-o", folder, "-q", "--set", "time.end=900", ranks=first)
    assert process.returncode == 0, process.stderr
    again = scalebridge("restart", folder, "-q", "--set", "time.end=36000", ranks=second)
    assert again.returncode == 0, again.stderr
    continued = read_quantities(folder)
    assert continued["time_s"] == pytest.approx(unbroken["time_s"], rel=1e-12)
    assert_same_quantities(unbroken, continued, rtol=1e-8)  # partitions round differently
    final = {name: [values[-1]] for name, values in continued.items()}
    assert_same_quantities({name: [v[-1]] for name, v in unbroken.items()}, final, rtol=1e-10)
    restart = provenance(folder)["restarts"][0]
    assert restart["mpi_ranks"] == second
    assert restart["case_changes"] == ["time.end: 900.0 -> 36000.0"]


def test_sigterm_checkpoints_and_exits_with_the_documented_code(tmp_path, unbroken, unbroken_run):
    folder = tmp_path / "run"
    process = start(folder)
    wait_for(folder / "checkpoints" / "checkpoint-000001", process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == EXIT_SIGNAL, stderr
    assert "stopped by SIGTERM at t = " in stderr
    assert f"scalebridge restart {folder}" in stderr
    assert "Traceback" not in stderr
    record = provenance(folder)
    assert record["status"] == "interrupted"
    latest = folder / "checkpoints" / f"checkpoint-{checkpoint_numbers(folder)[-1]:06d}"
    assert record["restart_from"] == str(latest)
    assert record["checkpoint"]["time_s"] >= read_quantities(folder)["time_s"][-1]
    again = scalebridge("restart", folder, "-q")
    assert again.returncode == 0, again.stderr
    assert_continues_unbroken(folder, unbroken_run)


def rank_processes(pid: int) -> list[int]:
    """The scalebridge processes mpirun (``pid``) started, found through /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in map(int, (task / "children").read_text().split()):
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if any(part.endswith(b"scalebridge") for part in command[:2]):
                found.append(child)
            found += rank_processes(child)
    return found


def test_sigterm_to_one_rank_stops_every_rank_with_a_checkpoint(tmp_path, unbroken):
    folder = tmp_path / "run"
    process = start(folder, ranks=2)
    wait_for(folder / "checkpoints" / "checkpoint-000001", process)
    ranks = rank_processes(process.pid)
    assert len(ranks) == 2
    os.kill(max(ranks), signal.SIGTERM)  # one rank only, as a scheduler signalling one node
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == EXIT_SIGNAL, stderr
    assert "stopped by SIGTERM" in stderr
    assert provenance(folder)["status"] == "interrupted"
    again = scalebridge("restart", folder, "-q", ranks=2)
    assert again.returncode == 0, again.stderr
    continued = read_quantities(folder)
    assert continued["time_s"] == pytest.approx(unbroken["time_s"], rel=1e-12)
    assert_same_quantities(unbroken, continued, rtol=1e-8)  # 2 ranks against 1


def test_second_sigterm_exits_at_once(tmp_path):
    folder = tmp_path / "run"
    # finer cells: steps long enough that the second signal comes within one
    process = start(folder, "--set", "mesh.cells=[160, 32]")
    wait_for(folder / "checkpoints" / "checkpoint-000001", process)
    process.send_signal(signal.SIGTERM)
    log = folder / "run.log"
    deadline = time.monotonic() + 60
    while "SIGTERM received" not in log.read_text():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.005)
    checkpoints = checkpoint_numbers(folder)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "SIGTERM again: stopping at once, without a checkpoint" in stderr
    assert checkpoint_numbers(folder) == checkpoints  # no checkpoint of that moment
    record = provenance(folder)
    assert record["status"] == "interrupted"
    assert record["error"] == "stopped at once by a second SIGTERM"


def test_plastic_state_at_quadrature_points_restarts_on_two_ranks(tmp_path):
    """cases/cyclic_bar.toml: quasi-static steps whose plastic strain and back stress live at
    quadrature points; the checkpoint at the end of a half-way run (one rank) continues on two
    ranks through the reversals to the unbroken hysteresis loop."""
    case = CASES / "cyclic_bar.toml"
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert scalebridge("run", case, "-o", whole, "-q").returncode == 0
    first = scalebridge("run", case, "-o", part, "-q", "--set", "time.end=0.5")
    assert first.returncode == 0, first.stderr
    again = scalebridge("restart", part, "-q", "--set", "time.end=1.25", ranks=2)
    assert again.returncode == 0, again.stderr
    unbroken, continued = read_quantities(whole), read_quantities(part)
    assert continued["time_s"] == pytest.approx(unbroken["time_s"], rel=1e-12)
    assert_same_by_units(unbroken, continued, rtol=1e-10)
    assert max(continued["max_equivalent_plastic_strain"]) > 0  # it did yield


def test_cellwise_species_restart_from_two_ranks_on_one(tmp_path):
    """cases/precipitation_front.toml: a transported species reacting with an immobile one (a
    cellwise DG0 field); a half-way checkpoint of two ranks continues on one."""
    case = CASES / "precipitation_front.toml"
    common = ("-q", "--set", "output.interval=0.05")
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert scalebridge("run", case, "-o", whole, *common, "--set", "time.end=0.2").returncode == 0
    first = scalebridge("run", case, "-o", part, *common, "--set", "time.end=0.1", ranks=2)
    assert first.returncode == 0, first.stderr
    again = scalebridge("restart", part, *common, "--set", "time.end=0.2")
    assert again.returncode == 0, again.stderr
    unbroken, continued = read_quantities(whole), read_quantities(part)
    assert continued["time_s"] == pytest.approx([0, 0.05, 0.1, 0.15, 0.2])
    assert_same_by_units(unbroken, continued, rtol=1e-10)


def test_refuses_a_checkpoint_of_another_mesh(tmp_path):
    folder = tmp_path / "run"
    process = scalebridge("run", CASE, "-o", folder, "-q", "--set", "time.end=300")
    assert process.returncode == 0, process.stderr
    other = scalebridge("run", CASE, "--restart", folder, "-q", "--set", "mesh.cells=[10, 4]")
    assert other.returncode == 2
    assert "Traceback" not in other.stderr
    assert "cannot continue this case" in other.stderr
    assert "the mesh has 80 cells here and 160 in the checkpoint" in other.stderr
    assert provenance(folder)["status"] == "completed"  # the run folder is left as it was


def test_diverging_run_reports_where_and_writes_nothing_non_finite(tmp_path):
    folder = tmp_path / "run"
    source = "physics.mass_transport.species.c.source=-c*sqrt(0.455 - t)"  # NaN after t = 0.455
    process = scalebridge("run", CASES / "reaction_diffusion.toml", "-o", folder, "-q",
                          "--set", source)  # fmt: skip

    assert process.returncode == 1, process.stderr
    message = process.stderr
    assert "Traceback" not in message
    assert "the solution diverged in step 46: at t = 0.46 s" in message
    assert re.search(r"field 'c' is nan at \([0-9.e+-]+\) on rank 0", message), message
    assert "the last good output is at t = 0.4 s" in message
    record = provenance(folder)
    assert record["status"] == "failed"
    rows = read_quantities(folder)
    assert rows["time_s"][-1] == pytest.approx(0.4)
    assert all(math.isfinite(v) for values in rows.values() for v in values)


def mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'})")


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (root only; skipped visibly elsewhere), unmounted afterwards."""
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "size=2M")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the disk up to ``leave`` free bytes with one file (returned)."""
    filler = disk / "filler"
    with filler.open("wb") as stream:
        try:
            while os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize > leave + 4096:
                stream.write(b"\0" * 4096)
                stream.flush()
        except OSError:
            pass
    return filler


def test_full_disk_is_refused_before_compute(small_disk):
    fill(small_disk, leave=40_000)
    folder = small_disk / "run"
    process = scalebridge("run", CASE, "-o", folder, "-q")
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert re.search(r"--output: the disk of '.*' has [0-9.]+ kB free and the run writes about",
                     process.stderr), process.stderr  # fmt: skip
    assert not (folder / "quantities.csv").exists()  # nothing computed


def test_disk_filling_mid_run_stops_cleanly_and_restarts(small_disk, unbroken, unbroken_run):
    folder = small_disk / "run"
    process = start(folder)
    wait_for(folder / "checkpoints" / "checkpoint-000001", process)
    filler = fill(small_disk)
    _, stderr = process.communicate(timeout=300)

    assert process.returncode == EXIT_OUTPUT, stderr
    assert "Traceback" not in stderr
    assert "free" in stderr or "No space left on device" in stderr
    assert "\x1b" not in stderr  # ADIOS2's terminal colours are not part of our message
    assert provenance(folder)["status"] == "interrupted"
    assert not list((folder / "checkpoints").glob(".writing-*"))  # no partial checkpoint left
    filler.unlink()
    again = scalebridge("restart", folder, "-q")
    assert again.returncode == 0, again.stderr
    assert_continues_unbroken(folder, unbroken_run)


def test_read_only_output_folder(tmp_path):
    disk = tmp_path / "readonly"
    mount_tmpfs(disk, "size=1M,ro")
    try:
        process = scalebridge("run", CASE, "-o", disk / "run", "-q")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert "Read-only file system" in process.stderr
    assert "choose another folder with -o" in process.stderr


def test_a_damaged_rank_file_refuses_the_restart_on_every_rank_and_the_fix_works(tmp_path):
    folder = tmp_path / "run"
    process = scalebridge("run", CASE, "-o", folder, "-q", "--set", "time.end=300", ranks=2)
    assert process.returncode == 0, process.stderr
    latest = folder / "checkpoints" / f"checkpoint-{checkpoint_numbers(folder)[-1]:06d}"
    damaged = latest / "rank-00001.npz"
    damaged.write_bytes(damaged.read_bytes()[:500])  # a copy cut short, as a full disk leaves

    refused = scalebridge("restart", folder, "-q", "--set", "time.end=600", ranks=2, timeout=120)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert refused.stderr.count("rank-00001.npz has 500 bytes") == 1, refused.stderr
    earlier = f"checkpoint-{checkpoint_numbers(folder)[-2]:06d}"
    assert f"Fix: remove '{latest.name}' to restart from '{earlier}'" in refused.stderr

    shutil.rmtree(latest)
    continued = scalebridge("restart", folder, "-q", "--set", "time.end=600", ranks=2)
    assert continued.returncode == 0, continued.stderr
    assert read_quantities(folder)["time_s"][-1] == pytest.approx(600)


def test_a_quantities_row_changed_since_the_checkpoint_refuses_the_restart_on_two_ranks(tmp_path):
    folder = tmp_path / "run"
    process = scalebridge("run", CASE, "-o", folder, "-q", "--set", "time.end=300", ranks=2)
    assert process.returncode == 0, process.stderr
    table = folder / "quantities.csv"
    lines = table.read_bytes().split(b"\n")
    lines[2] = b"x" + lines[2]  # an edit by hand: rank 0 raised alone and rank 1 waited forever
    table.write_bytes(b"\n".join(lines))

    refused = scalebridge("restart", folder, "-q", "--set", "time.end=600", ranks=2, timeout=120)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert f"--restart: line 3 of '{table}' is not a row of numbers: 'x" in refused.stderr


def test_a_folder_in_place_of_quantities_csv_refuses_the_restart_on_two_ranks(tmp_path):
    folder = tmp_path / "run"
    process = scalebridge("run", CASE, "-o", folder, "-q", "--set", "time.end=300", ranks=2)
    assert process.returncode == 0, process.stderr
    table = folder / "quantities.csv"
    table.unlink()
    table.mkdir()  # rank 0 alone raised IsADirectoryError: exit 70, an internal error

    refused = scalebridge("restart", folder, "-q", "--set", "time.end=600", ranks=2, timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert (
        f"--restart: cannot open '{table}' to write rows: Is a directory; a restart appends to "
        "the stopped run's tables. Fix: put the stopped run's file back" in refused.stderr
    )
