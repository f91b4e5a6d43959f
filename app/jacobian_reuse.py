"""A Newton Jacobian and its factorisation kept across iterations and time steps (a modified
Newton method, as IDA and CVODE do it): ``[solver.newton] jacobian_reuse = true``.

A full Newton iteration assembles the Jacobian and factorises it; an iteration with a kept
Jacobian costs a residual and a back-substitution. The Jacobian of a time step changes little
from one iterate to the next, and from one step to the next while the step size stays, so
the kept one still contracts the error quickly. It is assembled again (and so factorised again:
PETSc sets up a preconditioner only when its operator changed) before an iteration when

- the error contracted poorly in the last iteration (by less than ``POOR_RATE`` per
  iteration, the worst field; measured on the updates of successive kept corrections): the
  iterate is then far from the solution, and the rest of that solve is full Newton;
- the scheme's coefficient of the new level, alpha/dt, has changed by more than
  ``COEFFICIENT_CHANGE`` relative since the assembly (IDA's test on cj);
- any other constant of the Jacobian changed (a protocol switched the terminal from current to
  voltage control: another system);
- the last solve failed, or the time loop restarted the scheme (a protocol stage or an event);
- the Jacobian was assembled ``MAX_SOLVES`` Newton solves ago.

A solve that fails with a kept Jacobian is tried once more from its initial guess with fresh
Jacobians before it counts as failed (a step is not cut for a stale matrix).

Convergence stays as strict as with full Newton. After a correction made with a kept
Jacobian, the field test of app/newton.py (every field's residual scaled by the Jacobian's
diagonal below ``field_rtol`` times the field's scale) must hold with the scaled residual
multiplied by ``max(1, c_assembled/c_now)/(1 - rate)``, c = alpha/dt (a diagonal assembled with
a larger coefficient than the step's own is larger, and makes corrections look smaller; the
error left by a linear contraction is the next correction over 1 - rate), and the largest
update of every field must pass IDA's rate-corrected test, ``rate/(1 - rate) * |du| <=
field_rtol * S``: a scaled residual underestimates the error of smooth modes, which a slow
contraction leaves behind. The rate is the largest ratio of successive updates of a field in
this solve; for its first kept correction, the last rate measured since the assembly, else
``POOR_RATE`` -- never "one iteration and done".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from petsc4py import PETSc

POOR_RATE = 0.2
COEFFICIENT_CHANGE = 0.25
MAX_SOLVES = 20


class JacobianReuse:
    """Decides, before each Newton iteration of one SNES, whether the Jacobian is assembled
    again; and how much stricter the field test must be with the Jacobian it kept.

    Args:
        snes: The solver (its Jacobian callback is wrapped).
        constants: The constants of the Jacobian forms (C++ objects: an alias of a constant
            on another mesh shares its C++ object, app/domain_forms.py).
        scheme_constants: Those the time scheme sets at every step (t, dt, the BDF
            coefficients; C++ objects): they change the Jacobian only through
            ``coefficient``, or smoothly (an explicit time dependence), which the contraction
            rate watches.
        coefficient: alpha/dt of the step being solved (None: no time derivative).
    """

    def __init__(
        self,
        snes: PETSc.SNES,
        constants: Sequence[Any],
        scheme_constants: Sequence[Any] = (),
        coefficient: Callable[[], float] | None = None,
    ):
        scheme = {id(constant) for constant in scheme_constants}
        self._others = [c for c in constants if id(c) not in scheme]
        self._coefficient = coefficient
        self._assembled_with: list[np.ndarray] | None = None  # the others' values then
        self._assembled_coefficient = 0.0
        self.assemblies = 0  # Jacobians assembled and factorised (for tests and reports)
        self.poor_contractions = 0  # kept Jacobians given up for their contraction
        self._refresh = True  # assemble before the next iteration
        self._full_newton = False  # assemble before every iteration of this solve
        self._solves = 0  # Newton solves since the last assembly
        self.rate = 0.0  # the last contraction rate measured with a kept Jacobian
        self.kept = False  # the last correction was made with a Jacobian of an earlier iterate
        self.used_kept = False  # some correction of this solve was
        self.kept_iterations = 0  # of this solve
        self._previous: np.ndarray | None = None  # the last kept correction, by field
        matrix, preconditioner, (compute, args, kargs) = snes.getJacobian()

        def jacobian(solver: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
            if self._must_assemble():
                compute(solver, x, J, P, *args, **kargs)
                self._assembled_with = [np.array(c.value) for c in self._others]
                self._assembled_coefficient = self._coefficient_now()
                self.assemblies += 1
                self._refresh, self._solves, self.kept, self.rate = False, 0, False, 0.0
            else:  # J untouched: the factorisation of its last assembly is used again
                self.kept = self.used_kept = True
                self.kept_iterations += 1

        snes.setJacobian(jacobian, matrix, preconditioner)

    def _coefficient_now(self) -> float:
        return 0.0 if self._coefficient is None else float(self._coefficient())

    def _must_assemble(self) -> bool:
        if self._refresh or self._full_newton or self._assembled_with is None:
            return True
        if any(
            not np.array_equal(c.value, value)
            for c, value in zip(self._others, self._assembled_with, strict=True)
        ):
            return True
        return self._coefficient_changed()

    def _coefficient_changed(self) -> bool:
        now, then = self._coefficient_now(), self._assembled_coefficient
        if then == 0.0:
            return now != 0.0
        return abs(now / then - 1.0) > COEFFICIENT_CHANGE

    def solve(
        self, newton: Callable[[], tuple[int, Any]], restore: Callable[[], None]
    ) -> tuple[int, Any]:
        """Run ``newton`` (SNES's reason first); if it fails having used a kept Jacobian,
        ``restore`` the initial guess and run it again as full Newton."""
        self._begin_solve()
        result = newton()
        if result[0] <= 0 and self.used_kept:
            restore()
            self.invalidate()
            self._begin_solve()
            self._full_newton = True
            result = newton()
        return result

    def _begin_solve(self) -> None:
        """Before a Newton solve: an old Jacobian is assembled again."""
        self._solves += 1
        self._refresh |= self._solves > MAX_SOLVES
        self._previous, self.kept, self.used_kept = None, False, False
        self._full_newton = False
        self.kept_iterations = 0  # of this solve

    def end_solve(self, converged: bool) -> None:
        """After a Newton solve: a failure makes the next solve start from a fresh Jacobian."""
        if not converged:
            self.invalidate()

    def invalidate(self) -> None:
        """The next iteration assembles the Jacobian (the system changed: a protocol stage,
        an event, a failed solve)."""
        self._refresh = True
        self.rate = 0.0

    def accepts(
        self, iteration: int, corrections: np.ndarray, updates: np.ndarray, tolerances: np.ndarray
    ) -> bool:
        """Whether the iterate passes the field test: per field, its scaled residual
        ``corrections`` (and after a correction with a kept Jacobian, also its last
        ``updates``, largest absolute values) against ``tolerances``. Records the contraction
        and asks for a fresh Jacobian when it is poor."""
        if iteration == 0 or not self.kept:  # Newton's own test (app/newton.py)
            self._previous = None
            return bool(np.all(corrections <= tolerances))
        previous, self._previous = self._previous, updates
        if previous is not None:
            # a converged field's ratio is round-off; a field without update has none
            measured = (previous > tolerances) & (previous > 0)
            ratios = updates[measured] / previous[measured]
            self.rate = float(np.nan_to_num(ratios, nan=np.inf).max(initial=0.0))
            if self.rate > POOR_RATE:  # far from the solution: full Newton to the end
                self._refresh = self._full_newton = True
                self.poor_contractions += 1
                return False
        # the first kept correction of a solve: the last rate measured, else the worst allowed
        rate = self.rate if self.rate > 0 else POOR_RATE
        now = self._coefficient_now()
        diagonal = max(1.0, self._assembled_coefficient / now) if now > 0 else 1.0
        residual_left = corrections * diagonal / (1.0 - rate)
        update_left = updates * rate / (1.0 - rate)
        return bool(np.all(residual_left <= tolerances) and np.all(update_left <= tolerances))


def install_jacobian_reuse(problem: Any, test: Any, scheme: Any) -> JacobianReuse:
    """Modified Newton on the problem's SNES, judged by its field test (app/newton.py), with
    alpha/dt read from the group's time scheme (None: no time derivative)."""
    reuse = JacobianReuse(
        problem.solver,
        jacobian_constants(problem.J),
        () if scheme is None else [c._cpp_object for c in scheme.constants()],
        None if scheme is None else scheme.new_level_coefficient,
    )
    test.reuse = reuse
    return reuse


def jacobian_constants(jacobian: Any) -> list[Any]:
    """The constants of a Jacobian form, or of a block of them, each once."""
    blocks = jacobian if isinstance(jacobian, Sequence) else [[jacobian]]
    found = {}
    for row in blocks:
        for form in row if isinstance(row, Sequence) else [row]:
            for constant in [] if form is None else form._cpp_object.constants:
                found.setdefault(id(constant), constant)
    return list(found.values())
