"""A study run on MPI: groups of ranks run members, rank 0 keeps the record and analyses.

``COMM_WORLD`` is split into groups of ``ranks_per_member`` ranks
(``Split(rank // ranks_per_member)``); the members still missing from the study folder are
dealt to the groups round-robin, and each group runs its share one after the other
(:mod:`app.studies.members`), its first rank appending each row to the group's part file. Rank 0
then merges the table, computes the statistics and draws the figures; every rank returns the
same table. Everything collective is called by every rank: rank 0's own work happens in
:func:`app.parallel.on_rank_zero`, which hands its result (or its error) to the others.

Example::

    from app.studies import Study
    table = Study.from_file("cases/studies/heated_rod_sobol.toml").run()
    table.quantities["flow"]
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI

from app.errors import CaseError
from app.parallel import on_rank_zero
from app.studies import calibration, plots
from app.studies.analysis import analyse
from app.studies.checks import check_data, check_study
from app.studies.design import Design, make_design, member_overrides
from app.studies.members import MemberRunner
from app.studies.spec import StudySpec, load_study
from app.studies.table import Row, StudyFolder, StudyTable

log = logging.getLogger("scalebridge.study")


class Study:
    """A study file, validated and checked against its case (nothing has run yet).

    Args:
        spec: The validated study.
        path: The study file (relative paths in it start from its folder).
        output: Study folder (default: the file's ``output``, else results/<study name>).
        overwrite: Start again in a folder that holds results of this or another study.
        comm: Communicator of all the study's ranks.

    Raises:
        CaseError: Anything wrong in the study, its case, its parameters or quantities.
    """

    def __init__(
        self,
        spec: StudySpec,
        path: Path,
        output: str | Path | None = None,
        overwrite: bool = False,
        comm: Any = MPI.COMM_WORLD,
    ):
        self.spec, self.path, self.comm, self.overwrite = spec, Path(path), comm, overwrite
        if comm.size % spec.ranks_per_member:
            raise CaseError(
                "ranks_per_member",
                f"{comm.size} ranks do not split into groups of {spec.ranks_per_member}",
                f"run on a multiple of {spec.ranks_per_member} ranks",
            )
        default = Path("results") / self.path.stem
        self.output = Path(output or spec.output or default).resolve()
        method = spec.method
        self.direct = method.type == "calibration" and method.sampler == "direct"
        self.design: Design | None = None if self.direct else make_design(spec)
        self.facts = check_study(spec, self.path.parent)
        self.quantities = dict(spec.quantities)
        self.data: calibration.Data | None = None
        if method.type == "calibration":
            self.data = calibration.read_data(method, self.path.parent)
            check_data(method.column, self.data.times, self.facts)
            self.quantities = calibration.data_quantities(method, self.data)
            times = sorted({*self.facts.output_times, *map(float, self.data.times)})
            self.spec = spec.model_copy(
                update={"overrides": spec.overrides | {"output.times": times}}
            )
        self.analysis: dict[str, Any] = {}
        self.posterior: calibration.Posterior | None = None

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        output: str | Path | None = None,
        overwrite: bool = False,
        comm: Any = MPI.COMM_WORLD,
    ) -> Study:
        """Read, validate and check a study file."""
        return cls(load_study(Path(path)), Path(path), output, overwrite, comm)

    @property
    def names(self) -> list[str]:
        return list(self.spec.parameters)

    def run(self, progress: bool = False) -> StudyTable:
        """Run the members missing from the study folder, then analyse; returns the table."""
        from threadpoolctl import threadpool_limits

        # One thread per rank: the ranks are the parallelism. A threaded BLAS on cores the
        # other ranks use made the surrogate's small solves 500x slower (7 ms, not 14 us).
        with threadpool_limits(limits=1):
            return self._run(progress)

    def _run(self, progress: bool) -> StudyTable:
        started = time.perf_counter()
        groups, group, members_comm = self._split()
        folder = StudyFolder(self.output, self.names, list(self.quantities))
        done = on_rank_zero(self.comm, lambda: self._prepare(folder), "output")
        runner = MemberRunner(
            self.facts.path,
            self.quantities,
            members_comm,
            self.output / "members" if self.spec.keep_runs else None,
            self.spec.reuse,
        )
        executor = Executor(self, runner, folder, done, (groups, group, members_comm), progress)
        if self.direct:
            self.posterior = calibration.calibrate_directly(self.spec, self.data, executor.evaluate)
        else:
            executor.execute(list(enumerate(self.design.values)))
        executor.close()
        table, self.analysis, self.posterior = on_rank_zero(
            self.comm, lambda: self._finish(folder, time.perf_counter() - started), "output"
        )
        members_comm.Free()
        return table

    def _split(self) -> tuple[int, int, Any]:
        per_member = self.spec.ranks_per_member
        group = self.comm.rank // per_member
        return self.comm.size // per_member, group, self.comm.Split(group, self.comm.rank)

    def _prepare(self, folder: StudyFolder) -> dict[int, list[str]]:
        study_text = self.path.read_text()
        inputs = [self.path, self.path.parent / self.spec.case]
        if self.spec.method.type == "calibration":
            inputs.append(self.path.parent / self.spec.method.data)
        folder.prepare(self.overwrite, [file.resolve() for file in inputs])
        done = folder.finished()
        if self.design is not None:
            folder.check_design(done, self.design.values)
        folder.keep_copy(study_text)
        count = "calibration runs" if self.direct else f"{len(self.design.values)} members"
        log.info(
            "study %s: %s (%s), %d already in %s",
            self.path.name,
            count,
            self.spec.method.type,
            len(done),
            folder.path,
        )
        return done

    def _finish(self, folder: StudyFolder, elapsed: float) -> tuple:
        table = folder.table(folder.merge())
        plot_folder = folder.path / "plots"
        plot_folder.mkdir(exist_ok=True)
        plots.scatter(table, plot_folder)
        if self.spec.method.type == "calibration":
            analysis, posterior = self._posterior(table, folder.path, plot_folder)
        else:
            analysis, posterior = analyse(self.spec, self.design, table, folder.path), None
            for kind, draw in (
                ("sobol", plots.sobol_bars),
                ("chaos", plots.sobol_bars),
                ("morris", plots.morris_bars),
            ):
                if kind in analysis:
                    draw(self.names, analysis[kind], plot_folder)
        failed = int((~table.completed).sum())
        log.info(
            "study finished: %d members (%d failed) in %.2f s; results in %s",
            len(table),
            failed,
            elapsed,
            folder.path,
        )
        return table, analysis, posterior

    def _posterior(
        self, table: StudyTable, folder: Path, plot_folder: Path
    ) -> tuple[dict[str, Any], calibration.Posterior]:
        posterior = self.posterior
        if posterior is None:  # the surrogate, trained on the completed design runs
            completed = table.completed
            if completed.sum() < len(self.names) + 2:
                raise CaseError(
                    "method.design",
                    f"only {int(completed.sum())} design runs completed; the surrogate needs "
                    f"more (first error: {next(e for e in table.error if e)})",
                )
            points = np.column_stack([table.parameters[n][completed] for n in self.names])
            outputs = np.column_stack([table.quantities[q][completed] for q in self.quantities])
            posterior = calibration.calibrate_on_surrogate(
                self.spec, self.data, points, outputs, float(table.wall_time.sum())
            )
        summary = posterior.summary()
        calibration.write_posterior(folder, posterior, summary)
        plots.corner_plot(posterior.samples, self.names, None, plot_folder)
        band = np.nanpercentile(posterior.models, [2.5, 50, 97.5], axis=0)
        data = self.data
        plots.calibration_fit(
            data.times, data.values, data.noise, band, self.spec.method.column, plot_folder
        )
        return {"posterior": summary}, posterior


class Executor:
    """Runs members on the groups and shares their rows with every rank."""

    def __init__(
        self,
        study: Study,
        runner: MemberRunner,
        folder: StudyFolder,
        done: dict[int, list[str]],
        layout: tuple[int, int, Any],
        progress: bool,
    ):
        self.study, self.runner, self.folder, self.done = study, runner, folder, done
        self.groups, self.group, self.members_comm = layout
        self.progress = progress and study.comm.rank == 0
        self.leader = self.members_comm.rank == 0  # writes the group's rows
        self._part = folder.part(self.group) if self.leader else None
        self._next = 0  # index of the next member a direct calibration asks for

    def execute(self, members: list[tuple[int, dict[str, Any]]]) -> dict[int, Row]:
        """Rows of these members: recorded ones as recorded, the others run (round-robin over
        the groups); every rank returns all of them."""
        from tqdm import tqdm

        pending = [(index, values) for index, values in members if index not in self.done]
        mine = pending[self.group :: self.groups]
        rows = []
        for index, values in tqdm(mine, disable=not self.progress, delay=3, unit="member"):
            row = self.runner.run(index, values, member_overrides(self.study.spec, values))
            if self.leader:
                self.folder.append(self._part, row)
                rows.append(row)
        fresh = {row.member: row for part in self.study.comm.allgather(rows) for row in part}
        recorded = {
            index: self.folder.row(self.done[index], values)
            for index, values in members
            if index in self.done
        }
        return recorded | fresh

    def evaluate(self, points: np.ndarray) -> np.ndarray:
        """The measured column at the measured times for parameter points (rows): one member
        each, numbered in the order asked; NaN rows for failed members."""
        names, quantities = self.study.names, list(self.study.quantities)
        members = [
            (self._next + offset, {n: float(x) for n, x in zip(names, point, strict=True)})
            for offset, point in enumerate(points)
        ]
        self._next += len(members)
        rows = self.execute(members)
        return np.array(
            [[rows[index].quantities.get(q, np.nan) for q in quantities] for index, _ in members],
            dtype=float,
        )

    def close(self) -> None:
        if self._part is not None:
            self._part.close()
