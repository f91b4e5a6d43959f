"""Every `scalebridge run` command a case file's header shows checks as written.

A newcomer copies these lines first (the C-rate, the mesh size, a switch), so each one, with
its `--set` overrides and continued lines joined, must be a valid case: `scalebridge check`
accepts it. Options of `run` alone (`-o`, `--overwrite`, `-q`) are left out; `mpirun -n N`
prefixes are dropped (check validates the same case on any number of ranks). The battery
cycling and 2D cell headers are checked with their scenario tests (test_battery_cycling.py,
test_battery_cell_2d.py); a command that reads an earlier run's output (`=results/...`, a
surrogate's database) is left out, as that run is not there, and so is a plain run of the case
file, which test_cases.py runs.
"""

import re
import shlex

import pytest

from app.cli import main
from tests.conftest import ROOT

RUN_ONLY = {"-o": 1, "--output": 1, "--overwrite": 0, "-q": 0, "--quiet": 0}


def header_commands(case) -> list[list[str]]:
    """The `scalebridge run` command lines of a case's header comments (continued lines
    joined), each as the arguments after `run`."""
    lines = [line[1:].strip() for line in case.read_text().splitlines() if line.startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = re.sub(r"^mpirun -n \d+ ", "", line)
        if line.startswith("scalebridge run "):
            commands.append(shlex.split(line, comments=True)[2:])
    return commands


def check_arguments(arguments: list[str]) -> list[str]:
    kept, index = [], 0
    while index < len(arguments):
        skip = RUN_ONLY.get(arguments[index])
        if skip is None:
            kept.append(arguments[index])
            index += 1
        else:
            index += 1 + skip
    return kept


CHECKED_ELSEWHERE = {"battery_cycling", "battery_cell_2d", "battery_cell_2d_thermal"}
COMMANDS = [
    pytest.param(arguments, id=f"{case.stem}-{number}")
    for case in sorted((ROOT / "cases").glob("*.toml"))
    if case.stem not in CHECKED_ELSEWHERE
    for number, arguments in enumerate(header_commands(case))
    if "--set" in arguments and not any("=results/" in argument for argument in arguments)
]


def test_headers_show_commands_whole():
    """No override hides in a command's trailing comment, where the shell would drop it
    (biomineral_strut_surrogate's Mori-Tanaka command had its continuation after a '#')."""
    assert len(COMMANDS) >= 15
    for case in (ROOT / "cases").glob("*.toml"):
        for line in case.read_text().splitlines():
            command = line.lstrip("# ")
            if command.startswith(("scalebridge run ", "mpirun ")):
                assert "--set" not in command.partition(" #")[2], (case.name, line)


@pytest.mark.parametrize("arguments", COMMANDS)
def test_header_command_checks(arguments, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = main(["check", *check_arguments(arguments)])
    assert code == 0, capsys.readouterr().err[-2000:]
