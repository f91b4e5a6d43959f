"""An AMG preconditioner kept across Newton iterations and steps (``[solver.newton]
reuse_preconditioner``), set up again when it stops working well."""

from __future__ import annotations

from collections.abc import Callable

from petsc4py import PETSc


class PreconditionerReuse:
    """An AMG hierarchy kept across Newton iterations (and steps) while it still works.

    Setting up AMG (aggregation, coarse operators, smoother estimates) costs several Krylov
    solves, and a Newton Jacobian changes little between iterations. Before each Newton
    iteration this looks at the last linear solve: after a fresh set-up its iteration count is
    the reference; a reused preconditioner stays while a solve takes at most ``GROWTH`` times
    the reference (+1), else (or after a failed solve) the next solve sets it up again.

    A solve with a kept preconditioner stops at that many iterations: one that no longer fits
    the Jacobian (k rising with T, a step far from the last) ran GMRES to its limit of 10,000
    iterations, and Newton failed where a fresh set-up converges in a few. :meth:`solve` then
    runs Newton on from its iterate with a fresh set-up.
    """

    GROWTH = 1.5

    def __init__(self, snes: PETSc.SNES):
        self.ksp = snes.getKSP()
        self.reference: int | None = None
        self.reusing = False
        self.setups = 0
        self._max_it: int | None = None  # the KSP's own limit, for solves set up afresh
        snes.setUpdate(self._before_iteration)
        # SNES sets the KSP's reuse flag from its own lag when it computes the Jacobian, after
        # the update hook: the verdict is applied again just before the linear solve.
        self.ksp.setPreSolve(self._before_solve)

    def solve(self, snes: PETSc.SNES, newton: Callable[[], None]) -> tuple[int, int, list[float]]:
        """Run ``newton`` (SNES's solve) and, while it stops on a failed solve with a kept
        preconditioner, run it on from its iterate with a fresh set-up, to the first run's
        tolerances (its residual norm is the reference of rtol and the divergence test).

        Returns:
            Newton iterations, Krylov iterations (the failed solves' too, which SNES does not
            count) and the residual norms of all the runs; SNES's reason is the last run's.
        """
        newton()
        iterations, linear, norms = newton_counts(snes)
        rtol, _, _, max_it = snes.getTolerances()
        divergence = snes.getDivergenceTolerance()
        while self._kept_one_failed(snes) and iterations < max_it:
            linear += self.ksp.getIterationNumber()
            self._fresh()
            scale = norms[0] / norms[-1]
            snes.setTolerances(rtol=rtol * scale, max_it=max_it - iterations)
            snes.setDivergenceTolerance(divergence * scale if divergence > 0 else divergence)
            try:
                newton()
            finally:
                snes.setTolerances(rtol=rtol, max_it=max_it)
                snes.setDivergenceTolerance(divergence)
            more_iterations, more_linear, more_norms = newton_counts(snes)
            iterations, linear = iterations + more_iterations, linear + more_linear
            norms += more_norms[1:]  # its first is the last of the run before
        return iterations, linear, norms

    def _kept_one_failed(self, snes: PETSc.SNES) -> bool:
        stopped = snes.getConvergedReason() == PETSc.SNES.ConvergedReason.DIVERGED_LINEAR_SOLVE
        return stopped and self.reusing and self.ksp.getConvergedReason() < 0

    def _before_solve(self, ksp: PETSc.KSP, b: PETSc.Vec, x: PETSc.Vec) -> None:
        if self._max_it is None:
            self._max_it = ksp.getTolerances()[3]
        ksp.getPC().setReusePreconditioner(self.reusing)
        limit = self._max_it
        if self.reusing:
            limit = min(int(self.GROWTH * self.reference) + 1, limit)
        ksp.setTolerances(max_it=limit)

    def _before_iteration(self, snes: PETSc.SNES, iteration: int) -> None:
        if iteration == 0:  # the last solve of the previous Newton solve was judged after it
            if self.reference is None:
                self._fresh()
            return
        self._judge_last_solve()

    def after_solve(self, converged: bool) -> None:
        """Judge the Newton solve's last linear solve; a failed Newton solve (its step is
        retried) makes the next one start with a fresh set-up."""
        if converged:
            self._judge_last_solve()
        else:
            self.reference = None

    def _judge_last_solve(self) -> None:
        used = self.ksp.getIterationNumber()
        if not self.reusing:
            self.reference = used
            self._reuse(True)
        elif self.ksp.getConvergedReason() < 0 or used > self.GROWTH * self.reference + 1:
            self._fresh()

    def _fresh(self) -> None:
        self._reuse(False)
        self.setups += 1

    def _reuse(self, reuse: bool) -> None:
        self.reusing = reuse
        self.ksp.getPC().setReusePreconditioner(reuse)


def newton_counts(snes: PETSc.SNES) -> tuple[int, int, list[float]]:
    """Newton iterations, Krylov iterations and residual norms of SNES's last solve."""
    norms = [float(norm) for norm in snes.getConvergenceHistory()[0]]
    return snes.getIterationNumber(), snes.getLinearSolveIterations(), norms
