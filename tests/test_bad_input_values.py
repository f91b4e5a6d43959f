"""Input of the right form that meant something else: booleans where numbers go, a table
written in another case, a study file given as a case, a quantity defined through itself, a
run's case file edited before a restart."""

import pytest

from app.cli import main
from tests.conftest import CASES
from tests.test_bad_input import TRANSIENT, check, error_of, write


@pytest.mark.parametrize(
    ("assignment", "path"),
    [
        ("mesh.cells=[true, 4]", "mesh.cells"),
        ("physics.heat.degree=true", "physics.heat.degree"),
        ("time.max_steps=true", "time.max_steps"),
        ("time.adaptive={limits={max_temperature_K=true}}", "time.adaptive.limits"),
    ],
)
def test_a_boolean_where_a_number_goes(tmp_path, capsys, assignment, path):
    """pydantic read true as 1: cells = [true, 4] made a 1 x 4 mesh, degree = true P1."""
    check(tmp_path, TRANSIENT, "--set", assignment)
    message = error_of(capsys)
    assert f"{path}: expected a number, got true" in message


def test_booleans_where_they_belong_still_pass(tmp_path):
    case = write(tmp_path, TRANSIENT)
    assert (
        main(["check", str(case), "--set", "output.xdmf=false", "--set", "time.adaptive=false"])
        == 0
    )


@pytest.mark.parametrize("written", ["Mesh", "mseh"])
def test_a_required_table_written_otherwise_is_named_as_written(tmp_path, capsys, written):
    """'[Mesh]' read 'mesh: missing required key mesh', about a table the case did write."""
    check(tmp_path, TRANSIENT.replace("[mesh", f"[{written}"))
    message = error_of(capsys)
    assert f"unknown key '{written}' (did you mean 'mesh'?)" in message
    assert "missing" not in message


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_study_file_given_as_a_case_says_so(tmp_path, capsys, command):
    """It read 'parameters.set: expected the name of a parameter set', a key it never wrote."""
    study = CASES / "studies" / "heated_rod_sobol.toml"
    output = ["-o", str(tmp_path / "out")] if command == "run" else []
    assert main([command, str(study), *output]) == 2
    message = error_of(capsys)
    assert "this is a study file" in message
    assert f"Fix: run it with: scalebridge study {study}" in message


def test_a_case_file_given_as_a_study_says_so(tmp_path, capsys):
    """It read 'mesh: unknown key mesh (did you mean method?)'."""
    case = CASES / "heated_rod.toml"
    assert main(["study", str(case), "-o", str(tmp_path / "out")]) == 2
    message = error_of(capsys)
    assert "this is a case file ([mesh], [physics]), not a study" in message
    assert "a study names it: case = 'heated_rod.toml'" in message


@pytest.mark.parametrize(
    ("quantities", "path", "fragment"),
    [
        ('a = { value = "a_K + 1", units = "K" }', "a.value", "'a_K' is this quantity itself"),
        ('a = { maximum = "a_K", units = "K" }', "a.maximum", "'a_K' is this quantity itself"),
        (
            'a = { value = "b_K + 1", units = "K" }\nb = { value = "a_K + 1", units = "K" }',
            "a.value",
            "'b_K' is defined below, by b",
        ),
    ],
)
def test_a_quantity_defined_through_itself(tmp_path, capsys, quantities, path, fragment):
    """It read 'unknown name a_K', a column the case had just defined."""
    check(tmp_path, TRANSIENT + f"\n[output.quantities]\n{quantities}\n")
    message = error_of(capsys)
    assert f"output.quantities.{path}: {fragment}" in message


def test_a_run_s_case_file_edited_before_a_restart_is_not_overwritten(tmp_path, capsys):
    """The restart continued the checkpoint's case (conductivity 2) and wrote it over the
    edited case.toml (conductivity 5): the edit ignored, then lost, exit 0."""
    folder = tmp_path / "out"
    assert main(["run", str(write(tmp_path, TRANSIENT)), "-o", str(folder), "-q"]) == 0
    case_file = folder / "case.toml"
    case_file.write_text(case_file.read_text().replace("conductivity = 2.0", "conductivity = 5.0"))
    capsys.readouterr()
    assert main(["restart", str(folder), "-q", "--set", "time.end=3"]) == 2
    message = error_of(capsys)
    assert "physics.heat.conductivity: 2.0 here, 5.0 in it" in message
    assert "(--set physics.heat.conductivity=5.0)" in message
    assert "conductivity = 5.0" in case_file.read_text()
    given = ["--set", "time.end=3", "--set", "physics.heat.conductivity=5.0"]
    assert main(["restart", str(folder), "-q", *given]) == 0
