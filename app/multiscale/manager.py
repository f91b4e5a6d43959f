"""Surrogates in the time loop: the hooks the simulation calls around each step.

Every parameter written ``{ surrogate = "name" }`` reads a cellwise (DG0) field that this layer
fills; the plug-ins see an ordinary coefficient. Per step:

1. the step is solved with the properties of its start state (``explicit``, the default of
   transient runs) or of the latest estimate of its end state (``implicit``, the default of
   steady runs);
2. the end state's descriptors are evaluated in every cell; where the surrogate is unsure, new
   RVEs are solved and the surrogate refitted (:mod:`app.multiscale.served`);
3. the properties the step should have used are evaluated again (the start states with the
   refitted surrogate, or the end states); if they differ from those used by more than the
   surrogate's tolerance somewhere, the step is solved again with them, up to ``iterations``
   times, else it counts as failed (an adaptive run then retries it with a smaller dt).

An accepted step's end properties become the next step's; a step the time loop rejects later
(error control, event location) gets its start properties back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from app.contracts import Physics
from app.errors import CaseError, did_you_mean, listing
from app.fields import FieldStore
from app.multiscale import properties
from app.multiscale.spec import SurrogateSpec

if TYPE_CHECKING:
    from app.multiscale.fe2 import RVEMaterial
    from app.multiscale.served import ServedSurrogate
from app.parameters import PerRegion, RVESource, Surrogate, walk_values
from app.solve_system import SolveReport

log = logging.getLogger("scalebridge")

State = tuple[np.ndarray, np.ndarray, np.ndarray]  # (states, properties, uncertainty) per cell


class Multiscale:
    """The surrogates of a run (none for most cases: then every hook passes through).

    Build it with :meth:`create`.
    """

    def __init__(
        self,
        served: dict[str, ServedSurrogate],
        steady: bool,
        comm: MPI.Comm,
        rves: dict[str, RVEMaterial] | None = None,
    ):
        self.served, self.comm = served, comm
        self.rves = rves or {}
        self.implicit = {
            name: s.spec.coupling == "implicit" or (s.spec.coupling == "auto" and steady)
            for name, s in served.items()
        }
        self.retries = max((s.spec.iterations for s in served.values()), default=0)
        self._start: dict[str, State] = {}
        self._used: dict[str, State] = {}
        self._end: dict[str, State] = {}
        self._fits: dict[str, int] = {}

    @classmethod
    def create(
        cls,
        case: Any,
        physics: Mapping[str, Physics],
        store: FieldStore,
        base_dir: Path,
        comm: MPI.Comm,
    ) -> Multiscale:
        """Check every ``{ surrogate = ... }`` of the plug-ins against the case's
        ``[surrogates]`` and make the fields they read.

        Raises:
            CaseError: An unknown surrogate, a component that does not fit its parameter, or a
                problem with a ``[surrogates]`` section.
        """
        uses = list(_uses(physics))
        surrogates: Mapping[str, SurrogateSpec] = case.surrogates
        steady = not case.time.transient
        regions = store.domains.mesh_data.regions
        for use in uses:
            if use.value.name not in surrogates:
                name = use.value.name
                raise CaseError(
                    use.where,
                    f"unknown surrogate '{name}'{did_you_mean(name, surrogates)}; "
                    f"surrogates: {listing(surrogates)}",
                    f"define it in a [surrogates.{name}] section",
                )
            if use.region is not None and use.region not in regions:
                raise CaseError(
                    use.where,
                    f"unknown region '{use.region}'{did_you_mean(use.region, regions)}; "
                    f"regions: {listing(regions)}",
                )
        served = _serve(surrogates, base_dir, store, comm) if surrogates else {}
        gdim = store.mesh.geometry.dim
        outputs = []
        for use in uses:
            surrogate = served[use.value.name]
            output = properties.resolve(
                use.value, surrogate.spec.property, surrogate.spec.units(), gdim, use.where
            )
            surrogate.serve(output, use.region)
            store.served[use.value] = output.field
            outputs.append(output)
        for use, output in zip(uses, outputs, strict=True):  # the served cells are known now
            boundary = physics[use.instance].domain
            if boundary is not None and boundary not in regions:
                served[use.value.name].serve_on(output, boundary)
        for name in sorted(set(surrogates) - {use.value.name for use in uses}):
            log.warning("surrogates.%s: no property of the case reads it", name)
        rves = {}
        readers = list(_rve_uses(physics))
        if readers or case.rves:  # the cell solvers load only for FE2 runs
            from app.multiscale import fe2

            rves = fe2.attach(case.rves, readers, store, base_dir, comm)
        return cls(served, steady, comm, rves)

    # Set-up ---------------------------------------------------------------------------------
    def compile(self, store: FieldStore, derived: Mapping[str, Any]) -> None:
        """Compile the descriptors. They may read x, y, z, t and the scalar fields of the whole
        mesh: the stored function, or a derived field's expression (whose stored value is
        refreshed at output times only)."""
        if not self.served:
            return
        ours = {surrogate.where for surrogate in self.served.values()}
        fields = {
            field.spec.name: derived.get(field.spec.name, field.function)
            for field in store
            if field.spec.rank == "scalar"
            and field.spec.region is None
            and not field.is_global
            and field.provider not in ours
        }
        self._t = fem.Constant(store.mesh, PETSc.ScalarType(0.0))
        x = ufl.SpatialCoordinate(store.mesh)
        namespace = dict(zip(("x", "y", "z"), x, strict=False)) | {"t": self._t} | fields
        for surrogate in self.served.values():
            surrogate.compile(namespace, self._t)

    def open(self, folder: Path | None) -> None:
        """Write the databases into the run folder (None: keep them in memory)."""
        for name, surrogate in self.served.items():
            surrogate.database.open(folder / f"surrogate_{name}.jsonl" if folder else None)

    def start(self, t: float) -> None:
        """Initial designs, then the properties of the initial state."""
        for name, surrogate in self.served.items():
            surrogate.design()
            states = surrogate.states(t)
            self._start[name] = self._used[name] = (states, *surrogate.evaluate(states))
            surrogate.assign(*self._used[name])
            self._fits[name] = surrogate.rve_solves

    # Stepping -------------------------------------------------------------------------------
    def advance(
        self, solve: Callable[[], SolveReport], rollback: Callable[[], None], t_end: float
    ) -> SolveReport:
        """Solve a step, refresh where the end state is unsure, and solve it again while the
        properties it used change by more than the tolerance (see the module)."""
        total: SolveReport | None = None
        for attempt in range(self.retries + 1):
            report = solve()
            total = report if total is None else total.then(report)
            if not report.converged:  # the solve rolled the fields back itself
                self.rollback()
                return total
            if not self._settle(t_end):
                return total
            if attempt < self.retries:
                rollback()
        rollback()
        self.rollback()
        return SolveReport(
            False,
            total.iterations,
            total.linear_iterations,
            f"surrogate properties still changed by more than their tolerance after "
            f"{self.retries} retries of the step to t = {t_end:.6g} s",
        )

    def _settle(self, t_end: float) -> bool:
        """Refresh at the end state; whether any property the step used must change."""
        unsettled = False
        for name, surrogate in self.served.items():
            states = surrogate.states(t_end)
            self._end[name] = (states, *surrogate.evaluate(states))
            if self.implicit[name]:
                check = self._end[name]
            elif surrogate.rve_solves != self._fits[name]:  # refitted: the start state again
                start = self._start[name][0]
                check = (start, *surrogate.evaluate(start))
            else:
                continue
            self._fits[name] = surrogate.rve_solves
            change = surrogate.change(self._used[name][1], check[1])
            if change > surrogate.spec.tolerance:
                log.info(
                    "%s: properties changed by %.3g (> %g) at t = %.6g s: the step is solved again",
                    surrogate.where,
                    change,
                    surrogate.spec.tolerance,
                    t_end,
                )
                self._used[name] = check
                surrogate.assign(*check)
                unsettled = True
        return unsettled

    def commit(self) -> None:
        """The step is accepted: its end state's properties serve the next step."""
        for name, surrogate in self.served.items():
            if name not in self._end:
                continue
            if not self.implicit[name]:
                self._used[name] = self._end[name]
                surrogate.assign(*self._used[name])
            self._start[name] = self._used[name]

    def rollback(self) -> None:
        """The step is undone: the properties of its start state again."""
        for name, surrogate in self.served.items():
            if name in self._start:
                self._used[name] = self._start[name]
                surrogate.assign(*self._used[name])

    # Output ---------------------------------------------------------------------------------
    def columns(self) -> list[str]:
        """quantities.csv columns: RVE solves so far, surrogate calls (cell evaluations), the
        largest relative uncertainty of the latest evaluation; for FE2 cells (``[rves]``)
        cell solves so far, and the largest cell Newton count and the wall seconds of cell
        solves in the step (its rejected tries included)."""
        served = [
            f"surrogate_{name}_{column}"
            for name in self.served
            for column in ("rve_solves", "calls", "max_uncertainty")
        ]
        return served + [
            f"rve_{name}_{column}"
            for name in self.rves
            for column in ("solves", "iterations", "step_seconds")
        ]

    def row(self) -> list[float]:
        served = [
            value
            for s in self.served.values()
            for value in (s.rve_solves, s.calls, s.max_uncertainty)
        ]
        return served + [
            value for r in self.rves.values() for value in (r.solves, r.iterations, r.seconds)
        ]

    def describe(self) -> list[str]:
        """One line per surrogate and per property it serves (``scalebridge check``)."""
        lines = []
        for name, s in self.served.items():
            states = ", ".join(f"{n} = {e.source}" for n, e in s.expressions.items())
            scheme = "implicit" if self.implicit[name] else "explicit"
            lines.append(
                f"{name}: {s.spec.property} of {s.micro.path.name} ({s.dim}D, {s.spec.boundary}, "
                f"P{s.spec.degree}, h {s.spec.mesh_size:g}) at {states}; {s.spec.mode}, "
                f"tolerance {s.spec.tolerance:g}, {scheme}, "
                f"{len(s.database.records)} RVEs from the database"
            )
            lines += [f"  -> {output.field} ({output.component})" for output, _ in s.outputs]
            if s.regions is not None:
                lines.append(f"  on the cells of {listing(sorted(s.regions))} only")
            lines += [f"  copied onto '{copy.boundary}'" for copy in s.copies]
        return lines + [material.describe() for material in self.rves.values()]

    def close(self, folder: Path | None) -> None:
        """Close the databases; plot each surrogate against its training points (rank 0)."""
        for material in self.rves.values():
            material.free()
        for name, surrogate in self.served.items():
            surrogate.close()
            surrogate.pool.free()
            if folder is not None and self.comm.rank == 0:
                from app.multiscale.plot import plot_surrogate

                plot_surrogate(surrogate, folder / f"surrogate_{name}.png")


