"""An AMG preconditioner kept across Newton iterations and steps (``[solver.newton]
reuse_preconditioner``), set up again when it stops working well."""

from __future__ import annotations

from petsc4py import PETSc


class PreconditionerReuse:
    """An AMG hierarchy kept across Newton iterations (and steps) while it still works.

    Setting up AMG (aggregation, coarse operators, smoother estimates) costs several Krylov
    solves, and a Newton Jacobian changes little between iterations. Before each Newton
    iteration this looks at the last linear solve: after a fresh set-up its iteration count is
    the reference; a reused preconditioner stays while a solve takes at most ``GROWTH`` times
    the reference (+1), else (or after a failed solve) the next solve sets it up again.
    """

    GROWTH = 1.5

    def __init__(self, snes: PETSc.SNES):
        self.ksp = snes.getKSP()
        self.reference: int | None = None
        self.reusing = False
        self.setups = 0
        snes.setUpdate(self._before_iteration)
        # SNES sets the KSP's reuse flag from its own lag when it computes the Jacobian, after
        # the update hook: the verdict is applied again just before the linear solve.
        self.ksp.setPreSolve(lambda ksp, b, x: ksp.getPC().setReusePreconditioner(self.reusing))

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
