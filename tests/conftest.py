"""Shared test helpers: running the CLI (serially or under mpirun) and reading its outputs."""

import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import app  # noqa: F401  (orders MPI before dolfinx when the PyPI wheel is used)
from app.trust import TRUSTED_FOLDERS

ROOT = Path(__file__).resolve().parent.parent

# Tests write mesh and microstructure scripts into temporary folders and run them; a user's case
# may run scripts only from trusted folders (app/trust.py; tests/test_trust.py checks the rule).
os.environ[TRUSTED_FOLDERS] = tempfile.gettempdir()
BIN = Path(sys.executable).parent
CASES = ROOT / "cases"


def scalebridge(*args: str, ranks: int = 1, cwd: Path | None = None, timeout: float = 600):
    """Run the installed console script (under mpirun for ranks > 1); returns the process."""
    command = [str(BIN / "scalebridge"), *map(str, args)]
    if ranks > 1:
        command = [str(BIN / "mpirun"), "-n", str(ranks), *command]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout, env=env
    )


def mpi_python(script: Path, *args: str, ranks: int = 2, timeout: float = 600):
    """Run a Python script under mpirun; returns the process."""
    command = [str(BIN / "mpirun"), "-n", str(ranks), sys.executable, str(script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def runs_on_ranks(case: str | Path, folder: Path, *args: str, timeout: float = 600) -> tuple:
    """Quantities of ``scalebridge run case`` on 1 and on 2 ranks (extra ``args``, e.g.
    ``--set``): (serial, parallel)."""
    results = []
    for ranks in (1, 2):
        out = folder / f"np{ranks}"
        process = scalebridge("run", case, "-o", out, "-q", *args, ranks=ranks, timeout=timeout)
        assert process.returncode == 0, process.stderr
        results.append(read_quantities(out))
    return tuple(results)


def assert_same_quantities(serial: dict, parallel: dict, rtol: float = 1e-8, floor: float = 0):
    """Every column equal to ``rtol``, relative to the larger value; values below 1e-12 of the
    column's largest (or below ``floor``) count as round-off of a zero; NaN (a quantity not
    defined yet, such as a ratio of zeros at the start) must be NaN on both."""
    assert serial.keys() == parallel.keys()
    for column, values in serial.items():
        finite = [abs(v) for v in values if not math.isnan(v)]
        noise = max(1e-12 * max(finite, default=1.0), floor, 1e-300)
        for a, b in zip(values, parallel[column], strict=True):
            if math.isnan(a) or math.isnan(b):
                assert math.isnan(a) and math.isnan(b), (column, a, b)
                continue
            assert abs(a - b) <= rtol * max(abs(a), abs(b), noise), (column, a, b)


def assert_same_by_units(
    serial: dict, parallel: dict, rtol: float, round_off: float = 1e-12
) -> None:
    """Every column equal to ``rtol``, up to round-off: ``round_off`` of the largest value of
    the same units (the columns' unit suffix), which a value that is zero by symmetry (a
    reaction across a sliding plane) carries. NaN (a quantity not defined yet) must be NaN on
    both."""
    assert serial.keys() == parallel.keys()
    largest: dict[str, float] = {}
    for column, values in serial.items():
        unit = column.rsplit("_", 1)[-1]
        finite = [abs(v) for v in values if not math.isnan(v)]
        largest[unit] = max(largest.get(unit, 0.0), *finite, 0.0)
    for column, values in serial.items():
        noise = round_off * largest[column.rsplit("_", 1)[-1]]
        for a, b in zip(values, parallel[column], strict=True):
            if math.isnan(a) or math.isnan(b):
                assert math.isnan(a) and math.isnan(b), (column, a, b)
                continue
            assert abs(a - b) <= rtol * max(abs(a), abs(b)) + noise, (column, a, b)


def read_quantities(run_dir: Path, table: str = "quantities.csv") -> dict[str, list[float]]:
    """quantities.csv (or another table of the run folder) as columns of floats."""
    with (run_dir / table).open() as stream:
        rows = list(csv.reader(stream))
    header, values = rows[0], rows[1:]
    return {name: [float(row[i]) for row in values] for i, name in enumerate(header)}


def have_pvbatch() -> str | None:
    """Why ParaView tests cannot run here, or None when they can."""
    missing = [tool for tool in ("pvbatch", "xvfb-run") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (Debian packages paraview, xvfb)"
    return None


@pytest.fixture
def cases() -> Path:
    return CASES
