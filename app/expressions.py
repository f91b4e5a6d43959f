"""The restricted expression language of case files.

Case files give material properties and conditions as strings such as
``"45 + 0.1*(temperature - 300)"`` or ``"x < 0.5 and y > 0.2"``. They are data: :func:`parse`
reads them with ``ast.parse`` (which executes nothing), accepts a small whitelist of constructs and
turns them into an immutable tree that :meth:`Expression.to_ufl` and :meth:`Expression.evaluate`
interpret. All checks happen in :func:`parse`, so mistakes surface when the case loads.
"""

import ast
import math
import operator
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import reduce
from numbers import Real
from types import MappingProxyType
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from app.errors import did_you_mean, listing
from app.units import LARGEST

if TYPE_CHECKING:
    import ufl.core.expr

MAX_LENGTH = 2000
MAX_DEPTH = 60

#: Callable functions and their (minimum, maximum) number of arguments; None: no maximum.
FUNCTIONS: Mapping[str, tuple[int, int | None]] = MappingProxyType(
    {
        **dict.fromkeys(("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh"), (1, 1)),
        **dict.fromkeys(("tanh", "exp", "log", "log10", "sqrt", "abs", "sign", "erf"), (1, 1)),
        "atan2": (2, 2),
        "min": (2, None),
        "max": (2, None),
    }
)


class ExpressionError(ValueError):
    """A malformed or unsafe expression; the message says what and where, without a case path
    (callers wrap it into app.errors.CaseError with the path)."""


@dataclass(frozen=True, slots=True)
class _Node:
    """A node of the parsed tree.

    ``kind`` is one of num (``value`` the float), var (``value`` the name), neg, arith (a left
    fold of ``args`` with the operators in ``value``, so a long flat sum is one node rather than
    a deep chain), compare (``args`` compared pairwise by the operators in ``value``, all of
    which must hold), and, or, not, if (test, body, orelse) and call (``value`` the function).
    """

    kind: str
    args: tuple["_Node", ...] = ()
    value: object = None

    @property
    def is_boolean(self) -> bool:
        return self.kind in ("compare", "and", "or", "not")


@dataclass(frozen=True)
class Expression:
    """A parsed, validated expression; build it with :func:`parse`.

    Attributes:
        source: The text as written in the case file.
        names: Free variable names used (not function names, not ``pi``).
        is_boolean: Whether the value is a condition (comparison, and, or, not), not a number.
    """

    source: str
    names: frozenset[str]
    is_boolean: bool
    _tree: _Node = field(repr=False, compare=False)
    _order: tuple[str, ...] = field(repr=False, compare=False)  # names by first appearance

    def check_names(self, known: Iterable[str]) -> None:
        """Raise ExpressionError for the first name (in reading order) not in ``known``."""
        known = set(known)
        for name in self._order:
            if name not in known:
                raise ExpressionError(
                    f"unknown name '{name}' in {self.source!r}{did_you_mean(name, known)}; "
                    f"known names: {listing(known)}"
                )

    def to_ufl(self, namespace: Mapping[str, object]) -> "ufl.core.expr.Expr":
        """Build a UFL expression (a UFL condition when :attr:`is_boolean`).

        Args:
            namespace: Each name of :attr:`names` mapped to a scalar UFL expression
                (SpatialCoordinate component, fem.Constant, Function, ...) or a number.

        Raises:
            ExpressionError: A name is missing or not scalar, or a part cannot be computed
                (division by zero, overflow).
        """
        import ufl  # only this backend needs UFL; loading a case stays light

        self.check_names(namespace)
        numbers, exprs = {}, {}
        for name in self._order:
            value = namespace[name]
            if isinstance(value, Real):
                numbers[name] = float(value)
                continue
            try:
                exprs[name] = ufl.as_ufl(value)
            except (TypeError, ValueError):
                problem = f"is a {type(value).__name__}, not a number or a UFL expression"
                raise ExpressionError(f"'{name}' in {self.source!r} {problem}") from None
            if exprs[name].ufl_shape != ():
                problem = f"must be a scalar but has shape {exprs[name].ufl_shape}"
                raise ExpressionError(f"'{name}' in {self.source!r} {problem}")
        try:
            with _strict_floats():
                tree = _substitute(self._tree, numbers)
            return _to_ufl(tree, exprs)
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise ExpressionError(f"cannot build {self.source!r}: {exc}") from None

    def evaluate(self, namespace: Mapping[str, float | np.ndarray]) -> float | bool | np.ndarray:
        """Evaluate with numpy on scalars or arrays (e.g. cell midpoints).

        Arrays in ``namespace`` (used or not) are broadcast against each other; with any array
        the result is an array of their shape (bool for conditions, float otherwise), else a
        float or a bool.

        The branches of ``a if c else b``, ``and`` and ``or`` are evaluated only where they are
        taken, so ``1/x if x != 0 else 0`` is fine; any other division by zero, overflow or
        invalid value (``sqrt(-1)``) raises ExpressionError rather than giving inf or nan.
        """
        self.check_names(namespace)
        try:
            values = {name: np.asarray(namespace[name], dtype=float) for name in self._order}
            arrays = (*values.values(), *namespace.values())  # unused arrays give the shape too
            shapes = [v.shape for v in arrays if isinstance(v, np.ndarray) and v.ndim]
            shape = np.broadcast_shapes(*shapes)
        except (TypeError, ValueError) as exc:
            raise ExpressionError(f"cannot evaluate {self.source!r}: {exc}") from None
        env = {n: np.broadcast_to(v, shape).ravel() if v.ndim else v[()] for n, v in values.items()}
        try:
            with _strict_floats():
                result = _evaluate(self._tree, env)
        except (ArithmeticError, ValueError) as exc:
            raise ExpressionError(f"cannot evaluate {self.source!r}: {exc}") from None
        if shapes:
            result = np.asarray(result, dtype=bool if self.is_boolean else float)
            return np.broadcast_to(result, (math.prod(shape),)).reshape(shape).copy()
        return bool(result) if self.is_boolean else float(result)

    def __str__(self) -> str:
        return self.source


