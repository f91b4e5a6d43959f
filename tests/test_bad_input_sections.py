"""Sections of a case that parse but cannot mean what they say: refused at their path."""

import pytest

from tests.test_bad_input import TRANSIENT, VALID, check, error_of


@pytest.mark.parametrize(("point", "index"), [("-1", 0), ("3", 1)])
def test_a_breakpoint_outside_the_run(tmp_path, capsys, point, index):
    """A breakpoint before the start or after the end was skipped without a word."""
    check(tmp_path, TRANSIENT + f"breakpoints = [{1 if index else point}, {point}]\n")
    message = error_of(capsys)
    assert f"time.breakpoints[{index}]: {point} s is outside the run, which goes from 0 s " in (
        message
    )
    assert "give breakpoints between time.start and time.end" in message


def test_breakpoints_at_the_ends_and_within_are_valid(tmp_path, capsys):
    from app.cli import main
    from tests.test_bad_input import write

    case = write(tmp_path, TRANSIENT + 'breakpoints = [0, "0.5 s", 2]\n')
    assert main(["check", str(case)]) == 0, capsys.readouterr().err


def test_a_line_probe_from_a_point_to_itself(tmp_path, capsys):
    probe = "\n[output.probes]\ncut = { from = [0.5, 0.5], to = [0.5, 0.5], points = 10 }\n"
    check(tmp_path, VALID + probe)
    message = error_of(capsys)
    assert "output.probes.cut: a line from [0.5, 0.5] to the same point" in message
    assert "make it a point probe" in message
