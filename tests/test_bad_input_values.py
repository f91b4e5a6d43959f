"""Values of the right TOML kind for no field: booleans where numbers go, keys that differ
from the schema's only in case."""

import pytest

from app.cli import main
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
