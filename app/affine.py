"""Forms affine in the functions that change during a run, evaluated from stored pieces.

A linear solve's right-hand side and most quantities are affine in the functions that change
from step to step (the earlier time levels, the solution) with coefficients that do not (material
properties, the mesh). Assembling them over all cells at every step repeats the same work, which
a hand-written script does too. Here a form is split once into

* for a linear form ``L(f_1, ..., f_m; v)``: the matrices ``B_k = dL/df_k`` and the rest
  ``L(0, ..., 0; v)``, so that ``L = sum_k B_k f_k + L(0)`` costs matrix-vector products
  (:class:`AffineVector`; the right-hand side of :class:`app.solvers.LinearSolver`);
* for a scalar form ``Q(f_1, ..., f_m)``: the vectors ``g_k = dQ/df_k`` and the rest, so that
  ``Q = sum_k g_k . f_k + Q(0)`` costs dot products (:class:`AffineScalar`; quantities and
  reactions, app/quantities.py).

A function splits off when the derivative reads no changing function (the form is affine in it
with a fixed factor); one that does not (``f**2``, ``f*g`` with both changing) stays in the rest,
which is then assembled every time. Each stored piece is assembled again only when its data
change: the value of a constant it reads (a new dt, a protocol setting). Functions are
"changing" unless they are in the simulation's set of static functions (piecewise properties).

:func:`reference_path` says whether a run uses the stored pieces (``[solver] stored_products``):
``false`` assembles every form over all cells each time, the path the stored pieces are tested
against.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import ufl
import ufl.classes as uc
from dolfinx import fem, la
from dolfinx.fem import petsc as fem_petsc
from mpi4py import MPI
from petsc4py import PETSc
from ufl.algorithms.analysis import extract_coefficients, extract_constants
from ufl.corealg.traversal import unique_post_traversal

from app.fields import owned_size

WHOLE_EVALUATIONS = 2  # evaluations of a scalar form assembled whole before it is split


class DataOf:
    """The data a stored piece was assembled with, to tell when it must be assembled again.

    Args:
        form: The UFL form of the piece (its constants are watched).
        changing: The piece also reads a function that changes: stale every time.
        values: Further constants or functions (Python or C++ objects, as a DirichletBC holds
            its value) whose values are watched.
        comm: Where the verdict must agree: functions' values are compared on each rank's
            entries, and one rank's change makes the piece stale on all.
    """

    def __init__(self, form: Any = None, changing: bool = False, values: Iterable = (), comm=None):
        self._watched = list(extract_constants(form)) if form is not None else []
        self._watched += list(values)
        self._comm = comm
        self.changing = changing
        self._values: list[np.ndarray] | None = None

    def add_constants(self, constants: Iterable[Any]) -> None:
        self._watched += list(constants)

    def changed(self) -> bool:
        """Whether the data differ from those of the last call (always the first time)."""
        values = [_value_of(item) for item in self._watched]
        stale = self.changing or self._values is None
        stale = stale or any(
            not np.array_equal(a, b) for a, b in zip(values, self._values, strict=True)
        )
        self._values = values
        if self._comm is not None and self._comm.size > 1:  # no collective call for one rank
            stale = bool(self._comm.allreduce(stale, op=MPI.LOR))
        return stale


def _value_of(item: Any) -> np.ndarray:
    """A copy of the value of a constant or of the entries of a function."""
    return np.array(item.x.array if hasattr(item, "x") else item.value, copy=True)


def _splittable(function: Any) -> bool:
    """A function a form may be differentiated by into an assembled vector or matrix: a
    finite-element function with shape functions (not a global value, not values at
    quadrature points)."""
    if not isinstance(function, fem.Function):
        return False
    element = function.function_space.ufl_element()
    return not (element.is_quadrature or element.is_real)


def split(form: ufl.Form, static: set[Any], direction: Any) -> tuple[list, ufl.Form | None, bool]:
    """The affine parts of ``form`` in its changing functions.

    Args:
        form: A scalar or linear form.
        static: Functions that never change.
        direction: ``direction(f)`` is the argument to differentiate by f in (a test function
            for a scalar form, a trial function for a linear one).

    Returns:
        ``(terms, rest, changing)``: pairs (derivative form, function) whose factors read no
        changing function; the rest (the form with those functions set to zero; None when it
        vanishes); whether the rest still reads a changing function.
    """
    candidates = [f for f in extract_coefficients(form) if f not in static]
    terms, zeros = [], {}
    for function in candidates:
        if not _splittable(function) or surely_not_affine(form, function, static):
            continue
        derivative = ufl.derivative(form, function, direction(function))
        derivative = ufl.algorithms.expand_derivatives(derivative)
        if not derivative.empty() and set(extract_coefficients(derivative)) - static:
            continue  # not affine in it, or its factor changes
        if not derivative.empty():
            terms.append((derivative, function))
        zeros[function] = ufl.zero(*function.ufl_shape)
    rest = ufl.replace(form, zeros) if zeros else form
    rest = None if rest.empty() else rest
    changing = rest is not None and bool(set(extract_coefficients(rest)) - static)
    return terms, rest, changing


# Operators linear in each operand; those whose result is a product of their operands; and
# those nonlinear in every operand (a condition is a step function of its operands).
_LINEAR = (
    uc.Sum, uc.Indexed, uc.ComponentTensor, uc.IndexSum, uc.Grad, uc.Div, uc.NablaGrad,
    uc.ReferenceGrad, uc.ReferenceValue, uc.Restricted, uc.ListTensor, uc.Conj, uc.Real,
    uc.Imag, uc.Transposed, uc.Trace, uc.Sym, uc.Skew, uc.Deviatoric, uc.Variable,
)  # fmt: skip
_PRODUCTS = (uc.Product, uc.Inner, uc.Dot, uc.Outer, uc.Cross)
_NONLINEAR = (
    uc.MathFunction, uc.Abs, uc.MinValue, uc.MaxValue, uc.Atan2, uc.BesselFunction,
    uc.Condition, uc.Determinant, uc.Inverse, uc.Cofactor,
)  # fmt: skip
_NOT_AFFINE = 2  # a degree: the function enters nonlinearly, or times a changing factor


def surely_not_affine(form: ufl.Form, function: Any, static: set[Any]) -> bool:
    """Whether ``form`` is certainly not affine in ``function`` with a fixed factor -- its
    derivative would read a changing function -- read off the expression in one pass instead
    of differentiating it (the derivative of a Butler-Volmer current, 10-50 ms, was all that
    most quantities of a DFN spent before they were found not to split). False when unsure
    (an operator not listed above): the derivative then decides."""
    try:
        return any(
            _degrees(integral.integrand(), function, static)[0] >= _NOT_AFFINE
            for integral in form.integrals()
        )
    except _Unsure:
        return False


class _Unsure(Exception):
    pass


def _degrees(expression: Any, function: Any, static: set[Any]) -> tuple[int, bool]:
    """(degree in ``function``, capped at _NOT_AFFINE; whether it reads a changing function)."""
    found: dict[Any, tuple[int, bool]] = {}
    for node in unique_post_traversal(expression):
        if isinstance(node, uc.Terminal):
            changing = isinstance(node, uc.Coefficient) and node not in static
            found[node] = (int(node is function), changing)
            continue
        parts = [found[operand] for operand in node.ufl_operands]
        found[node] = _combine(node, parts)
    return found[expression]


def _combine(node: Any, parts: list[tuple[int, bool]]) -> tuple[int, bool]:
    degrees = [degree for degree, _ in parts]
    changing = any(reads for _, reads in parts)
    if isinstance(node, _LINEAR):
        return max(degrees), changing
    if isinstance(node, (*_PRODUCTS, uc.Division, uc.Conditional, uc.Power)):
        return _factored(node, parts), changing
    if isinstance(node, _NONLINEAR):
        return (_NOT_AFFINE if max(degrees) else 0), changing
    raise _Unsure


def _factored(node: Any, parts: list[tuple[int, bool]]) -> int:
    """The degree of a product-like node: the function's factor must not change; a divisor, a
    condition and an exponent must not depend on it (nor on a changing function where it
    multiplies the function)."""
    if isinstance(node, uc.Division):
        (value, _), (divisor, divisor_reads) = parts
        return _NOT_AFFINE if divisor or (value and divisor_reads) else value
    if isinstance(node, uc.Conditional):
        (condition, condition_reads), *branches = parts
        value = max(degree for degree, _ in branches)
        return _NOT_AFFINE if condition or (value and condition_reads) else value
    if isinstance(node, uc.Power):
        (base, _), (exponent, _) = parts
        power = node.ufl_operands[1]
        if isinstance(power, uc.ScalarValue) and power.value() == 1:
            return base
        return _NOT_AFFINE if base or exponent else 0
    for index, (degree, _) in enumerate(parts):
        if degree and any(reads for other, (_, reads) in enumerate(parts) if other != index):
            return _NOT_AFFINE
    return min(sum(degree for degree, _ in parts), _NOT_AFFINE)


class AffineScalar:
    """A scalar form evaluated as ``sum_k g_k . f_k + Q(0)`` (see the module docstring).

    The pieces are compiled and assembled at the third evaluation: a form evaluated once or
    twice (a steady run, a run that writes its quantities at the start and the end) costs one
    assembly per evaluation and no compilation, which would cost more than it saves.

    Args:
        form: The scalar form.
        static: Functions that never change.
        entity_maps: Maps between the meshes of fields on regions.
        comm: The communicator the value is summed over.
        stored: Use the stored pieces (False: assemble the form every time).
    """

    def __init__(
        self, form: ufl.Form, static: set[Any], entity_maps: list, comm: Any, stored: bool = True
    ):
        self._form, self._static, self._maps, self._comm = form, static, entity_maps, comm
        self._stored = stored
        self._whole: fem.Form | None = None
        self._evaluations = 0
        self._pieces: list[tuple[fem.Form, la.Vector | None, fem.Function, DataOf]] | None = None
        self._rest: tuple[fem.Form, DataOf] | None = None
        self._rest_value = 0.0

    def local(self) -> float:
        """This rank's part of the value (sum over ranks: the value)."""
        self._evaluations += 1
        if not self._stored or self._evaluations <= WHOLE_EVALUATIONS:
            if self._whole is None:
                self._whole = fem.form(self._form, entity_maps=self._maps or None)
            return fem.assemble_scalar(self._whole)
        if self._pieces is None:
            self._build()
        total = 0.0
        for index, (compiled, vector, function, data) in enumerate(self._pieces):
            if vector is None or data.changed():
                vector = fem.assemble_vector(compiled)
                vector.scatter_reverse(la.InsertMode.add)
                self._pieces[index] = (compiled, vector, function, data)
            size = owned_size(function.function_space)
            total += float(vector.array[:size] @ function.x.array[:size])
        if self._rest is not None:
            compiled, data = self._rest
            if data.changed():
                self._rest_value = fem.assemble_scalar(compiled)
            total += self._rest_value
        return total

    def value(self) -> float:
        return float(self._comm.allreduce(self.local(), op=MPI.SUM))

    def restart(self) -> None:
        """Count evaluations from zero again: a run of a reused simulation then takes the same
        path (whole, then pieces) as a fresh build, and gives its values bit for bit."""
        self._evaluations = 0

    def _build(self) -> None:
        terms, rest, changing = split(
            self._form, self._static, lambda f: ufl.TestFunction(f.function_space)
        )
        maps = self._maps or None
        self._pieces = []
        for derivative, function in terms:
            compiled = fem.form(derivative, entity_maps=maps)
            self._pieces.append((compiled, None, function, DataOf(derivative)))
        if rest is not None:
            self._rest = (fem.form(rest, entity_maps=maps), DataOf(rest, changing))


