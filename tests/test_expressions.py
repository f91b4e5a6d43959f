"""Tests of the case-file expression language (app.expressions)."""

import dataclasses
import math
import re
import time

import numpy as np
import pytest

import app  # noqa: F401  (imported before dolfinx: it orders MPI correctly)
from app.expressions import Expression, ExpressionError, parse

# Reference values come from Python's math module. The sample point and ranges keep every
# function inside its domain (x, y in (0, 1), t in (0, 2), temperature in (290, 410)).
NUMERIC = [
    ("45 + 0.1*(temperature - 300)", lambda x, y, t, T: 45 + 0.1 * (T - 300)),
    ("1000*sin(pi*x)*exp(-t)", lambda x, y, t, T: 1000 * math.sin(math.pi * x) * math.exp(-t)),
    ("2 if temperature > 350 else 1", lambda x, y, t, T: 2.0 if T > 350 else 1.0),
    ("-x**2 + 2**3**2 - (2**3)**2", lambda x, y, t, T: -(x**2) + 2 ** (3**2) - (2**3) ** 2),
    ("10 - x - 3 + 12/y/3 + 7/2", lambda x, y, t, T: 10 - x - 3 + 12 / y / 3 + 7 / 2),
    ("+x - -y * 1_000 + 1e-3", lambda x, y, t, T: x + y * 1000 + 1e-3),
    ("atan2(y - 0.5, x - 0.5)", lambda x, y, t, T: math.atan2(y - 0.5, x - 0.5)),
    ("log(x) + log10(y) + sqrt(t)", lambda x, y, t, T: math.log(x) + math.log10(y) + t**0.5),
    ("abs(x - 0.5) * sign(y - 0.5)", lambda x, y, t, T: abs(x - 0.5) * np.sign(y - 0.5)),
    ("min(x, y, 0.3) + max(x, y, t, 0.2)", lambda x, y, t, T: min(x, y, 0.3) + max(x, y, t, 0.2)),
    (
        "erf(3*x - 1) + tanh(y) + cosh(x) - sinh(t)",
        lambda x, y, t, T: math.erf(3 * x - 1) + math.tanh(y) + math.cosh(x) - math.sinh(t),
    ),
    (
        "asin(x) + acos(y) + atan(t) + tan(x) + cos(y)",
        lambda x, y, t, T: math.asin(x) + math.acos(y) + math.atan(t) + math.tan(x) + math.cos(y),
    ),
    ("x if 0.2 < x < 0.8 else -y", lambda x, y, t, T: x if 0.2 < x < 0.8 else -y),
    (
        "1 if x < 0.5 and y > 0.2 or not t < 1 else 0",
        lambda x, y, t, T: float((x < 0.5 and y > 0.2) or not t < 1),
    ),
]

BOOLEAN = [
    ("x < 0.5 and y > 0.2", lambda x, y, t, T: x < 0.5 and y > 0.2),
    ("0.25 < x <= 0.75", lambda x, y, t, T: 0.25 < x <= 0.75),
    (
        "not (x >= 0.5) or y == 0.25 or t != 1",
        lambda x, y, t, T: not x >= 0.5 or y == 0.25 or t != 1,
    ),
    ("temperature > 350", lambda x, y, t, T: T > 350),
]


def namespace(x, y, t, T):
    return {"x": x, "y": y, "t": t, "temperature": T}


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(7)
    x, y = rng.uniform(0.05, 0.95, (2, 60))
    x[:3], y[:3] = 0.5, 0.25  # exact ties on comparison thresholds
    return x, y, rng.uniform(0.1, 1.9, 60), rng.uniform(290, 410, 60)


@pytest.mark.parametrize(("source", "reference"), NUMERIC + BOOLEAN)
@pytest.mark.parametrize("point", [(0.3, 0.7, 0.6, 330.0), (0.5, 0.25, 1.5, 380.0)])
def test_scalar_values_match_math(source, reference, point):
    expr = parse(source)
    value = expr.evaluate(namespace(*point))
    expected = reference(*point)
    if expr.is_boolean:
        assert type(value) is bool and value == expected
    else:
        assert type(value) is float and value == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("source", "reference"), NUMERIC + BOOLEAN)
def test_array_values_match_math_elementwise(source, reference, points):
    expr = parse(source)
    values = expr.evaluate(namespace(*points))
    expected = [reference(*p) for p in zip(*points, strict=True)]
    assert values.shape == (60,)
    assert values.dtype == (bool if expr.is_boolean else float)
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-12)


