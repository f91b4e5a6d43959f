"""How a group moves through time: the initial solve, steps in substeps, and the state a
rejected or retried step goes back to.

:class:`GroupStepping` is the stepping half of :class:`app.groups.Group` (which builds the
group's equations and solver); it reads the group's unknowns, internal variables, time scheme
and solver. The time scheme itself (the weights of the levels, accepting a step) is in
app/timeint.py; the time loop that calls these methods is in app/coupling.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.fields import Field, owned
from app.solve_system import SolveReport, System
from app.solvers import NewtonSolver, make_solver
from app.timeint import PREDICTOR_LEVELS, extrapolation_weights

#: The initial solve's Newton budget, in multiples of a step's (solver.newton.max_iterations).
INITIAL_ITERATIONS = 8


class GroupStepping:
    """The stepping methods of a group, and the state they keep: the dt of a solve whose
    history shift is still due, the values saved at a step's start and the solver of the
    fields without a time derivative."""

    def _init_stepping(self) -> None:
        self._initial_solver = None  # the fields without a time derivative, the others fixed
        self._pending: float | None = None  # dt of a solve whose history shift is still due
        self._saved: tuple | None = None

    def initialise(self) -> SolveReport:
        """Solve the fields without a time derivative at the current (start) time, the others
        held at their values, and make that their history too.

        A potential's initial value is only a guess; read before any step (the first output
        row, an event checked at the start) it would describe no state of the system, and a
        Crank-Nicolson step would average it into its first step.
        """
        algebraic = [field for field in self.unknowns if field.spec.name not in self.transient]
        if self.system is None or not algebraic:
            return SolveReport(True, 0, 0, "")
        guesses = [field.function.x.array.copy() for field in algebraic]
        if len(algebraic) == len(self.unknowns):
            report = self.solve()
        else:
            if self._initial_solver is None:
                self._initial_solver = self._algebraic_solver(algebraic)
            self._update_boundary_values()
            report = self._initial_solver.solve()
        for field, guess in zip(algebraic, guesses, strict=True):
            if not report.converged:  # a failed solve leaves no usable values
                field.function.x.array[:] = guess
                continue
            for past in field.history:
                past.x.array[:] = field.function.x.array
        return report

    def _algebraic_solver(self, algebraic: list[Field]) -> Any:
        """A solver of the rows of ``algebraic`` for those fields alone."""
        names = {field.spec.name for field in algebraic}
        rows = [i for i, field in enumerate(self.unknowns) if field.spec.name in names]
        blocks = [self.system.residuals[i] for i in rows]
        # their blocks of the group's Jacobian: the same forms, not differentiated again
        jacobian = [[self.system.jacobian[i][j] for j in rows] for i in rows]
        functions = [field.function for field in algebraic]
        single = algebraic[0].spec.name if len(algebraic) == 1 else None
        system = System(
            functions,
            blocks,
            jacobian,
            [fixed.condition for fixed in self.fixed if fixed.field in names],
            self.system.spd,
            self._static,
            self._modes.get(single),
            self.system.entity_maps,
            [field.spec.units for field in algebraic],
            self.system.laws,
            self.system.hierarchy,
        )
        spec = self._solver_spec
        if spec.preset == "fieldsplit" and single is not None:
            spec = spec.model_copy(update={"preset": "auto"})
        # A step starts from the converged last one; this solve starts from a guess (a cell's
        # potentials at rest), and Newton on exponential kinetics closes an overpotential far
        # from it by about RT/F per iteration: Chen2020's DFN needs 6 iterations at 1C, 20 at
        # 5C and 39 at 10C (the residual falling by e per iteration).
        budget = min(INITIAL_ITERATIONS * spec.newton.max_iterations, 2**31 - 1)
        newton = spec.newton.model_copy(update={"max_iterations": budget})
        spec = spec.model_copy(update={"newton": newton})
        return make_solver(system, spec, f"{self.name}_initial")

    def restart(self) -> None:
        """After a jump in the forcing: the scheme starts again with BDF1, and kept Jacobians
        are assembled again (a stage's control may have changed the system)."""
        self.scheme.restart()
        for solver in (self.solver, self._initial_solver):
            if isinstance(solver, NewtonSolver):
                solver.forget_jacobian()

    def reset(self) -> None:
        """Back to the start time for another run: no history; boundary values evaluated
        again (a constant they read may have a new value)."""
        self.scheme.reset()
        self._pending = None
        if isinstance(self.solver, NewtonSolver):
            self.solver.forget_jacobian()
        for value in self.boundary_values:
            value.update()

    def advance(self, start: float, step: float) -> SolveReport:
        """Solve from ``start`` over ``step`` in the group's substeps. The history shift of the
        last solve is left pending until :meth:`commit`, so outputs read the step's residual."""
        dt = step / self.subcycles  # exact for one substep: a reused operator stays valid
        total = SolveReport(True, 0, 0, "")
        for substep in range(1, self.subcycles + 1):
            self._shift()
            self.scheme.prepare(start + substep * dt, dt)
            self._predict(dt)
            if self.solver is not None:
                report = self.solve()
                total = total.then(report)
                if not report.converged:
                    return total
            for internal in self.internal:  # what the residual assumed, for output and readers
                internal.advance()
            self._pending = dt
        return total

    def _predict(self, dt: float) -> None:
        """Newton's initial guess: with ``predictor = "linear"`` (or ``"quadratic"``), the
        unknowns extrapolated to the step's end by the polynomial through the last two (three)
        accepted levels; through fewer after a restart (the forcing jumped), whose first step
        starts from the last values."""
        spec = self._solver_spec
        if spec is None or spec.newton.predictor == "none":
            return
        scheme = self.scheme
        levels = min(PREDICTOR_LEVELS[spec.newton.predictor], len(scheme.times))
        if scheme.accepted_steps < 1 or levels < 2:
            return
        weights = extrapolation_weights(scheme.time, scheme.times[:levels])
        for field in self.unknowns:
            if len(field.history) >= levels:
                predicted = weights[0] * field.history[0].x.array
                for weight, past in zip(weights[1:], field.history[1:levels], strict=True):
                    predicted += weight * past.x.array
                field.function.x.array[:] = predicted

    def _shift(self) -> None:
        if self._pending is not None:
            for field in [*self.unknowns, *self.internal]:
                field.push_history()
            for law in self.laws:
                law.commit()
            self.scheme.accept(self._pending)
            self._pending = None

    def commit(self) -> None:
        """Make the step final: shift the time history (the internal variables' new values
        become the accepted ones)."""
        self._shift()

    def begin(self) -> None:
        """Remember the state at the start of a step (for retries and iterations)."""
        self._saved = (
            [field.function.x.array.copy() for field in self.unknowns],
            [[past.x.array.copy() for past in field.history] for field in self.unknowns],
            [
                [level.x.array.copy() for level in (field.function, *field.history)]
                for field in self.internal
            ],
            self.scheme.snapshot(),
        )
        self._pending = None

    def rewind(self, keep_iterate: bool = False) -> None:
        """Back to the start of the step, internal variables included; ``keep_iterate`` keeps
        the current values of the unknowns as the next initial guess (fixed-point sweeps)."""
        values, histories, internal, state = self._saved
        if not keep_iterate:
            for field, saved in zip(self.unknowns, values, strict=True):
                field.function.x.array[:] = saved
        for field, saved in zip(self.unknowns, histories, strict=True):
            for past, array in zip(field.history, saved, strict=True):
                past.x.array[:] = array
        for field, saved in zip(self.internal, internal, strict=True):
            for level, array in zip((field.function, *field.history), saved, strict=True):
                level.x.array[:] = array
        for law in self.laws:
            law.rollback()
        self.scheme.rewind_to(state)
        self._pending = None

    def change(self) -> list[tuple[float, float]]:
        """For each unknown, the largest change over the step being taken and its largest
        value (owned dofs of this rank)."""
        changes = []
        for field, before in zip(self.unknowns, self._saved[0], strict=True):
            now = owned(field.function)
            delta = np.abs(now - before[: now.size]).max(initial=0.0)
            changes.append((float(delta), float(np.abs(now).max(initial=0.0))))
        return changes

    def error(self, rtol: float, atol: float) -> tuple[float, int]:
        """Sum of squared scaled local errors of the group's transient fields (owned dofs)
        and their count; (0, 0) while the history is too short for an estimate."""
        weights = self.scheme.predictor_weights()
        if weights is None or self.subcycles > 1:
            return 0.0, 0
        factor = self.scheme.error_factor()
        total, count = 0.0, 0
        for field in self.unknowns:
            if field.spec.name not in self.transient:
                continue
            u = owned(field.function)
            levels = [owned(past) for past in field.history[: len(weights)]]
            predicted = sum(w * level for w, level in zip(weights, levels, strict=True))
            scaled = factor * (u - predicted) / (atol + rtol * np.abs(u))
            total += float(scaled @ scaled)
            count += u.size
        return total, count
