"""Fuzzing `scalebridge check` with mutated versions of every case in cases/.

Each example takes a case, changes it as a careless or hostile user would (drops, renames and
adds keys, puts other types and extreme numbers in place of values, writes expressions with
unknown names and quantities of the wrong dimension, swaps boundary names, overrides values
with --set, breaks the file's encoding) and runs ``check`` in-process. Every outcome must be
exit 0, or exit 2 with one message; never an exception escaping ``main``, another exit code or
a traceback on stderr, and never a file written anywhere (``check`` writes nothing).

``make test`` runs a few examples per case with a fixed seed; ``make fuzz`` runs many more
(SCALEBRIDGE_FUZZ_EXAMPLES examples per case, seed SCALEBRIDGE_FUZZ_SEED).

Meshes stay small because the strategy never writes mid-sized cell counts or cell sizes: only
small ones, which build quickly, and huge ones, which the memory estimate refuses quickly.
"""

import contextlib
import io
import math
import os
import tomllib
import traceback
import warnings
from datetime import date, datetime
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from app.cli import main
from tests.conftest import CASES, ROOT

EXAMPLES = int(os.environ.get("SCALEBRIDGE_FUZZ_EXAMPLES", "6"))
SEED = int(os.environ.get("SCALEBRIDGE_FUZZ_SEED", "20251"))
CASE_FILES = sorted(CASES.glob("*.toml"))

NUMBERS = st.sampled_from(
    [0, -1, 1, 2, 3, 2**31, 2**63 - 1, -(2**63), 0.0, -0.0, 0.5, -1.5, 1e-30, 5e-324, 1e-308]
)
NON_FINITE = st.sampled_from([1e308, -1e308, math.nan, math.inf, -math.inf])
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
ODD_TEXT = st.sampled_from(
    ["", " ", "x" * 5000, "héat ✓ 温度", "\n\t", "a.b", "../../../tmp/x", "-ksp_view", "ascii:/x"]
)
EXPRESSIONS = st.sampled_from(
    ["foo*bar + 1", "sin(", "1e308*10", "1/0", "x <", "temperature**2", "exp(1000)", "2**3**4"]
)
ODD_NUMBERS = st.sampled_from(
    ["t if x > 0 else", "__import__('os')", "nan", "inf", "1e999", "-1e999", "9" * 400]
)
QUANTITIES = st.sampled_from(
    ["3 kg", "5 m/s", "0.0437 1/s", "20 degC", "2 W/(m*K)", "1e999 m", "nan W", "1_000.5 mm"]
)
ODD_QUANTITIES = st.sampled_from(
    ["100000 1/m", ".5 s", "5. Pa", "1 m**9**9**9", "2 " + "m/m*" * 3000 + "W", "1 parsec"]
)
SCALARS = st.one_of(
    NUMBERS,
    NON_FINITE,
    st.booleans(),
    WORDS,
    ODD_TEXT,
    EXPRESSIONS,
    ODD_NUMBERS,
    QUANTITIES,
    ODD_QUANTITIES,
    st.text(max_size=20),
    st.just(date(2024, 2, 29)),
    st.just(datetime(1979, 5, 27, 7, 32)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(WORDS, inner, min_size=0, max_size=3)
    ),
    max_leaves=6,
)
# [mesh] sizes: small enough to build in a blink, or far too large to fit in memory.
CELL_COUNTS = st.lists(st.sampled_from([0, -2, 1, 2, 3, 2**40, 10**12]), min_size=0, max_size=4)
MESH_VALUES = {
    "cells": st.one_of(CELL_COUNTS, SCALARS),
    "size": st.one_of(st.sampled_from([1e-12, 0, -0.01, "1 km", "1 um", "0.02 m", "2 s"]), SCALARS),
    "length": st.one_of(st.lists(st.sampled_from([1, 0.5, "2 cm", -1, 1e308, "1 s"])), SCALARS),
    "type": st.sampled_from(["interval", "rectangle", "box", "gmsh", "sphere", 3]),
}


