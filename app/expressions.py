"""The restricted expression language of case files.

Case files give material properties and conditions as strings such as
``"45 + 0.1*(temperature - 300)"`` or ``"x < 0.5 and y > 0.2"``. They are data: :func:`parse`
reads them with ``ast.parse`` (which executes nothing), accepts a small whitelist of constructs and
turns them into an immutable tree that :meth:`Expression.to_ufl` and :meth:`Expression.evaluate`
interpret. All checks happen in :func:`parse`, so mistakes surface when the case loads.

Besides the built-in :data:`FUNCTIONS`, an expression may call functions defined by expressions
of named arguments (a parameter set's ``U_n(theta)``, see :mod:`app.parameter_set`), handed to
:func:`parse` as :class:`Function` objects: a call is checked (name, argument count) and replaced
by the function's body with the arguments substituted, so the parsed tree holds only built-in
operations and evaluates like any other.
"""

import ast
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from app.errors import did_you_mean, listing
from app.expression_tree import (
    FUNCTIONS,
    Node,
    evaluate_tree,
    fold,
    size,
    strict_floats,
    substitute,
    tree_to_ufl,
    variables,
    within,
)
from app.units import LARGEST

if TYPE_CHECKING:
    import ufl.core.expr

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_NODES = 20000  # after expanding calls of defined functions

__all__ = ["FUNCTIONS", "Expression", "ExpressionError", "Function", "parse"]


class ExpressionError(ValueError):
    """A malformed or unsafe expression; the message says what and where, without a case path
    (callers wrap it into app.errors.CaseError with the path)."""


