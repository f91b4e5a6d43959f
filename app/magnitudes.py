"""The magnitude of the terms an expression is made of: the scale its round-off is relative to.

A quantity that is zero by cancellation (the reaction of a support that carries nothing, the
stress of a free thermal expansion) comes out as round-off of the terms that cancel, not of the
result: ``sigma = C (eps - alpha dT I)`` is 1e-10 Pa where ``C alpha dT`` is 1e6 Pa. Whether two
such numbers agree (one rank against two) can only be judged against those terms. The
magnitude ``M(e)`` of an expression bounds each of its terms by absolute values, the way a
running error bound does::

    M(a + b) = M(a) + M(b)      M(a b) = M(a) M(b)      M(a / b) = M(a) / |b|
    M(sqrt(a)) = sqrt(M(a))     M(a^p) = M(a)^p (p > 0)  M(c ? a : b) = c ? M(a) : M(b)
    M(terminal) = |terminal|, elementwise (fields, their gradients, coordinates, constants)

and any other function is its absolute value. Tensor expressions keep their shape (each entry
bounded), so ``M(sigma : eps)`` is ``sum_ij M(sigma_ij) |eps_ij|``.
"""

from __future__ import annotations

from typing import Any

import ufl
import ufl.classes as uc
from ufl.algorithms.apply_algebra_lowering import apply_algebra_lowering
from ufl.algorithms.apply_derivatives import apply_derivatives
from ufl.corealg.map_dag import map_expr_dag
from ufl.corealg.multifunction import MultiFunction


def magnitude(expression: Any) -> Any:
    """``M(expression)``: the same shape, every entry a bound of the absolute values of the
    terms that make it up (see the module docstring)."""
    lowered = apply_derivatives(apply_algebra_lowering(ufl.as_ufl(expression)))
    return map_expr_dag(_Magnitude(), lowered)


def magnitude_form(form: ufl.Form) -> ufl.Form:
    """The functional with every integrand replaced by its magnitude: the scale of its value."""
    integrals = [
        integral.reconstruct(integrand=magnitude(integral.integrand()))
        for integral in form.integrals()
    ]
    return ufl.Form(integrals)


def _entrywise_abs(expression: Any) -> Any:
    # Entry by entry with fixed indices: FFCx cannot compile |T_ij| under a component tensor.
    shape = expression.ufl_shape
    if not shape:
        return abs(expression)

    def entries(index: tuple[int, ...]) -> Any:
        if len(index) == len(shape):
            return abs(expression[index])
        return [entries((*index, k)) for k in range(shape[len(index)])]

    return ufl.as_tensor(entries(()))


class _Magnitude(MultiFunction):
    """Post-order: each handler receives the node and the magnitudes of its operands."""

    def expr(self, o: Any, *_: Any) -> Any:  # any function not listed below: |value|
        return _entrywise_abs(o)

    def terminal(self, o: Any) -> Any:
        return _entrywise_abs(o)

    def derivative(self, o: Any, *_: Any) -> Any:  # grad(u) of a field: a terminal's value
        return _entrywise_abs(o)

    def multi_index(self, o: Any) -> Any:
        return o

    def zero(self, o: Any) -> Any:
        return o

    def condition(self, o: Any, *_: Any) -> Any:  # conditions are decided on the values
        return o

    def label(self, o: Any) -> Any:
        return o

    def variable(self, o: Any, expression: Any, _: Any) -> Any:
        return expression

    def sum(self, o: Any, a: Any, b: Any) -> Any:
        return uc.Sum(a, b)

    def product(self, o: Any, a: Any, b: Any) -> Any:
        return uc.Product(a, b)  # not a * b: a repeated index must not be summed twice

    def division(self, o: Any, a: Any, _: Any) -> Any:
        return uc.Division(a, abs(o.ufl_operands[1]))

    def power(self, o: Any, a: Any, _: Any) -> Any:
        exponent = o.ufl_operands[1]
        if isinstance(exponent, uc.RealValue | uc.IntValue) and float(exponent) > 0:
            return uc.Power(a, exponent)
        return _entrywise_abs(o)

    def abs(self, o: Any, a: Any) -> Any:
        return a

    def sqrt(self, o: Any, a: Any) -> Any:
        return ufl.sqrt(a)

    def conditional(self, o: Any, _: Any, a: Any, b: Any) -> Any:
        return uc.Conditional(o.ufl_operands[0], a, b)

    def min_value(self, o: Any, a: Any, b: Any) -> Any:
        return ufl.max_value(a, b)

    max_value = min_value

    def indexed(self, o: Any, a: Any, indices: Any) -> Any:
        return uc.Indexed(a, indices)

    def component_tensor(self, o: Any, a: Any, indices: Any) -> Any:
        return uc.ComponentTensor(a, indices)

    def index_sum(self, o: Any, a: Any, index: Any) -> Any:
        return uc.IndexSum(a, index)

    def list_tensor(self, o: Any, *entries: Any) -> Any:
        return uc.ListTensor(*entries)

    def restricted(self, o: Any, a: Any) -> Any:
        return a(o.side())

    def conj(self, o: Any, a: Any) -> Any:
        return a

    real = conj