def test_arrays_broadcast_and_constants_fill_the_shape():
    x, y = np.linspace(0, 1, 5)[:, None], np.linspace(0, 1, 3)[None, :]
    np.testing.assert_allclose(parse("x + 10*y").evaluate({"x": x, "y": y}), x + 10 * y)
    everywhere = parse("1 > 0").evaluate({"x": np.zeros(4)})
    assert everywhere.dtype == bool and everywhere.tolist() == [True] * 4
    np.testing.assert_array_equal(parse("2*pi").evaluate({"x": np.zeros(3)}), [2 * np.pi] * 3)
    assert parse("2*pi").evaluate({}) == 2 * math.pi


def test_untaken_branches_are_not_evaluated():
    x = np.array([-1.0, 0.0, 0.25, 4.0])
    np.testing.assert_allclose(parse("1/x if x != 0 else 0").evaluate({"x": x}), [-1, 0, 4, 0.25])
    assert parse("x > 0 and sqrt(x) > 1").evaluate({"x": x}).tolist() == [0, 0, 0, 1]
    assert parse("x <= 0 or log(x) > 0").evaluate({"x": x}).tolist() == [1, 1, 0, 1]
    assert parse("1/x if x != 0 else 0").evaluate({"x": 0.0}) == 0.0
    assert parse("x <= 0 or log(x) > 0").evaluate({"x": -2}) is True
    # A branch taken at no point is skipped even where its value would not be an array.
    np.testing.assert_array_equal(
        parse("sqrt(t) if x > 2 else 0").evaluate({"x": np.zeros(3), "t": -1.0}), [0.0] * 3
    )


@pytest.mark.parametrize(
    ("source", "values", "fragment"),
    [
        ("1/x", {"x": np.array([1.0, 0.0])}, "divide by zero"),
        ("sqrt(x)", {"x": -1.0}, "invalid value"),
        ("exp(x)", {"x": 1000.0}, "overflow"),
        ("x + y", {"x": np.zeros(2), "y": np.zeros(3)}, "cannot evaluate 'x + y'"),
    ],
)
def test_evaluation_errors_are_expression_errors(source, values, fragment):
    with pytest.raises(ExpressionError, match=re.escape(fragment)):
        parse(source).evaluate(values)


def test_names_exclude_functions_and_pi():
    expr = parse("1000*sin(pi*x)*exp(-t) + max(y, temperature) + atan2(y, x)")
    assert expr.names == frozenset({"x", "y", "t", "temperature"})
    assert parse("2*pi + sqrt(2)").names == frozenset()
    assert not expr.is_boolean and parse("x < 1 or not y > 2").is_boolean
    assert str(expr) == expr.source == "1000*sin(pi*x)*exp(-t) + max(y, temperature) + atan2(y, x)"


def test_check_names_suggests_the_closest_name():
    expr = parse("1 + 0.01*temprature")
    with pytest.raises(ExpressionError) as info:
        expr.check_names(["x", "y", "t", "temperature"])
    assert str(info.value) == (
        "unknown name 'temprature' in '1 + 0.01*temprature' (did you mean 'temperature'?); "
        "known names: t, temperature, x, y"
    )
    parse("x + y*t").check_names(["x", "y", "t", "unused"])  # no error
    with pytest.raises(ExpressionError, match=r"unknown name 'c' .*known names: none"):
        parse("c*b + a*c").check_names([])  # the first name in reading order is reported


def test_missing_names_raise_in_both_backends():
    with pytest.raises(ExpressionError, match="unknown name 'y'"):
        parse("x + y").evaluate({"x": 1.0})
    with pytest.raises(ExpressionError, match="unknown name 'y'"):
        parse("x + y").to_ufl({"x": 1.0})