@dataclass(frozen=True)
class Use:
    """A parameter naming a surrogate: its case path, value, instance, and the region of the
    table by region it is an entry of (None: the whole property)."""

    where: str
    value: Surrogate
    instance: str
    region: str | None


def _uses(physics: Mapping[str, Physics]) -> Iterator[Use]:
    for instance, plugin in physics.items():
        region_of: dict[int, str] = {}
        for path, value in walk_values(plugin.params):
            if isinstance(value, PerRegion):  # walked before its entries
                region_of |= {id(item): region for region, item in value.values.items()}
            elif isinstance(value, Surrogate):
                yield Use(f"physics.{instance}.{path}", value, instance, region_of.get(id(value)))


def _rve_uses(physics: Mapping[str, Physics]) -> Iterator[tuple[str, RVESource]]:
    """Every parameter naming an RVE (FE2): its case path and value."""
    for instance, plugin in physics.items():
        for key in type(plugin.params).model_fields:
            value = getattr(plugin.params, key)
            if isinstance(value, RVESource):
                yield f"physics.{instance}.{key}", value


def _serve(
    surrogates: Mapping[str, SurrogateSpec], base_dir: Path, store: FieldStore, comm: MPI.Comm
) -> dict[str, ServedSurrogate]:
    # Imported here: scikit-learn, scipy.stats and the RVE solvers cost seconds of start-up,
    # which a run without surrogates (most runs) must not pay.
    from app.multiscale.batch import RVEPool
    from app.multiscale.served import ServedSurrogate

    return {
        name: ServedSurrogate(name, spec, base_dir, store, RVEPool(comm, spec.ranks_per_rve))
        for name, spec in surrogates.items()
    }