def _nodes(data, path=()):
    """Every (path, value) in the case; paths are tuples of keys and list indices."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _nodes(value, (*path, index))


def _parent(case, path):
    node = case
    for part in path[:-1]:
        node = node[part]
    return node


def _replacement(draw, path):
    key = path[-1] if path else None
    if path and path[0] == "mesh" and key in MESH_VALUES:
        return draw(MESH_VALUES[key])
    if path[:1] == ("mesh",) and len(path) == 3 and path[1] == "cells":
        return draw(st.sampled_from([0, 1, 3, 2**40, -1, 1.5, "4"]))
    return draw(VALUES)


def _tweaked(draw, path, value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return draw(st.one_of(NUMBERS, NON_FINITE, st.just(-value), st.just(value * 1e300)))
    if isinstance(value, str):
        return draw(st.one_of(QUANTITIES, ODD_QUANTITIES, EXPRESSIONS, ODD_NUMBERS, WORDS))
    if isinstance(value, list) and value:
        index = draw(st.integers(0, len(value) - 1))
        return draw(st.sampled_from([value[:index] + value[index + 1 :], [*value, value[index]]]))
    return _replacement(draw, path)


@st.composite
def mutated(draw, case):
    """A case with one to three mutations, and --set overrides."""
    overrides = []
    for _ in range(draw(st.integers(1, 3))):
        nodes = [(p, v) for p, v in _nodes(case) if p]
        path, value = draw(st.sampled_from(nodes))
        parent = _parent(case, path)
        actions = ["drop", "replace", "tweak", "tweak", "rename", "add", "swap"]
        action = draw(st.sampled_from(actions))
        if action == "tweak":  # a value of the same type, so that check gets further
            parent[path[-1]] = _tweaked(draw, path, value)
        elif action == "drop":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = _replacement(draw, path)
        elif action == "rename" and isinstance(parent, dict):
            new = draw(st.one_of(WORDS, st.sampled_from(["", "a b", "ü", "type", "domain"])))
            parent[new] = parent.pop(path[-1])
        elif action == "add" and isinstance(value, dict):
            value[draw(WORDS)] = draw(VALUES)
        elif action == "swap":
            boundaries = [p for p, v in _nodes(case) if p[-1:] == ("boundaries",)]
            if boundaries:
                table = _parent(case, (*draw(st.sampled_from(boundaries)), None))
                names = ["left", "right", "top", "bottom", "front", "inner", "nowhere"]
                if isinstance(table, dict) and table:
                    old = draw(st.sampled_from(sorted(table)))
                    table[draw(st.sampled_from(names))] = table.pop(old)
    if draw(st.booleans()):
        path, _ = draw(st.sampled_from([(p, v) for p, v in _nodes(case) if p] or [(("x",), 0)]))
        dotted = ".".join(str(part) for part in path)
        value = draw(st.one_of(NUMBERS, NON_FINITE, QUANTITIES, EXPRESSIONS, WORDS))
        text = tomli_w.dumps({"v": value}).partition("=")[2].strip()
        overrides += ["--set", f"{dotted}={draw(st.sampled_from([text, str(value)]))}"]
    return case, overrides


def _files(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if "__pycache__" not in path.parts}


def _check(case_file: Path, overrides: list[str], workdir: Path) -> tuple[int, str, str]:
    """``scalebridge check`` in-process, from ``workdir``; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    os.chdir(workdir)
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(record=True) as caught,
        ):
            # What the console script would print: every warning but the ones Python hides.
            warnings.simplefilter("always")
            for hidden in (
                DeprecationWarning,
                PendingDeprecationWarning,
                ImportWarning,
                ResourceWarning,
            ):
                warnings.simplefilter("ignore", hidden)
            code = main(["check", str(case_file), *overrides])
    except BaseException as exc:  # what a user would see as a traceback
        trace = "".join(traceback.format_exception(exc))
        pytest.fail(f"check of {case_file.name} {overrides} raised:\n{trace}")
    finally:
        os.chdir(here)
    printed = [warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught]
    return code, out.getvalue(), "".join(printed) + err.getvalue()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A copy of the layout cases expect (cases/ beside meshes/) and an empty working folder."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "cases").mkdir()
    (root / "meshes").symlink_to(ROOT / "meshes")
    (root / "work").mkdir()
    return root


@pytest.mark.parametrize("case_file", CASE_FILES, ids=lambda path: path.stem)
def test_check_of_a_mutated_case_is_ok_or_one_message(case_file, sandbox):
    original = tomllib.loads(case_file.read_text())

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def run(data):
        case, overrides = data.draw(mutated(tomllib.loads(tomli_w.dumps(original))))
        text = tomli_w.dumps(case).encode()
        if data.draw(st.integers(0, 19)) == 7:  # now and then, a broken encoding
            cut = data.draw(st.integers(0, len(text)))
            text = text[:cut] + b"\xff\xfe" + text[cut:]
        target = sandbox / "cases" / case_file.name
        target.write_bytes(text)
        before = _files(sandbox)
        code, _, stderr = _check(target, overrides, sandbox / "work")
        assert "Traceback" not in stderr, stderr
        assert code in (0, 2), (code, stderr)
        if code == 0:
            assert stderr == "", stderr
        if code == 2:
            assert stderr.startswith("scalebridge: error: "), stderr
            assert stderr.count("scalebridge: error:") == 1, stderr
        assert _files(sandbox) == before, "check wrote files"

    run()