def test_expression_is_immutable():
    expr = parse("x + 1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.source = "x + 2"
    assert isinstance(expr, Expression) and expr == parse("x + 1")


def test_layout_is_free():
    assert parse("  1 + x").evaluate({"x": 2.0}) == 3.0
    assert parse("(x +\n   2*y)").evaluate({"x": 1.0, "y": 2.0}) == 5.0
    flat = "+".join(["x"] * 900)  # 1799 characters: flat, not deep
    assert parse(flat).evaluate({"x": 0.5}) == pytest.approx(450.0)


def test_nested_chained_comparisons_stay_cheap():
    source = "x"
    for _ in range(25):  # the middle operand of each chain holds the next level
        source = f"(1 if 0 < {source} < 2 else 0)"
    expr = parse(source)
    start = time.perf_counter()
    assert expr.evaluate({"x": 0.5}) == 1.0
    np.testing.assert_array_equal(expr.evaluate({"x": np.array([0.5, 3.0])}), [1.0, 0.0])
    expr.to_ufl({"x": 0.5})
    assert time.perf_counter() - start < 1.0


def test_long_comparison_chains():
    expr = parse("0 < x < y <= 1 != t")
    assert expr.is_boolean and expr.names == frozenset({"x", "y", "t"})
    assert expr.evaluate({"x": 0.2, "y": 1.0, "t": 2.0}) is True
    assert expr.evaluate({"x": 0.2, "y": 1.0, "t": 1.0}) is False
    assert expr.evaluate({"x": 0.2, "y": 0.1, "t": 2.0}) is False


REJECTED = [
    ("__import__('os')", ["function '__import__' is not allowed", "allowed functions: abs,"]),
    ("__import__('os').system('ls')", ["calling", "is not allowed", "allowed functions:"]),
    ("().__class__.__bases__", ["attribute access is not allowed", "'().__class__.__bases__'"]),
    ("open('/etc/passwd')", ["function 'open' is not allowed", "allowed functions:"]),
    ("eval('1 + 1')", ["function 'eval' is not allowed"]),
    ("sine(x)", ["function 'sine' is not allowed", "did you mean 'sin'?"]),
    ("x.real", ["attribute access is not allowed in 'x.real'"]),
    ("[1, 2][0]", ["a subscript is not allowed"]),
    ("'abc'", ["a string is not allowed", "'abc'"]),
    ("b'abc' + 1", ["a string", "is not allowed"]),
    ("lambda: 1", ["a lambda is not allowed"]),
    ("[x for x in y]", ["a comprehension is not allowed"]),
    ("[1, 2]", ["a list is not allowed"]),
    ("(1, 2)", ["a tuple is not allowed"]),
    ("{1: 2}", ["a dict is not allowed"]),
    ("{1, 2}", ["a set is not allowed"]),
    ("f'{x}'", ["an f-string is not allowed"]),
    ("sin(x=1)", ["a keyword argument 'x=1' is not allowed", "column 5"]),
    ("max(*x)", ["a starred argument '*x' is not allowed"]),
    ("(y := 2) + 1", ["an assignment ':='", "is not allowed"]),
    ("x & y", ["operator '&' is not allowed", "use 'and'"]),
    ("x | y", ["operator '|' is not allowed", "use 'or'"]),
    ("x ^ 2", ["operator '^' is not allowed", "use '**'"]),
    ("~x", ["operator '~' is not allowed"]),
    ("x << 2", ["operator '<<' is not allowed"]),
    ("x // 2", ["operator '//' is not allowed"]),
    ("x % 2", ["operator '%' is not allowed"]),
    ("x @ y", ["operator '@' is not allowed"]),
    ("x is y", ["operator 'is' is not allowed"]),
    ("x in y", ["operator 'in' is not allowed"]),
    ("x not in y", ["operator 'not in' is not allowed"]),
    ("_x + 1", ["names starting with '_' are not allowed"]),
    ("sin + 1", ["'sin' is a function"]),
    ("True", ["the constant True is not allowed"]),
    ("1j * x", ["the constant 1j is not allowed"]),
    ("sin(x, y)", ["sin() takes 1 argument, got 2"]),
    ("atan2(y)", ["atan2() takes 2 arguments, got 1"]),
    ("min(x)", ["min() takes at least 2 arguments, got 1"]),
    ("x + (y < 1)", ["'y < 1' is a condition but an operand of '+' must be a number"]),
    ("sin(x < 1)", ["'x < 1' is a condition but the argument of sin() must be a number"]),
    ("1 if x else 2", ["'x' is a number but the condition of 'a if condition else b'"]),
    ("x < 1 if y > 0 else 2", ["is a condition but a branch of 'a if condition else b'"]),
    ("x and y > 1", ["'x' is a number but an operand of 'and' must be a condition"]),
    ("not x", ["the operand of 'not' must be a condition"]),
    ("1 +", ["'1 +' is not a valid expression", "at the end"]),
    ("x = 1", ["'x = 1' is not a valid expression", "column 3"]),
    ("sin(x", ["'sin(x' is not a valid expression", "never closed"]),
    ("x\n+ 1", ["is not a valid expression", "line 2"]),
    ("(x +\n  y.z)", ["attribute access 'y.z' is not allowed", "line 2, column 3"]),
    ("1e400 * x", ["the number '1e400' is too large"]),
    ("1/0 + x", ["cannot compute '1/0'", "divide by zero"]),
    ("sqrt(-1) * x", ["cannot compute 'sqrt(-1)'", "invalid value"]),
    ("", ["empty"]),
    ("  \n ", ["empty"]),
    ("x" * 5000, ["5000 characters long", "at most 2000"]),
    ("(" * 100 + "x" + ")" * 100, ["nested 100 levels deep", "at most 60"]),
    ("-" * 100 + "x", ["nested more than 60 levels deep"]),
    ("not " * 70 + "x < 1", ["nested more than 60 levels deep"]),
    ("2**" * 70 + "x", ["nested more than 60 levels deep"]),
]


@pytest.mark.parametrize(("source", "fragments"), REJECTED)
def test_rejected_constructs_say_what_and_where(source, fragments):
    with pytest.raises(ExpressionError) as info:
        parse(source)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message  # one line, for CaseError
    if source.strip() and len(source) < 100:
        assert repr(source) in message  # the source is quoted


def test_huge_powers_fail_fast_with_an_overflow_message():
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match="overflow") as info:
        parse("9**9**9**9")
    assert time.perf_counter() - start < 1.0
    assert "'9**9**9**9'" in str(info.value)


