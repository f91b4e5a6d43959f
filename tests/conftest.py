"""Shared test helpers: running the CLI (serially or under mpirun) and reading its outputs."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import app  # noqa: F401  (orders MPI before dolfinx when the PyPI wheel is used)

ROOT = Path(__file__).resolve().parent.parent
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


def read_quantities(run_dir: Path) -> dict[str, list[float]]:
    """quantities.csv as columns of floats."""
    with (run_dir / "quantities.csv").open() as stream:
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
