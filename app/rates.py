"""Rates at an instant: du/dt of a group's transient fields, from the state alone.

A flow through a fixed-value boundary is the reaction of the discrete equations there (see
app/quantities.py): the residual of the field's row, time terms included, summed over the
boundary's dofs. After a BDF step the step's residual is that row at the new time level. After a
Crank-Nicolson step it is the average over the step, so a flow written at the step's end would be
half a step late (first order in dt); and the row at the start time follows no step at all.
Those rows use the semi-discrete equations at the row's time instead::

    C(u) w + F(u, t) = 0    on the free dofs,         w = dg/dt    on the fixed ones,

solved for the rate w = du/dt with the state u frozen; the reaction is C w + F on the fixed dofs.
It is exact for the semi-discrete problem, so as accurate in time as u itself, at every row:
the first after the start, after a breakpoint or a protocol stage change, at any dt.

The system is linear in w, with the capacity (mass) matrix as operator. Scaled by its diagonal,
a mass matrix has a condition number bounded under refinement (at most d + 2 for P1 simplices in
d dimensions), so Jacobi-preconditioned CG reaches round-off in a few tens of iterations at any
size, each a matrix-vector product, with no factorisation to set up (ILU(0) and GMRES's
orthogonalisation cost more than the whole CG solve; a direct factorisation of a 3D mass matrix
costs more than a run's steps). CG needs a symmetric operator: every time term a scalar
capacity (C du/dt); a storage of an amount that reads several fields couples their rates
unsymmetrically, and takes GMRES with the same preconditioner.

The system is differentiated and its solver set up on first use, so runs that report no
reaction never build them. Under BDF the
rates serve only rows that follow no step (the first, or an event checked at a stage's start),
so a large system releases its matrix after each use rather than hold it through the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import ufl
from dolfinx import fem

from app.conditions import FixedValue
from app.domains import Domains
from app.errors import SolverError
from app.solve_system import System, jacobian_blocks
from app.solvers import make_solver
from app.timeint import Row, TimeScheme

RATE_RTOL = 1e-12  # relative residual of the rate solve: cheap, and flows to round-off
# Above this many unknowns a BDF run releases the rates' matrix after use (see the docstring);
# below it the matrix is small and rebuilding it at every stage change would cost more.
RELEASE_ABOVE = 100_000


class Rates:
    """The rates of a group's transient fields at the current state and time.

    Args:
        name: The group's name (solver prefix, messages).
        rows: The group's rows; those with time terms get a rate.
        scheme: The group's time scheme (its time constant).
        fixed: The group's Dirichlet conditions.
        static: Functions that never change during the run.
        entity_maps: Maps between the meshes of fields on regions.
        finish: What the group does to each of its forms (drop zero terms, set the quadrature
            degree), so the rates' rows are integrated as the step's are.
    """

    def __init__(
        self,
        name: str,
        rows: Sequence[Row],
        scheme: TimeScheme,
        fixed: Sequence[FixedValue],
        static: set[Any],
        entity_maps: list[Any],
        finish: Callable[[ufl.Form], ufl.Form],
    ):
        transient = [row for row in rows if row.transient]
        self.name = name
        self.rates = {
            row.field: fem.Function(row.field.space, name=f"d{row.field.spec.name}_dt")
            for row in transient
        }
        self.residuals = {
            row.field.spec.name: finish(scheme.semi_discrete(row, self.rates)) for row in transient
        }
        names = set(self.residuals)
        conditions = [condition.rate(scheme.t) for condition in fixed if condition.field in names]
        self._values = [value for _, value in conditions if value is not None]
        self._bcs = [bc for bc, _ in conditions]
        self._static, self._entity_maps = static, entity_maps
        self._t = scheme.t
        self._solver = None
        self._compiled = False
        symmetric = all(
            term.kind == "capacity" and ufl.as_ufl(term.expression).ufl_shape == ()
            for row in transient
            for term in row.terms
        )
        self._preset = "cg_jacobi" if symmetric else "gmres_jacobi"

    @cached_property
    def system(self) -> System:
        """The rates' linear system, differentiated on first use: most runs never solve it."""
        unknowns = list(self.rates.values())
        blocks = list(self.residuals.values())
        jacobian = jacobian_blocks(blocks, unknowns)
        return System(
            unknowns, blocks, jacobian, self._bcs, False, self._static, None, self._entity_maps
        )

    def solve(self, solver_spec: Any, domains: Domains) -> None:
        """Solve for the rates at the current state (compiling on first use).

        Raises:
            SolverError: The iterative solve failed (a transient field with no capacity
                somewhere makes the capacity matrix singular).
        """
        if not self._compiled:
            for value in self._values:
                value.compile(domains)
            self._compiled = True
        if self._solver is None:
            # A field with no capacity somewhere (species in pores that have closed) leaves zero
            # rows of the capacity matrix; Jacobi takes 1 for a zero diagonal there, where the
            # rate is undefined and reads into no flow.
            update = {"preset": self._preset, "rtol": RATE_RTOL, "petsc": {}}
            spec = solver_spec.model_copy(update=update)
            self._solver = make_solver(self.system, spec, f"{self.name}_rates")
        for value in self._values:
            value.update()
        report = self._solver.solve()
        if not report.converged:
            fields = ", ".join(field.spec.name for field in self.rates)
            raise SolverError(
                f"the rates d/dt of {fields} at t = {float(self._t.value):.6g} s, which the "
                f"flows through fixed-value boundaries need, could not be solved ({report.reason})"
            )

    def release(self) -> None:
        """Free the solver's matrix and vectors if the system is large (it is set up again on
        the next use)."""
        if self._solver is not None and self.system.size > RELEASE_ABOVE:
            self._solver.destroy()
            self._solver = None
