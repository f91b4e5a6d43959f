"""The benchmarks stay runnable and keep measuring the same discrete problem as their plain
DOLFINx references: at a tiny size, each pair agrees (every quantity, and the iteration counts
step by step). Times are measured by `make bench`, never asserted here."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("case", ["heat_3d", "reaction_front"])
def test_benchmark_and_its_plain_reference_agree(case):
    command = [sys.executable, "benchmarks/run.py", "--case", case, "--cells", "4"]
    process = subprocess.run(
        [*command, "--repeats", "1"], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    record = json.loads((ROOT / "benchmarks" / "out" / f"{case}.json").read_text())
    assert record["agree"] and record["relative_difference"] < 1e-8, record
    assert record["cells"] == 4


def test_quadrature_benchmark_runs():
    """benchmarks/quadrature.py: the group's degree against UFL's estimates, same solution."""
    command = [sys.executable, "benchmarks/quadrature.py", "--chen2020", "--repeats", "1"]
    process = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "degree 4; UFL's estimates up to 12" in process.stdout, process.stdout
    difference = float(process.stdout.split("differ by ")[1].split()[0])
    assert difference < 1e-8, process.stdout
