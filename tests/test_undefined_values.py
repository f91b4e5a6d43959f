"""Values undefined somewhere on the mesh are the case's error (exit code 2, naming the
instance), found before any solve reads them; not a solver failure (exit code 1)."""

import pytest

from app.cli import main
from tests.conftest import scalebridge
from tests.test_bad_input import TRANSIENT, error_of, write


def test_a_property_undefined_under_a_fixed_temperature_is_the_case_s_error(tmp_path, capsys):
    """sqrt(x - 1) is NaN on the whole unit square. With a fixed temperature the first output
    solves for the rates (the flows through that boundary) and that solve failed with
    DIVERGED_NANORINF (exit 1); then the message named the heat flux computed from the
    property, now the property itself, evaluated where the flux is first NaN."""
    case = write(tmp_path, TRANSIENT.replace("2.0", '"sqrt(x - 1)"'))
    assert main(["run", str(case), "-o", str(tmp_path / "out"), "-q"]) == 2
    message = error_of(capsys)
    assert "physics.heat.conductivity: 'sqrt(x - 1)' is not defined at t = 0 s " in message
    assert "where field 'heat_flux' is nan" in message


@pytest.mark.parametrize("ranks", [1, 2])
def test_a_boundary_value_that_is_not_finite_is_the_case_s_error(tmp_path, ranks):
    """300 + 1/(y - 0.5) is infinite at the left side's node at y = 0.5: the run stops at its
    first evaluation, before any solve, on every rank (exit 2); it retried the first step down
    to dt_min and stopped with exit code 1."""
    text = TRANSIENT.replace("value = 300 }", 'value = "300 + 1/(y - 0.5)" }')
    process = scalebridge("run", write(tmp_path, text), "-o", tmp_path / "out", "-q", ranks=ranks)
    assert process.returncode == 2, process.stderr
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, process.stderr
    assert (
        "case.toml: physics.heat: the value fixed on boundary 'left' at t = 0 s is not "
        in (lines[0])
    )
    assert "finite: field 'temperature' is inf at (" in lines[0]
    assert ", 0.5) on rank " in lines[0]  # x is 0 to round-off
    assert "the expression physics.heat gives for boundary 'left' is undefined" in lines[0]


def test_a_boundary_value_undefined_later_stops_at_that_step(tmp_path, capsys):
    """1/(t - 1) is finite at the start and infinite at t = 1 s, the first step's end."""
    text = TRANSIENT.replace("value = 300 }", 'value = "300 + 1/(t - 1)" }')
    assert main(["run", str(write(tmp_path, text)), "-o", str(tmp_path / "out"), "-q"]) == 2
    message = error_of(capsys)
    assert "physics.heat: the value fixed on boundary 'left' at t = 1 s is not finite" in message


def test_a_property_undefined_under_a_fixed_temperature_on_two_ranks(tmp_path):
    """The same on 2 ranks: every rank finds the derived field and stops (no rank waits in
    the solve of the rates)."""
    case = write(tmp_path, TRANSIENT.replace("2.0", '"sqrt(x - 1)"'))
    process = scalebridge("run", case, "-o", tmp_path / "out", "-q", ranks=2)
    assert process.returncode == 2, process.stderr
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, process.stderr
    assert "physics.heat.conductivity: 'sqrt(x - 1)' is not defined at t = 0 s " in lines[0]


def test_a_condition_undefined_off_its_boundary_is_not_blamed(tmp_path, capsys):
    """The flux sqrt(x - 1) holds on x = 1 only; the NaN comes from a property of the field
    (sqrt(temperature - 400) at 300 K), which the message leaves to the instance."""
    text = TRANSIENT.replace("2.0", '"sqrt(temperature - 400)"').replace(
        "value = 300 }",
        'value = 300 }\nboundaries.right = { type = "flux", value = "sqrt(x - 1)" }',
    )
    text = text.replace('boundaries.left = { type = "temperature", value = 300 }\n', "")
    assert main(["run", str(write(tmp_path, text)), "-o", str(tmp_path / "out"), "-q"]) == 2
    message = error_of(capsys)
    assert "physics.heat: the initial state at t = 0 s, before any step, is not finite" in message
