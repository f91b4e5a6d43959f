"""docs/plugin_guide.md works as written: its commands run, in order, in an empty folder.

Commands are the lines starting with ``$ `` in the guide's ```console blocks; output lines shown
under a command must appear in what it prints (``...`` stands for lines left out). A ```toml or
```python block whose first line is ``# file: PATH`` is written to PATH when the walk reaches it.

Tools are this venv's executables. The guide installs its plug-in with ``pip install --target``
into a folder of the walk's own, so the venv itself is never changed (the test refuses a ``pip
install`` without ``--target``; it adds ``--no-build-isolation``, as there is no index to fetch
build tools from). ``$ export NAME=value`` sets a variable for the later commands (``$PWD`` and
other variables in the value are expanded).
"""

import os
import shlex
import string
import subprocess
import sys
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT, assert_same_quantities, read_quantities

GUIDE = ROOT / "docs" / "plugin_guide.md"
TOOLS = {"scalebridge", "pytest", "mpirun"}


@dataclass
class Step:
    """A command with the output lines the guide shows for it, or a file the guide writes."""

    command: list[str] | None = None
    shown: list[str] = field(default_factory=list)
    path: str | None = None
    text: str = ""


def steps(markdown: str) -> list[Step]:
    """The guide's commands and files, in document order."""
    found: list[Step] = []
    lines, index = markdown.splitlines(), 0
    while index < len(lines):
        fence = lines[index].strip()
        index += 1
        if fence not in ("```console", "```toml", "```python"):
            continue
        block = []
        while lines[index].strip() != "```":
            block.append(lines[index])
            index += 1
        if fence != "```console" and block and block[0].startswith("# file: "):
            found.append(
                Step(path=block[0].removeprefix("# file: ").strip(), text="\n".join(block))
            )
        elif fence == "```console":
            for line in block:
                if line.startswith("$ "):
                    found.append(Step(command=shlex.split(line[2:], comments=True)))
                elif found and found[-1].command is not None and line.strip():
                    found[-1].shown.append(line.strip())
    return found


def executable(command: list[str]) -> list[str]:
    """The command with the guide's tools replaced by this venv's."""
    if command[0] == "pip":
        assert command[1] == "install", f"unsupported pip command in the guide: {command}"
        assert "--target" in command, f"the guide installs into the environment: {command}"
        return [sys.executable, "-m", "pip", *command[1:], "--quiet", "--no-build-isolation"]
    assert command[0] in TOOLS, f"the guide runs '{command[0]}': add it to test_docs.TOOLS"
    return [str(BIN / word) if word in TOOLS else word for word in command]


def exported(command: list[str], env: dict[str, str]) -> tuple[str, str] | None:
    """(name, value) of an ``export NAME=value`` line, its value expanded; None otherwise."""
    if command[0] != "export":
        return None
    name, _, value = command[1].partition("=")
    return name, string.Template(value).substitute(env)


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory) -> Path:
    """Run the whole guide in an empty folder; returns the folder."""
    work = tmp_path_factory.mktemp("guide")
    env = os.environ | {"PWD": str(work), "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    for step in steps(GUIDE.read_text()):
        if step.path is not None:
            (work / step.path).parent.mkdir(parents=True, exist_ok=True)
            (work / step.path).write_text(step.text + "\n")
            continue
        variable = exported(step.command, env)
        if variable is not None:
            env[variable[0]] = variable[1]
            continue
        process = subprocess.run(
            executable(step.command),
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        shown = " ".join(step.command)
        assert process.returncode == 0, f"$ {shown}\n{process.stdout[-3000:]}{process.stderr}"
        printed = {line.strip() for line in process.stdout.splitlines()}
        missing = [line for line in step.shown if line != "..." and line not in printed]
        assert not missing, f"$ {shown} did not print {missing}; it printed:\n{process.stdout}"
    return work


def test_guide_goes_from_scaffold_to_coupled_run():
    """The guide keeps every step of the way (so the walk below covers them)."""
    commands = [" ".join(step.command) for step in steps(GUIDE.read_text()) if step.command]
    for expected in (
        "scalebridge new-module my_reaction",
        "pip install --no-deps --target plugins ./my_reaction",
        "export PYTHONPATH=$PWD/my_reaction:$PWD/plugins",
        "scalebridge modules my_reaction",
        "pytest my_reaction/tests",
        "scalebridge check my_reaction/cases/coupled.toml",
        "mpirun -n 2 scalebridge run my_reaction/cases/coupled.toml -o results/coupled_np2",
        "pip install --no-deps --target plugins ./peak_temperature",
        "scalebridge run peak_temperature/hot_spot.toml -o results/peak",
    ):
        assert expected in commands, expected
    files = [step.path for step in steps(GUIDE.read_text()) if step.path]
    assert files == [
        "my_reaction/cases/coupled.toml",
        "peak_temperature/peak_temperature.py",
        "peak_temperature/pyproject.toml",
        "peak_temperature/hot_spot.toml",
    ]


@pytest.mark.mpi
def test_every_command_in_the_guide_runs(walkthrough):
    assert (walkthrough / "my_reaction" / "pyproject.toml").exists()
    installed = {p.name.split("-")[0] for p in (walkthrough / "plugins").glob("*.dist-info")}
    assert installed == {"my_reaction", "peak_temperature"}  # beside the venv, not in it
    assert (walkthrough / "results" / "demo" / "quantities.csv").exists()


@pytest.mark.mpi
def test_coupled_run_as_the_guide_says(walkthrough):
    """1 and 2 ranks agree; heat receives 20 kJ per mol consumed; the plate heats itself."""
    serial = read_quantities(walkthrough / "results" / "coupled")
    parallel = read_quantities(walkthrough / "results" / "coupled_np2")
    assert_same_quantities(serial, parallel)
    heat, consumed = serial["heat_generated_W_per_m"], serial["consumed_mol_per_s_per_m"]
    assert consumed[-1] > 0
    assert heat == pytest.approx([2e4 * rate for rate in consumed], rel=1e-9)
    temperature = serial["max_temperature_K"]
    assert temperature[0] == pytest.approx(293.15)
    assert 330 < temperature[-1] < 360  # "about 344 K"
    rises = [b - a for a, b in pairwise(temperature[1:])]  # per output interval, after t = 0
    assert all(later > earlier for earlier, later in pairwise(rises))  # it accelerates


@pytest.mark.mpi
def test_internal_variable_example_remembers_as_the_guide_says(walkthrough):
    """The plate cools after the heater is switched off; the remembered peak stays where the
    temperature peaked, and is written as cell data."""
    run = walkthrough / "results" / "peak"
    q = read_quantities(run)
    current, peak = q["max_temperature_K"], q["hottest_ever_K"]
    top = max(range(len(current)), key=current.__getitem__)
    assert 25.0 <= q["time_s"][top] <= 30.0  # the heater is off from t = 30 s
    assert current[-1] < current[top] - 5  # it cooled
    assert peak[-1] == pytest.approx(peak[top], rel=1e-12)  # and remembers
    assert peak[0] == pytest.approx(293.15)  # from the initial temperature
    assert current[top] - 10 < peak[top] <= current[top]  # at quadrature points, not nodes
    assert all(later >= earlier for earlier, later in pairwise(peak))
    assert 'Name="peak_temperature"' in (run / "fields.xdmf").read_text()
