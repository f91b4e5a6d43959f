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


@pytest.mark.mpi
def test_rve_batches_give_the_same_tensors_on_one_and_two_ranks():
    """benchmarks/multiscale.py --case batch at a tiny size: the groups of two ranks solve the
    same cells as one rank, to the last digit (the timing is the benchmark's, not asserted)."""
    command = [sys.executable, "benchmarks/multiscale.py", "--case", "batch"]
    options = ["--count", "4", "--size", "0.2", "--repeats", "1"]
    process = subprocess.run(
        [*command, *options], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    record = json.loads((ROOT / "benchmarks" / "out" / "multiscale_batch.json").read_text())
    assert record["count"] == 4 and record["difference"] == 0.0
