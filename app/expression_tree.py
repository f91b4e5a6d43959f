"""The parsed form of case-file expressions and its interpreters (numpy and UFL).

:mod:`app.expressions` reads text into trees of :class:`Node` (and checks it); this module folds
constant parts, substitutes names, and evaluates a tree with numpy or builds it in UFL.
"""

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import reduce
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import ufl.core.expr

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


@dataclass(frozen=True, slots=True)
class Node:
    """A node of the parsed tree.

    ``kind`` is one of num (``value`` the float), var (``value`` the name), neg, arith (a left
    fold of ``args`` with the operators in ``value``, so a long flat sum is one node rather than
    a deep chain), compare (``args`` compared pairwise by the operators in ``value``, all of
    which must hold), and, or, not, if (test, body, orelse) and call (``value`` the function).
    """

    kind: str
    args: tuple["Node", ...] = ()
    value: object = None

    @property
    def is_boolean(self) -> bool:
        return self.kind in ("compare", "and", "or", "not")


# numpy raises (rather than warns) on division by zero, overflow and invalid values.
def strict_floats() -> np.errstate:
    return np.errstate(divide="raise", over="raise", invalid="raise", under="ignore")


# numpy scalars and arrays follow the operators and strict_floats; UFL overloads all but ==, !=.
_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_OPERATORS |= {"**": operator.pow, "<": operator.lt, "<=": operator.le, ">": operator.gt}
_OPERATORS |= {">=": operator.ge, "==": operator.eq, "!=": operator.ne}
_NUMPY_FUNCTIONS = {name: getattr(np, name, None) for name in FUNCTIONS} | {
    **{name: getattr(np, "arc" + name[1:]) for name in ("asin", "acos", "atan", "atan2")},
    "erf": np.vectorize(math.erf, otypes=[float]),  # scipy is not a runtime dependency
    "min": np.minimum,
    "max": np.maximum,
}


def _has_vars(tree: Node) -> bool:
    return tree.kind == "var" or any(_has_vars(child) for child in tree.args)


def variables(tree: Node) -> frozenset[str]:
    """The names ``tree`` reads (after defined functions' bodies replaced their calls)."""
    if tree.kind == "var":
        return frozenset((tree.value,))
    return frozenset().union(*(variables(child) for child in tree.args))


def fold(tree: Node) -> Node:
    """``tree`` with constant numeric parts replaced by their value (under strict_floats)."""
    if tree.kind in ("num", "var") or tree.is_boolean:
        return tree
    return tree if _has_vars(tree) else Node("num", value=float(evaluate_tree(tree, {})))


def substitute(tree: Node, values: Mapping[str, Node]) -> Node:
    """``tree`` with the names in ``values`` replaced by those trees, then folded."""
    if tree.kind == "var":
        return values.get(tree.value, tree)
    if not values or not tree.args:
        return tree
    return fold(replace(tree, args=tuple(substitute(child, values) for child in tree.args)))


def size(tree: Node, limit: int) -> int:
    """Nodes of ``tree`` counted with repetition (what building it costs), up to ``limit`` + 1."""
    count, pending = 0, [tree]
    while pending and count <= limit:
        node = pending.pop()
        count += 1
        pending.extend(node.args)
    return count


Values = np.generic | np.ndarray


def within(tree: Node, tol: float) -> Node:
    """``tree`` with ``a == b`` read as ``|a - b| <= tol``, ``a != b`` as ``|a - b| > tol``,
    ``a <= b`` as ``a - b <= tol`` and ``a >= b`` as ``a - b >= -tol``."""
    args = tuple(within(arg, tol) for arg in tree.args)
    if tree.kind != "compare":
        return replace(tree, args=args)
    pairs = []
    for op, a, b in zip(tree.value, args, args[1:], strict=False):
        gap = Node("arith", (a, b), ("-",))
        distance = Node("call", (gap,), "abs")
        loosened = {"==": (distance, "<=", tol), "!=": (distance, ">", tol)}
        loosened |= {"<=": (gap, "<=", tol), ">=": (gap, ">=", -tol)}
        left, op, bound = loosened.get(op, (a, op, None))
        right = b if bound is None else Node("num", value=bound)
        pairs.append(Node("compare", (left, right), (op,)))
    return pairs[0] if len(pairs) == 1 else Node("and", tuple(pairs))


def evaluate_tree(tree: Node, env: Mapping[str, Values]) -> Values:
    """The numpy value of ``tree``; arrays in ``env`` are 1-D and of one length."""
    args = tree.args
    match tree.kind:
        case "num":
            return np.float64(tree.value)
        case "var":
            return env[tree.value]
        case "neg":
            return -evaluate_tree(args[0], env)
        case "arith":
            value = evaluate_tree(args[0], env)
            for op, arg in zip(tree.value, args[1:], strict=True):
                value = _OPERATORS[op](value, evaluate_tree(arg, env))
            return value
        case "compare":
            values = [evaluate_tree(arg, env) for arg in args]
            pairs = zip(tree.value, values, values[1:], strict=False)
            return reduce(np.logical_and, (_OPERATORS[op](a, b) for op, a, b in pairs))
        case "not":
            return np.logical_not(evaluate_tree(args[0], env))
        case "and" | "or":
            value = evaluate_tree(args[0], env)
            for arg in args[1:]:  # short-circuit: evaluate only where still undecided
                undecided = value if tree.kind == "and" else np.logical_not(value)
                value = _select(undecided, arg, value, env, bool)
            return value
        case "if":
            return _select(evaluate_tree(args[0], env), args[1], args[2], env, float)
        case "call":
            function = _NUMPY_FUNCTIONS[tree.value]
            values = [evaluate_tree(arg, env) for arg in args]
            return function(values[0]) if len(values) == 1 else reduce(function, values)
    raise AssertionError(f"unknown node kind {tree.kind!r}")


def _select(mask, chosen: Node, otherwise, env: Mapping, dtype: type):
    """``chosen`` evaluated where ``mask`` holds, ``otherwise`` (a node or a value) elsewhere."""
    if np.ndim(mask) == 0:
        branch = chosen if mask else otherwise
        return evaluate_tree(branch, env) if isinstance(branch, Node) else branch
    result = np.empty(mask.shape, dtype=dtype)
    for branch, where in ((chosen, mask), (otherwise, np.logical_not(mask))):
        if not isinstance(branch, Node):
            result[where] = branch[where] if np.ndim(branch) else branch
        elif where.any():  # a branch taken nowhere is not evaluated, so it cannot raise
            part = {name: v[where] if np.ndim(v) else v for name, v in env.items()}
            result[where] = evaluate_tree(branch, part)
    return result


def tree_to_ufl(tree: Node, exprs: Mapping[str, "ufl.core.expr.Expr"]) -> "ufl.core.expr.Expr":
    import ufl

    args = [tree_to_ufl(arg, exprs) for arg in tree.args]
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
