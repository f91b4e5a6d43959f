"""Every case in cases/ is valid, and each one is run and checked by some test."""

from pathlib import Path

import pytest

from app.cli import main
from tests.conftest import CASES

TESTS = Path(__file__).parent
CASE_FILES = sorted(CASES.glob("*.toml"))


@pytest.mark.parametrize("case", CASE_FILES, ids=[c.stem for c in CASE_FILES])
def test_case_is_valid(case, capsys):
    assert main(["check", str(case)]) == 0
    assert "OK: the case is valid." in capsys.readouterr().out


@pytest.mark.parametrize("case", CASE_FILES, ids=[c.stem for c in CASE_FILES])
def test_case_is_checked_by_a_test(case):
    sources = [p.read_text() for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name]
    assert any(case.stem in text for text in sources), f"no test runs cases/{case.name}"