def parse(source: str) -> Expression:
    """Parse and validate a case-file expression; raises ExpressionError."""
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, got {source!r}")
    if not source.strip():
        raise ExpressionError("the expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(source)} characters long; at most {MAX_LENGTH} are allowed"
        )
    depth = deepest = 0
    for char in source:  # brackets leave no trace in the AST, so they are counted here
        depth += (char in "([{") - (char in ")]}")
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise ExpressionError(
            f"brackets in {source[:30]!r}... are nested {deepest} levels deep; "
            f"at most {MAX_DEPTH} are allowed"
        )
    reader = _Reader(source)
    try:
        body = ast.parse(reader.body, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        line, col = getattr(exc, "lineno", None), getattr(exc, "offset", None)
        where = f" at {reader.position(line, col - 1)}" if line and col else ""
        where = " at the end" if line and not col else where
        message = getattr(exc, "msg", None) or str(exc)
        raise ExpressionError(f"{source!r} is not a valid expression: {message}{where}") from None
    tree = reader.read(body, 0)
    order = tuple(sorted(reader.names, key=reader.names.__getitem__))
    return Expression(source, frozenset(order), tree.is_boolean, tree, order)


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_REJECTED = dict.fromkeys(_COMPREHENSIONS, "a comprehension") | {ast.Lambda: "a lambda"}
_REJECTED |= {ast.Attribute: "attribute access", ast.Subscript: "a subscript"}
_REJECTED |= {ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set"}
_REJECTED |= {ast.JoinedStr: "an f-string", ast.NamedExpr: "an assignment ':='"}
_REJECTED |= {ast.Starred: "a starred argument"}
_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_BAD_OPS = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>"}
_BAD_OPS |= {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.Invert: "~", ast.Is: "is"}
_BAD_OPS |= {ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_OP_HINTS = {"&": "use 'and'", "|": "use 'or'", "^": "use '**' for powers", "~": "use 'not'"}
_OP_HINTS |= {"is": "use '=='", "is not": "use '!='"}


class _Reader:
    """Turns a Python AST into a tree of _Node, rejecting everything outside the grammar."""

    def __init__(self, source: str):
        self.source = source
        self.body = source.lstrip()  # ast.parse rejects an indented first line
        skipped = source[: len(source) - len(self.body)]
        self.line_shift = skipped.count("\n")
        self.col_shift = len(skipped) - skipped.rfind("\n") - 1
        self.names: dict[str, tuple[int, int]] = {}  # name -> position of its first use

    def position(self, line: int, col: int) -> str:
        """Where in ``source`` a (1-based line, 0-based column) of ``body`` is, for people."""
        col += self.col_shift if line == 1 else 0
        line += self.line_shift
        return f"line {line}, column {col + 1}" if "\n" in self.source else f"column {col + 1}"

    def snippet(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.body, node) or ""

    def fail(self, node: ast.AST, problem: str, hint: str = "") -> NoReturn:
        text = self.body.splitlines()[node.lineno - 1]
        col = len(text.encode()[: node.col_offset].decode(errors="replace"))  # offsets are bytes
        where = self.position(node.lineno, col)
        raise ExpressionError(f"{problem} in {self.source!r} at {where}{hint}")

    def reject(self, node: ast.AST, what: str, hint: str = "") -> NoReturn:
        shown = self.snippet(node)
        shown = f" {shown!r}" if shown and shown != self.body.strip() else ""
        self.fail(node, f"{what}{shown} is not allowed", hint)

    def operand(self, node: ast.expr, depth: int, role: str, boolean: bool = False) -> _Node:
        """Read ``node``, which must be a condition if ``boolean`` else a number."""
        tree = self.read(node, depth)
        if tree.is_boolean != boolean:
            kind, expected = ("a number", "a condition") if boolean else ("a condition", "a number")
            hint = "; write a comparison such as 'x > 0'" if boolean else ""
            self.fail(node, f"{self.snippet(node)!r} is {kind} but {role} must be {expected}", hint)
        return tree

    def read(self, node: ast.expr, depth: int) -> _Node:
        if depth >= MAX_DEPTH:
            self.fail(node, f"the expression is nested more than {MAX_DEPTH} levels deep")
        depth += 1
        match node:
            case ast.Constant(value=bool() | None):
                hint = "; write a comparison instead"
                self.fail(node, f"the constant {node.value} is not allowed", hint)
            case ast.Constant(value=int() | float() as value):
                number = float(value) if value <= sys.float_info.max else math.inf
                if not math.isfinite(number):
                    self.fail(node, f"the number {self.snippet(node)!r} is too large")
                return _Node("num", value=number)
            case ast.Constant(value=str() | bytes()):
                self.reject(node, "a string", "; expressions hold numbers, not text")
            case ast.Constant():
                hint = "; only real numbers are allowed"
                self.fail(node, f"the constant {node.value!r} is not allowed", hint)
            case ast.Name(id="pi"):
                return _Node("num", value=math.pi)
            case ast.Name(id=name):  # never a keyword: the parser sees to that
                if name.startswith("_"):
                    hint = ": names starting with '_' are not allowed"
                    self.fail(node, f"the name '{name}' is not allowed", hint)
                if name in FUNCTIONS:
                    self.fail(node, f"'{name}' is a function", f"; call it as {name}(...)")
                if name.lower() in ("inf", "infinity", "nan"):
                    self.fail(node, f"'{name}' is not allowed", ": numbers must be finite")
                self.names.setdefault(name, (node.lineno, node.col_offset))
                return _Node("var", value=name)
            case ast.UnaryOp(op=ast.USub() | ast.UAdd() as op, operand=operand):
                sign = "-" if isinstance(op, ast.USub) else "+"
                tree = self.operand(operand, depth, f"the operand of unary '{sign}'")
                return self.fold(node, _Node("neg", (tree,))) if sign == "-" else tree
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return _Node("not", (self.operand(operand, depth, "the operand of 'not'", True),))
            case ast.UnaryOp(op=op):
                self.operator(node, op, {})
            case ast.BinOp():
                spine = []  # a left spine ((a + b) * c) - d is one left fold: a, +b, *c, -d
                while isinstance(node, ast.BinOp):
                    spine.append(node)
                    node = node.left
                tree = self.operand(node, depth, "the left operand of an arithmetic operator")
                for step in reversed(spine):
                    op = self.operator(step, step.op, _ARITH)
                    right = self.operand(step.right, depth, f"an operand of '{op}'")
                    if tree.kind == "num" and right.kind == "num":  # a constant so far
                        tree = self.fold(step, _Node("arith", (tree, right), (op,)))
                    elif tree.kind == "arith":
                        tree = _Node("arith", (*tree.args, right), (*tree.value, op))
                    else:
                        tree = _Node("arith", (tree, right), (op,))
                return tree
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                # One node for 0 < x < 1: two nodes sharing x would make nested chains
                # exponentially costly to interpret.
                symbols = tuple(self.operator(node, op, _COMPARE) for op in ops)
                args = [self.operand(left, depth, f"an operand of '{symbols[0]}'")]
                for symbol, right in zip(symbols, comparators, strict=True):
                    args.append(self.operand(right, depth, f"an operand of '{symbol}'"))
                return _Node("compare", tuple(args), symbols)
            case ast.BoolOp(op=op, values=values):
                word = "and" if isinstance(op, ast.And) else "or"
                role = f"an operand of '{word}'"
                return _Node(word, tuple(self.operand(v, depth, role, True) for v in values))
            case ast.IfExp(test=test, body=body, orelse=orelse):
                role = "the condition of 'a if condition else b'"
                cond = self.operand(test, depth, role, True)
                role = "a branch of 'a if condition else b'"  # conditions combine with and/or
                branches = (self.operand(body, depth, role), self.operand(orelse, depth, role))
                return self.fold(node, _Node("if", (cond, *branches)))
            case ast.Call():
                return self.call(node, depth)
        for kind, what in _REJECTED.items():
            if isinstance(node, kind):
                self.reject(node, what)
        self.reject(node, f"the construct '{type(node).__name__}'")

    def operator(self, node: ast.AST, op: ast.AST, allowed: dict[type, str]) -> str:
        if type(op) in allowed:
            return allowed[type(op)]
        symbol = _BAD_OPS.get(type(op), type(op).__name__)
        hint = f"; {_OP_HINTS[symbol]}" if symbol in _OP_HINTS else ""
        self.fail(node, f"the operator '{symbol}' is not allowed", hint)

    def call(self, node: ast.Call, depth: int) -> _Node:
        allowed = f"; allowed functions: {listing(FUNCTIONS)}"
        if not isinstance(node.func, ast.Name):
            problem = f"calling {self.snippet(node.func)!r} is not allowed"
            self.fail(node, problem, f"; only functions can be called, by bare name{allowed}")
        name = node.func.id
        if name not in FUNCTIONS:
            hint = did_you_mean(name, FUNCTIONS) + allowed
            self.fail(node, f"the function '{name}' is not allowed", hint)
        if node.keywords:
            hint = f"; {name}() takes positional arguments only"
            self.reject(node.keywords[0], "a keyword argument", hint)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.reject(arg, "a starred argument")
        least, most = FUNCTIONS[name]
        if not least <= len(node.args) <= (most or len(node.args)):
            wanted = f"{least}" if least == most else f"at least {least}"
            plural = "" if least == 1 else "s"
            self.fail(node, f"{name}() takes {wanted} argument{plural}, got {len(node.args)}")
        args = tuple(self.operand(arg, depth, f"the argument of {name}()") for arg in node.args)
        return self.fold(node, _Node("call", args, name))

    def fold(self, node: ast.AST, tree: _Node) -> _Node:
        """Compute constant parts now, so that e.g. ``9**9**9**9`` fails when the case loads."""
        try:
            with _strict_floats():
                return _fold(tree)
        except (ArithmeticError, ValueError) as exc:
            reason = f"overflow: beyond ±{LARGEST}" if "overflow" in str(exc) else str(exc)
            self.fail(node, f"cannot compute {self.snippet(node)!r} ({reason})")


# numpy raises (rather than warns) on division by zero, overflow and invalid values.
def _strict_floats() -> np.errstate:
    return np.errstate(divide="raise", over="raise", invalid="raise", under="ignore")


# numpy scalars and arrays follow the operators and _strict_floats; UFL overloads all but ==, !=.
_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_OPERATORS |= {"**": operator.pow, "<": operator.lt, "<=": operator.le, ">": operator.gt}
_OPERATORS |= {">=": operator.ge, "==": operator.eq, "!=": operator.ne}
_NUMPY_FUNCTIONS = {name: getattr(np, name, None) for name in FUNCTIONS} | {
    **{name: getattr(np, "arc" + name[1:]) for name in ("asin", "acos", "atan", "atan2")},
    "erf": np.vectorize(math.erf, otypes=[float]),  # scipy is not a runtime dependency
    "min": np.minimum,
    "max": np.maximum,
}


def _has_vars(tree: _Node) -> bool:
    return tree.kind == "var" or any(_has_vars(child) for child in tree.args)


def _fold(tree: _Node) -> _Node:
    """``tree`` with constant numeric parts replaced by their value (under _strict_floats)."""
    if tree.kind in ("num", "var") or tree.is_boolean:
        return tree
    return tree if _has_vars(tree) else _Node("num", value=float(_evaluate(tree, {})))


def _substitute(tree: _Node, numbers: Mapping[str, float]) -> _Node:
    """``tree`` with the names in ``numbers`` replaced by their values, then folded."""
    if tree.kind == "var":
        return _Node("num", value=numbers[tree.value]) if tree.value in numbers else tree
    if not numbers or not tree.args:
        return tree
    return _fold(replace(tree, args=tuple(_substitute(child, numbers) for child in tree.args)))


def _evaluate(tree: _Node, env: Mapping[str, np.generic | np.ndarray]) -> np.generic | np.ndarray:
    """The numpy value of ``tree``; arrays in ``env`` are 1-D and of one length."""
    args = tree.args
    match tree.kind:
        case "num":
            return np.float64(tree.value)
        case "var":
            return env[tree.value]
        case "neg":
            return -_evaluate(args[0], env)
        case "arith":
            value = _evaluate(args[0], env)
            for op, arg in zip(tree.value, args[1:], strict=True):
                value = _OPERATORS[op](value, _evaluate(arg, env))
            return value
        case "compare":
            values = [_evaluate(arg, env) for arg in args]
            pairs = zip(tree.value, values, values[1:], strict=False)
            return reduce(np.logical_and, (_OPERATORS[op](a, b) for op, a, b in pairs))
        case "not":
            return np.logical_not(_evaluate(args[0], env))
        case "and" | "or":
            value = _evaluate(args[0], env)
            for arg in args[1:]:  # short-circuit: evaluate only where still undecided
                undecided = value if tree.kind == "and" else np.logical_not(value)
                value = _select(undecided, arg, value, env, bool)
            return value
        case "if":
            return _select(_evaluate(args[0], env), args[1], args[2], env, float)
        case "call":
            function = _NUMPY_FUNCTIONS[tree.value]
            values = [_evaluate(arg, env) for arg in args]
            return function(values[0]) if len(values) == 1 else reduce(function, values)
    raise AssertionError(f"unknown node kind {tree.kind!r}")


def _select(mask, chosen: _Node, otherwise, env: Mapping, dtype: type):
    """``chosen`` evaluated where ``mask`` holds, ``otherwise`` (a node or a value) elsewhere."""
    if np.ndim(mask) == 0:
        branch = chosen if mask else otherwise
        return _evaluate(branch, env) if isinstance(branch, _Node) else branch
    result = np.empty(mask.shape, dtype=dtype)
    for branch, where in ((chosen, mask), (otherwise, np.logical_not(mask))):
        if not isinstance(branch, _Node):
            result[where] = branch[where] if np.ndim(branch) else branch
        elif where.any():  # a branch taken nowhere is not evaluated, so it cannot raise
            part = {name: v[where] if np.ndim(v) else v for name, v in env.items()}
            result[where] = _evaluate(branch, part)
    return result


def _to_ufl(tree: _Node, exprs: Mapping[str, "ufl.core.expr.Expr"]) -> "ufl.core.expr.Expr":
    import ufl

    args = [_to_ufl(arg, exprs) for arg in tree.args]
    match tree.kind:
        case "num":
            return ufl.as_ufl(tree.value)
        case "var":
            return exprs[tree.value]
        case "neg":
            return -args[0]
        case "arith":
            value = args[0]
            for op, arg in zip(tree.value, args[1:], strict=True):
                value = _OPERATORS[op](value, arg)
            return value
        case "compare":
            operators = _OPERATORS | {"==": ufl.eq, "!=": ufl.ne}  # UFL's == compares forms
            pairs = zip(tree.value, args, args[1:], strict=False)
            return reduce(ufl.And, (operators[op](a, b) for op, a, b in pairs))
        case "not":
            return ufl.Not(args[0])
        case "and" | "or":
            return reduce(ufl.And if tree.kind == "and" else ufl.Or, args)
        case "if":
            return ufl.conditional(*args)
        case "call":
            special = {"log": ufl.ln, "abs": abs, "min": ufl.min_value, "max": ufl.max_value}
            special["log10"] = lambda arg: ufl.ln(arg) / math.log(10)
            function = special.get(tree.value) or getattr(ufl, tree.value)
            return function(args[0]) if len(args) == 1 else reduce(function, args)
    raise AssertionError(f"unknown node kind {tree.kind!r}")