@dataclass(frozen=True)
class Expression:
    """A parsed, validated expression; build it with :func:`parse`.

    Attributes:
        source: The text as written in the case file.
        names: Free variable names used (not function names, not ``pi``).
        is_boolean: Whether the value is a condition (comparison, and, or, not), not a number.
        calls: Each call of a defined function, in reading order: its name and, per argument,
            the name written there when the argument is a bare name (else None), so that
            argument units can be checked against the fields they name.
        head: The name the whole expression is, when it is a bare name (``"L_n"``) or one call
            of a defined function (``"D_e(c_e, T)"``): its units are the expression's units.
    """

    source: str
    names: frozenset[str]
    is_boolean: bool
    _tree: Node = field(repr=False, compare=False)
    _order: tuple[str, ...] = field(repr=False, compare=False)  # names by first appearance
    calls: tuple[tuple[str, tuple[str | None, ...]], ...] = ()
    head: str | None = None

    @property
    def read_names(self) -> frozenset[str]:
        """The names the value depends on: ``names`` without those only passed to a defined
        function that ignores them (``D_s(theta, T)`` whose body is a constant)."""
        return variables(self._tree)

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
            with strict_floats():
                tree = substitute(self._tree, {n: Node("num", value=v) for n, v in numbers.items()})
            return tree_to_ufl(tree, exprs)
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise ExpressionError(f"cannot build {self.source!r}: {exc}") from None

    def evaluate(
        self, namespace: Mapping[str, float | np.ndarray], tolerance: float = 0.0
    ) -> float | bool | np.ndarray:
        """Evaluate with numpy on scalars or arrays (e.g. cell midpoints).

        Arrays in ``namespace`` (used or not) are broadcast against each other; with any array
        the result is an array of their shape (bool for conditions, float otherwise), else a
        float or a bool.

        The branches of ``a if c else b``, ``and`` and ``or`` are evaluated only where they are
        taken, so ``1/x if x != 0 else 0`` is fine; any other division by zero, overflow or
        invalid value (``sqrt(-1)``) raises ExpressionError rather than giving inf or nan.

        ``tolerance`` loosens ``==``, ``!=``, ``<=``, ``>=`` (``<``, ``>`` stay strict), so that
        ``x == 0.3`` meets a mesh vertex at 0.30000000000000004.
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
            with strict_floats():
                tree = within(self._tree, tolerance) if tolerance else self._tree
                result = evaluate_tree(tree, env)
        except (ArithmeticError, ValueError) as exc:
            raise ExpressionError(f"cannot evaluate {self.source!r}: {exc}") from None
        if shapes:
            result = np.asarray(result, dtype=bool if self.is_boolean else float)
            return np.broadcast_to(result, (math.prod(shape),)).reshape(shape).copy()
        return bool(result) if self.is_boolean else float(result)

    def combine(self, namespace: Mapping[str, object]) -> object:
        """Evaluate on objects with arithmetic of their own (pint quantities: the units of the
        result), without converting them to floats."""
        self.check_names(namespace)
        return evaluate_tree(self._tree, namespace)

    def __str__(self) -> str:
        return self.source


@dataclass(frozen=True)
class Function:
    """A function defined by an expression of named arguments, e.g. ``U_n(theta)``.

    Attributes:
        name: What expressions call it by.
        arguments: The argument names its body uses, in call order.
        body: The parsed body; its other names are constants the caller's namespace must hold.
    """

    name: str
    arguments: tuple[str, ...]
    body: Expression

    @property
    def constants(self) -> frozenset[str]:
        """Names of the body that are not arguments."""
        return self.body.names - set(self.arguments)


def parse(source: str, functions: Mapping[str, Function] | None = None) -> Expression:
    """Parse and validate a case-file expression; raises ExpressionError.

    Args:
        source: The text.
        functions: Defined functions the expression may call besides the built-in ones (looked
            up by name when called; a mapping may build them on demand).
    """
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
    reader = _Reader(source, functions or {})
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
    head = body.id if isinstance(body, ast.Name) and body.id in reader.names else None
    if isinstance(body, ast.Call) and reader.calls and body.func.id == reader.calls[0][0]:
        head = body.func.id  # the outermost call is read (and recorded) first
    calls = tuple(reader.calls)
    return Expression(source, frozenset(order), tree.is_boolean, tree, order, calls, head)


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
    """Turns a Python AST into a tree of Node, rejecting everything outside the grammar."""

    def __init__(self, source: str, functions: Mapping[str, Function]):
        self.source, self.functions = source, functions
        self.calls: list[tuple[str, tuple[str | None, ...]]] = []
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

    def operand(self, node: ast.expr, depth: int, role: str, boolean: bool = False) -> Node:
        """Read ``node``, which must be a condition if ``boolean`` else a number."""
        tree = self.read(node, depth)
        if tree.is_boolean != boolean:
            kind, expected = ("a number", "a condition") if boolean else ("a condition", "a number")
            hint = "; write a comparison such as 'x > 0'" if boolean else ""
            self.fail(node, f"{self.snippet(node)!r} is {kind} but {role} must be {expected}", hint)
        return tree

    def read(self, node: ast.expr, depth: int) -> Node:
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
                return Node("num", value=number)
            case ast.Constant(value=str() | bytes()):
                self.reject(node, "a string", "; expressions hold numbers, not text")
            case ast.Constant():
                hint = "; only real numbers are allowed"
                self.fail(node, f"the constant {node.value!r} is not allowed", hint)
            case ast.Name(id="pi"):
                return Node("num", value=math.pi)
            case ast.Name(id=name):  # never a keyword: the parser sees to that
                if name.startswith("_"):
                    hint = ": names starting with '_' are not allowed"
                    self.fail(node, f"the name '{name}' is not allowed", hint)
                if name in FUNCTIONS or name in self.functions:
                    self.fail(node, f"'{name}' is a function", f"; call it as {name}(...)")
                if name.lower() in ("inf", "infinity", "nan"):
                    self.fail(node, f"'{name}' is not allowed", ": numbers must be finite")
                self.names.setdefault(name, (node.lineno, node.col_offset))
                return Node("var", value=name)
            case ast.UnaryOp(op=ast.USub() | ast.UAdd() as op, operand=operand):
                sign = "-" if isinstance(op, ast.USub) else "+"
                tree = self.operand(operand, depth, f"the operand of unary '{sign}'")
                return self.fold(node, Node("neg", (tree,))) if sign == "-" else tree
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return Node("not", (self.operand(operand, depth, "the operand of 'not'", True),))
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
                        tree = self.fold(step, Node("arith", (tree, right), (op,)))
                    elif tree.kind == "arith":
                        tree = Node("arith", (*tree.args, right), (*tree.value, op))
                    else:
                        tree = Node("arith", (tree, right), (op,))
                return tree
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                # One node for 0 < x < 1: two nodes sharing x would make nested chains
                # exponentially costly to interpret.
                symbols = tuple(self.operator(node, op, _COMPARE) for op in ops)
                args = [self.operand(left, depth, f"an operand of '{symbols[0]}'")]
                for symbol, right in zip(symbols, comparators, strict=True):
                    args.append(self.operand(right, depth, f"an operand of '{symbol}'"))
                return Node("compare", tuple(args), symbols)
            case ast.BoolOp(op=op, values=values):
                word = "and" if isinstance(op, ast.And) else "or"
                role = f"an operand of '{word}'"
                return Node(word, tuple(self.operand(v, depth, role, True) for v in values))
            case ast.IfExp(test=test, body=body, orelse=orelse):
                role = "the condition of 'a if condition else b'"
                cond = self.operand(test, depth, role, True)
                role = "a branch of 'a if condition else b'"  # conditions combine with and/or
                branches = (self.operand(body, depth, role), self.operand(orelse, depth, role))
                return self.fold(node, Node("if", (cond, *branches)))
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

    def call(self, node: ast.Call, depth: int) -> Node:
        known = [*FUNCTIONS, *self.functions]
        allowed = f"; allowed functions: {listing(known)}"
        if not isinstance(node.func, ast.Name):
            problem = f"calling {self.snippet(node.func)!r} is not allowed"
            self.fail(node, problem, f"; only functions can be called, by bare name{allowed}")
        name = node.func.id
        if name not in known:
            hint = did_you_mean(name, known) + allowed
            self.fail(node, f"the function '{name}' is not allowed", hint)
        if node.keywords:
            hint = f"; {name}() takes positional arguments only"
            self.reject(node.keywords[0], "a keyword argument", hint)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.reject(arg, "a starred argument")
        if name not in FUNCTIONS:
            return self.defined_call(node, self.functions[name], depth)
        least, most = FUNCTIONS[name]
        if not least <= len(node.args) <= (most or len(node.args)):
            wanted = f"{least}" if least == most else f"at least {least}"
            plural = "" if least == 1 else "s"
            self.fail(node, f"{name}() takes {wanted} argument{plural}, got {len(node.args)}")
        args = tuple(self.operand(arg, depth, f"the argument of {name}()") for arg in node.args)
        return self.fold(node, Node("call", args, name))

    def defined_call(self, node: ast.Call, function: Function, depth: int) -> Node:
        """A call of a defined function: its body with the arguments substituted."""
        name, wanted = function.name, function.arguments
        if len(node.args) != len(wanted):
            self.fail(
                node,
                f"{name}() takes {len(wanted)} argument{'' if len(wanted) == 1 else 's'} "
                f"({', '.join(wanted)}), got {len(node.args)}",
            )
        self.calls.append((name, tuple(getattr(arg, "id", None) for arg in node.args)))
        args = [self.operand(arg, depth, f"an argument of {name}()") for arg in node.args]
        for constant in sorted(function.constants):  # the body's names become the caller's
            self.names.setdefault(constant, (node.lineno, node.col_offset))
        tree = substitute(function.body._tree, dict(zip(wanted, args, strict=True)))
        if size(tree, MAX_NODES) > MAX_NODES:
            self.fail(node, f"calling {name}() expands to more than {MAX_NODES} operations")
        return self.fold(node, tree)

    def fold(self, node: ast.AST, tree: Node) -> Node:
        """Compute constant parts now, so that e.g. ``9**9**9**9`` fails when the case loads."""
        try:
            with strict_floats():
                return fold(tree)
        except (ArithmeticError, ValueError) as exc:
            reason = f"overflow: beyond ±{LARGEST}" if "overflow" in str(exc) else str(exc)
            self.fail(node, f"cannot compute {self.snippet(node)!r} ({reason})")