class AffineVector:
    """A linear form assembled as ``sum_k B_k f_k + L(0)`` into a PETSc vector.

    Args:
        form: The linear form L (one test function).
        static: Functions that never change.
        entity_maps: Maps between the meshes of fields on regions.
        operator: The system matrix of the same row and column space, or None. A square piece
            whose integrals the operator's sparsity pattern holds shares that pattern (the
            memory of its column indices).
        operator_form: The UFL bilinear form of ``operator``.
    """

    def __init__(
        self,
        form: ufl.Form,
        static: set[Any],
        entity_maps: list,
        operator: PETSc.Mat | None = None,
        operator_form: ufl.Form | None = None,
    ):
        terms, rest, changing = split(form, static, lambda f: ufl.TrialFunction(f.function_space))
        maps = entity_maps or None
        self.products: list[tuple[fem.Form, PETSc.Mat, fem.Function, DataOf]] = []
        test_space = form.arguments()[0].ufl_function_space()
        for derivative, function in terms:
            compiled = fem.form(derivative, entity_maps=maps)
            shared = (
                operator is not None
                and not maps
                and function.function_space == test_space
                and within_pattern(derivative, operator_form)
            )
            if shared:
                matrix = operator.duplicate(PETSc.Mat.DuplicateOption.SHARE_NONZERO_PATTERN)
            else:
                matrix = fem_petsc.create_matrix(compiled)
            self.products.append((compiled, matrix, function, DataOf(derivative)))
        self.rest = None if rest is None else fem.form(rest, entity_maps=maps)
        self.rest_data = DataOf(rest, changing)

    def add_products(self, b: PETSc.Vec) -> None:
        """``b += sum_k B_k f_k`` (owned entries), assembling each B_k again if its data
        changed."""
        for compiled, matrix, function, data in self.products:
            if data.changed():
                matrix.zeroEntries()
                fem_petsc.assemble_matrix(matrix, compiled)
                matrix.assemble()
            matrix.multAdd(function.x.petsc_vec, b, b)

    def destroy(self) -> None:
        for _, matrix, _, _ in self.products:
            matrix.destroy()