def test_nothing_is_executed(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(ExpressionError):
        parse(f"__import__('os').system('touch {marker}')")
    with pytest.raises(ExpressionError):
        parse(f"open('{marker}', 'w')")
    assert not marker.exists()


def test_non_string_source_is_rejected():
    with pytest.raises(ExpressionError, match="must be a string"):
        parse(3.5)


# ---- UFL backend: interpolate into P1 and compare with numpy at the dof coordinates ----

UFL_CASES = [source for source, _ in NUMERIC] + [
    "x if t == 0.7 else y",
    "x if t != 0.7 else y",
    "erf(3*(x - 0.4)) * atan2(y - 0.3, x - 0.55) + max(x, y, temperature/400)",
    "3 if 0.21 < x < 0.79 and not y > 0.63 else min(x, 0.1)",
    "sqrt(y) + 2**x + x**2.5 - log10(1 + temperature) / t",
]


@pytest.fixture(scope="module")
def p1():
    import ufl
    from dolfinx import fem, mesh
    from mpi4py import MPI

    msh = mesh.create_unit_square(MPI.COMM_WORLD, 8, 8)
    space = fem.functionspace(msh, ("Lagrange", 1))
    temperature = fem.Function(space)
    temperature.interpolate(lambda p: 300 + 90 * p[0] + 17 * p[1])

    # x and y are mapped into (0, 1) so that every function is defined, skewed so that no dof
    # lies on a threshold of a comparison or a kink where roundoff could pick either side.
    def skewed(p):
        return 0.03 + 0.9 * p[0] + 0.01 * p[1], 0.04 + 0.9 * p[1] + 0.013 * p[0]

    x, y = skewed(ufl.SpatialCoordinate(msh))
    t = fem.Constant(msh, 0.7)
    ufl_names = {"x": x, "y": y, "t": t, "temperature": temperature}
    x, y = skewed(space.tabulate_dof_coordinates().T)
    numpy_names = namespace(x, y, 0.7, temperature.x.array.copy())
    return space, ufl_names, numpy_names


def interpolate(space, ufl_expr):
    from dolfinx import fem

    result = fem.Function(space)
    result.interpolate(fem.Expression(ufl_expr, space.element.interpolation_points))
    return result.x.array


@pytest.mark.parametrize("source", UFL_CASES)
def test_ufl_matches_numpy_at_dofs(p1, source):
    space, ufl_names, numpy_names = p1
    expr = parse(source)
    values = interpolate(space, expr.to_ufl(ufl_names))
    np.testing.assert_allclose(values, expr.evaluate(numpy_names), rtol=1e-10, atol=1e-10)


def test_ufl_conditions_and_numbers_in_the_namespace(p1):
    import ufl

    space, ufl_names, numpy_names = p1
    condition = parse("x < 0.53 and y > 0.21 or t >= 1")
    indicator = ufl.conditional(condition.to_ufl(ufl_names), 1.0, 0.0)
    expected = condition.evaluate(numpy_names).astype(float)
    assert 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(interpolate(space, indicator), expected)

    # Numbers may stand for names; constant parts are then computed (and checked) in Python.
    expr = parse("2 if temperature > 350 else x + sqrt(temperature)")
    hot = interpolate(space, expr.to_ufl({**ufl_names, "temperature": 400}))
    cold = interpolate(space, expr.to_ufl({**ufl_names, "temperature": 4}))
    np.testing.assert_allclose(hot, 2.0)
    np.testing.assert_allclose(cold, numpy_names["x"] + 2.0)


@pytest.mark.parametrize(
    ("source", "values", "fragment"),
    [
        ("sqrt(temperature) + x", {"temperature": -1.0}, "invalid value"),
        ("x / y", {"y": 0}, "cannot build 'x / y'"),
        ("x + y", {"y": "text"}, "'y' in 'x + y' is a str"),
    ],
)
def test_ufl_build_errors_are_expression_errors(p1, source, values, fragment):
    _, ufl_names, _ = p1
    with pytest.raises(ExpressionError, match=re.escape(fragment)):
        parse(source).to_ufl({**ufl_names, **values})


def test_ufl_rejects_non_scalar_values(p1):
    import ufl

    space, ufl_names, _ = p1
    position = ufl.SpatialCoordinate(space.mesh)
    with pytest.raises(ExpressionError, match="must be a scalar but has shape"):
        parse("x + p").to_ufl({**ufl_names, "p": position})