def within_pattern(form: ufl.Form, operator: ufl.Form | None) -> bool:
    """Whether the sparsity pattern of ``operator`` holds that of ``form`` (on the same
    spaces): each integral of ``form`` is one of the operator's (type and subdomain), or a cell
    or exterior-facet integral when the operator integrates over every cell (which couples the
    dofs of every cell)."""
    if operator is None:
        return False
    integrals = {(i.integral_type(), str(i.subdomain_id())) for i in operator.integrals()}
    everywhere = ("cell", "everywhere") in integrals
    return all(
        (i.integral_type(), str(i.subdomain_id())) in integrals
        or (everywhere and i.integral_type() in ("cell", "exterior_facet"))
        for i in form.integrals()
    )


class StoredRightHandSide:
    """A single field's right-hand side from stored pieces: b = c + sum_k B_k f_k, where
    c = L(0) + lifting of the boundary values is kept while its data, the operator and the
    boundary values stay the same."""

    def __init__(self, form: ufl.Form, system: Any, problem: Any):
        self._problem = problem
        self._affine = AffineVector(
            form, system.static, system.entity_maps, problem.A, system.jacobian[0][0]
        )
        self._data = self._affine.rest_data
        comm = problem.A.getComm().tompi4py()
        self._boundary_values = DataOf(values=[bc.g for bc in problem.bcs], comm=comm)
        self._constant = problem.b.duplicate()

    def assemble(self, b: PETSc.Vec, operator_changed: bool) -> None:
        problem, constant = self._problem, self._constant
        stale = [self._data.changed(), self._boundary_values.changed(), operator_changed]
        if any(stale):
            with constant.localForm() as local:
                local.set(0.0)
            if self._affine.rest is not None:
                fem_petsc.assemble_vector(constant, self._affine.rest)
            fem_petsc.apply_lifting(constant, [problem.a], bcs=[problem.bcs])
            constant.ghostUpdate(PETSc.InsertMode.ADD, PETSc.ScatterMode.REVERSE)
        constant.copy(b)
        self._affine.add_products(b)
        fem_petsc.set_bc(b, problem.bcs)

    def destroy(self) -> None:
        self._affine.destroy()
        self._constant.destroy()
