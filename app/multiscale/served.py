"""One surrogate during a run: states per cell, RVE solves where it is unsure, cellwise fields.

Each cell's state is its descriptors (``volume_fraction = "calcite"``), evaluated at the cell
(DG0) from the current fields, clamped to the admissible limits and rounded to 1e-9 of their
range (so equal states are equal bit for bit on any partition). A state is unsure where the
surrogate's relative uncertainty exceeds the tolerance (outside the training hull at least
its extrapolation envelope), or where it lies beyond the hull of the data and their dilute
limits by more than the cluster radius. Unsure states of all ranks are gathered, sorted (the
same order on any partition) and clustered: the most unsure first, then the farthest from the
chosen ones and the data, while farther than ``cluster`` (in units of the descriptor ranges);
nearer states share their RVEs. Up to ``batch`` RVEs are solved per round on the
sub-communicators of :class:`~app.multiscale.batch.RVEPool`, added to the database, the
surrogate is refitted (on rank 0, then sent to all), and the states are predicted again, until
none is unsure.

In ``direct`` mode (the FE2 reference) every distinct state gets its own RVE (a database
lookup first), and the property is the RVE's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from dolfinx import fem
from mpi4py import MPI
from scipy.spatial import cKDTree
from scipy.stats import qmc

from app.contracts import FieldSpec
from app.errors import CaseError, listing
from app.expressions import parse
from app.fields import FieldStore, owned_size
from app.meshing_gmsh import find_file
from app.multiscale import laws, properties
from app.multiscale.backbones import ModuliBackbone, TensorBackbone
from app.multiscale.batch import RVEPool, homogenise, material_of
from app.multiscale.cellwise import BoundaryCopy, served_cells, set_cells
from app.multiscale.database import RESOLUTION, Database
from app.multiscale.microstructure import Microstructure
from app.multiscale.spec import FRACTION, SurrogateSpec
from app.multiscale.surrogate import Surrogate
from app.run_folder import code_version

log = logging.getLogger("scalebridge")
MAX_ROUNDS = 25  # refresh rounds per check before the run goes on with what it has


class ServedSurrogate:
    """A ``[surrogates.<name>]`` section at run time.

    Args:
        name: The section's name.
        spec: The section.
        base_dir: The case's folder.
        store: The run's fields (the served properties and diagnostics join them).
        pool: Sub-communicators that solve RVEs.
    """

    def __init__(
        self, name: str, spec: SurrogateSpec, base_dir: Path, store: FieldStore, pool: RVEPool
    ):
        self.name, self.spec, self.store, self.pool = name, spec, store, pool
        self.where = f"surrogates.{name}"
        self.comm = pool.comm
        self.expressions, fixed = spec.expressions(), dict(spec.parameters)
        if FRACTION in fixed:  # a fixed fraction is a constant descriptor of the backbone
            self.expressions[FRACTION] = parse(repr(float(fixed.pop(FRACTION))))
        self.names = list(self.expressions)
        self._check_names(store)
        self.micro = Microstructure(spec.microstructure, self.where, base_dir, fixed, self.names)
        self.ranges = self.micro.limits(spec.limits)
        for i, expression in enumerate(self.expressions.values()):
            if not expression.names:  # a constant: that value is the whole range
                self.ranges[i] = expression.evaluate({})
        for name, (low, high) in spec.design.range.items():
            i = self.names.index(name)
            if low < self.ranges[i, 0] or high > self.ranges[i, 1]:
                raise CaseError(
                    f"{self.where}.design.range.{name}",
                    f"[{low:g}, {high:g}] goes beyond the admissible range "
                    f"[{self.ranges[i, 0]:g}, {self.ranges[i, 1]:.4g}] of {name}",
                    "sample inside the limits (the microstructure cannot be meshed beyond them)",
                )
        self.fraction = self.names.index(FRACTION)
        self.dim = self.micro.dimension(self.ranges[:, 0], self.comm)
        self.matrix, self.inclusion = spec.phases()
        self.material = material_of(spec.property, self.matrix, self.inclusion)
        self.backbone = self._backbone()
        self.surrogate = Surrogate(self.backbone, self.names, self.ranges)
        self.database = Database(self._description(), self.comm)
        if spec.database:
            path = find_file(spec.database, base_dir, f"{self.where}.database")
            self.database.load(path, f"{self.where}.database")
        self.outputs: list[tuple[properties.Output, fem.Function]] = []
        self.regions: set[str] | None = set()  # the cells served (None: all of the mesh)
        self.cells: np.ndarray | None = None
        self.copies: list[BoundaryCopy] = []
        self.rve_solves = 0
        self.calls = 0
        self.max_uncertainty = 0.0
        self._clamped = self._stalled = False  # each warned about once
        self._cells = fem.functionspace(store.mesh, ("DG", 0))
        self.descriptors = {n: self._field(f"{name}_{n}", "dimensionless") for n in self.names}
        self.uncertainty = self._field(f"{name}_uncertainty", "dimensionless")

    # Set-up -------------------------------------------------------------------------------------
    def _check_names(self, store: FieldStore) -> None:
        """Descriptors read x, y, z, t and the scalar fields of the whole mesh."""
        known = {"x", "y", "z", "t"} | {
            field.spec.name
            for field in store
            if field.spec.rank == "scalar" and field.spec.region is None and not field.is_global
        }
        for name, expression in self.expressions.items():
            try:
                expression.check_names(known)
            except ValueError as exc:
                raise CaseError(
                    f"{self.where}.descriptors.{name}",
                    str(exc),
                    "use scalar fields of the whole mesh, x, y, z and t",
                ) from None

    def _backbone(self) -> TensorBackbone | ModuliBackbone:
        shape = self.micro.depolarisation(self.dim)
        if self.spec.property == "conductivity":
            if shape is None:  # spheres or cylinders: the isotropic dilute limit
                shape = ([1 / self.dim] * self.dim, 0.0)
            factors, angle = shape
            turn = laws.rotation(angle, self.dim)
            log_xi = np.log(laws.conductivity_xi(factors))
            dilute = turn @ np.diag(log_xi) @ turn.T
            return TensorBackbone(float(self.matrix[0]), float(self.inclusion[0]), dilute)
        return ModuliBackbone(self.matrix, self.inclusion, self.dim)

    def _description(self) -> dict[str, Any]:
        """What decides an RVE's result besides its state (the database signature)."""
        return {
            "property": self.spec.property,
            "boundary": self.spec.boundary,
            "mesh_size": self.spec.mesh_size,
            "degree": self.spec.degree,
            "microstructure": self.micro.path.name,
            "microstructure_sha256": self.micro.digest,
            "parameters": self.micro.fixed,
            "descriptors": self.names,
            "phases": {"matrix": self.matrix.tolist(), "inclusion": self.inclusion.tolist()},
        }

    def _field(
        self, name: str, units: str, shape: tuple[int, ...] = (), boundary: str | None = None
    ) -> fem.Function:
        if name in self.store:
            raise CaseError(
                self.where,
                f"the surrogate's field '{name}' has the name of a field of the case",
                "rename the surrogate",
            )
        rank = {0: "scalar", 2: "tensor"}[len(shape)]
        spec = FieldSpec(name, rank, units, ("DG", 0), boundary)
        return self.store.add(spec, self.where, shape=shape).function

    def serve(self, output: properties.Output, region: str | None = None) -> None:
        """Fill ``output`` cell by cell from now on, on the cells of ``region`` at least (None:
        every cell)."""
        if self.spec.property == "elasticity" and self.dim < self.store.mesh.geometry.dim:
            raise CaseError(
                f"{self.where}.microstructure",
                f"a {self.dim}D cell gives in-plane (plane-strain) moduli, but the mesh is "
                f"{self.store.mesh.geometry.dim}D",
                "use a 3D microstructure for a 3D mechanics run",
            )
        if all(output.field != served.field for served, _ in self.outputs):
            self.outputs.append((output, self._field(output.field, output.units, output.shape)))
        if region is None or self.regions is None:
            self.regions = None
        else:
            self.regions.add(region)
            self.cells = served_cells(self._cells, self.store.domains.mesh_data, self.regions)

    def serve_on(self, output: properties.Output, boundary: str) -> None:
        """Copy ``output`` onto the mesh of ``boundary`` (after every :meth:`serve`), for an
        instance placed there (see :mod:`app.multiscale.cellwise`)."""
        name = f"{output.field}_{boundary}"
        if name in self.store:
            return
        source = next(function for served, function in self.outputs if served == output)
        target = self._field(name, output.units, output.shape, boundary)
        self.copies.append(
            BoundaryCopy(source, target, self._cells, self.store.domains, boundary, self.cells)
        )

    def compile(self, namespace: dict[str, Any], t: fem.Constant) -> None:
        """Compile each descriptor's expression for evaluation at the cells."""
        points = self._cells.element.interpolation_points
        self._evaluate = {}
        for name, expression in self.expressions.items():
            target = self.descriptors[name]
            if not expression.names:  # a constant (a fixed volume fraction): no mesh to tabulate
                target.x.array[:] = expression.evaluate({})
                self._evaluate[name] = lambda: None
                continue
            try:
                value = expression.to_ufl(namespace)
            except ValueError as exc:
                raise CaseError(
                    f"{self.where}.descriptors.{name}",
                    str(exc),
                    f"use scalar fields of the whole mesh, x, y, z and t: "
                    f"{listing(n for n in namespace if n not in ('x', 'y', 'z'))}",
                ) from None
            compiled = fem.Expression(value, points)
            self._evaluate[name] = lambda target=target, c=compiled: target.interpolate(c)
        self._t = t

    # States -------------------------------------------------------------------------------------
    def states(self, t: float) -> np.ndarray:
        """The owned cells' states now: (cells, descriptors), clamped and rounded."""
        self._t.value = t
        columns = []
        for name in self.names:
            self._evaluate[name]()
            columns.append(self.descriptors[name].x.array[: owned_size(self._cells)])
        states = np.column_stack(columns)
        if self.cells is not None:
            states = states[self.cells]
        self._check_finite(states, t)
        clipped = np.clip(states, self.ranges[:, 0], self.ranges[:, 1])
        self._warn_clamped(states, clipped)
        return self.round(clipped)

    def _check_finite(self, states: np.ndarray, t: float) -> None:
        bad = self.comm.allreduce((~np.isfinite(states)).sum(axis=0), op=MPI.SUM)
        if bad.any():
            name = self.names[int(np.argmax(bad))]
            raise CaseError(
                f"{self.where}.descriptors.{name}",
                f"'{self.expressions[name].source}' is not a finite number in {bad.max()} "
                f"cells at t = {t:.6g} s",
                "write an expression that stays finite (guard divisions and logarithms)",
            )

    def round(self, states: np.ndarray) -> np.ndarray:
        """To a power of ten near 1e-9 of each range (so 0.02 stays 0.02)."""
        width = self.ranges[:, 1] - self.ranges[:, 0]
        step = 10.0 ** np.floor(np.log10(np.where(width > 0, width, 1.0) * RESOLUTION))
        return np.round(states / step) * step

    def _warn_clamped(self, states: np.ndarray, clipped: np.ndarray) -> None:
        local = np.abs(states - clipped).max(axis=0, initial=0.0)
        outside = np.zeros(len(self.names))
        self.comm.Allreduce(local, outside, op=MPI.MAX)
        tolerance = 1e-6 * (self.ranges[:, 1] - self.ranges[:, 0] + 1e-300)
        if self._clamped or not (outside > tolerance).any():
            return
        self._clamped = True
        worst = int(np.argmax(outside / tolerance))
        log.warning(
            "%s: states beyond the limits of %s (by up to %.3g; limits %s) are clamped to them",
            self.where,
            self.names[worst],
            outside[worst],
            self.ranges[worst].tolist(),
        )

    # Training -----------------------------------------------------------------------------------
    def design(self) -> None:
        """The initial design of experiments (points already in the database are not solved),
        then the first fit."""
        points = self.spec.design.points
        if self.spec.mode == "direct" or points == 0:
            self._fit()
            return
        ranges = np.array(
            [self.spec.design.range.get(n, self.ranges[i]) for i, n in enumerate(self.names)]
        )
        varying = [i for i in range(len(self.names)) if ranges[i, 1] > ranges[i, 0]]
        unit = np.zeros((points, len(varying)))
        if len(varying) == 1:
            unit[:, 0] = np.linspace(0, 1, points)
        elif varying:
            unit = qmc.LatinHypercube(len(varying), seed=0).random(points)
        states = np.repeat(ranges[:, :1].T, points, axis=0)
        states[:, varying] = ranges[varying, 0] + unit * (ranges[varying, 1] - ranges[varying, 0])
        states = self.round(states)
        self._solve(states[states[:, self.fraction] > 0])  # the backbone is exact at 0
        self._fit()

    def _solve(self, states: np.ndarray) -> int:
        """RVEs of the states not in the database yet, on the pool; results join the database.
        Returns how many were solved."""
        new = [state for state in map(tuple, states) if self.database.get(state) is None]
        new = list(dict.fromkeys(new))
        if not new:
            return 0
        results = self.pool.map(
            lambda state, comm: homogenise(
                self.micro, self.material, np.array(state), self.spec, comm
            ),
            new,
        )
        for state, result in zip(new, results, strict=True):
            inputs = self.micro.arguments(np.array(state))
            self.database.add(state, result.tensor, inputs, result.seconds, code_version())
        self.rve_solves += len(new)
        return len(new)

    def _fit(self) -> None:
        """Refit on every record (rank 0) and share the fitted surrogate."""
        fitted = None
        if self.comm.rank == 0 and self.spec.mode == "surrogate":
            states, values = self.training()
            if len(states):
                self.surrogate.fit(states, values)
            fitted = self.surrogate
        if self.spec.mode == "surrogate":
            self.surrogate = self.comm.bcast(fitted, root=0)
            for problem in self.surrogate.warnings:
                log.warning("%s: %s", self.where, problem)
        known = self.surrogate.scale(self.training()[0])
        self._known = cKDTree(known) if len(known) else None

    def training(self) -> tuple[np.ndarray, np.ndarray]:
        """States and properties (in the backbone's form) of every record."""
        records = sorted(self.database.records.items())
        if not records:
            return np.zeros((0, len(self.names))), np.zeros((0,))
        states = np.array([state for state, _ in records], float)
        tensors = [np.array(record["tensor"], float) for _, record in records]
        return states, self.from_cell(tensors)

    def from_cell(self, tensors: list[np.ndarray]) -> np.ndarray:
        """Computed cell tensors in the backbone's form."""
        if self.spec.property == "conductivity":
            return np.array([(t + t.T) / 2 for t in tensors])
        return np.array([self.backbone.from_stiffness(t) for t in tensors])

    # Properties ---------------------------------------------------------------------------------
    def evaluate(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Properties (backbone form) and relative uncertainty of the owned cells' states,
        refreshing the surrogate where it is unsure (or, direct, solving every new state)."""
        unique, inverse = np.unique(states, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        if self.spec.mode == "direct":
            values = self._direct(unique)
            return values[inverse], np.zeros(len(states))
        for _ in range(MAX_ROUNDS):
            prediction = self.surrogate.predict(unique)
            unsure = self._unsure(unique, prediction)
            candidates, uncertainty = self._gather(unique[unsure], prediction.uncertainty[unsure])
            if not len(candidates) or not self.spec.refresh:
                break
            if not self._solve(self._clusters(candidates, uncertainty)):
                # the unsure states have their RVEs already: the tolerance is below what the
                # RVEs resolve (their precision, the noise the GP learned)
                self._warn_unsure(candidates, uncertainty, "at the RVEs' own precision")
                break
            self._fit()
        else:
            self._warn_unsure(candidates, uncertainty, f"after {MAX_ROUNDS} refresh rounds")
        self.calls += self.comm.allreduce(len(states), op=MPI.SUM)
        uncertainty = prediction.uncertainty[inverse]
        local = float(np.max(uncertainty, initial=0.0))
        self.max_uncertainty = self.comm.allreduce(local, op=MPI.MAX)
        return prediction.properties[inverse], uncertainty

    def _warn_unsure(self, states: np.ndarray, uncertainty: np.ndarray, why: str) -> None:
        if not self._stalled:
            self._stalled = True
            log.warning(
                "%s: %d states still unsure %s (largest uncertainty %.3g, tolerance %g); the "
                "run goes on with the surrogate as it is",
                self.where,
                len(states),
                why,
                float(np.max(uncertainty)),
                self.spec.tolerance,
            )

    def _unsure(self, states: np.ndarray, prediction: Any) -> np.ndarray:
        """Over the tolerance, or an extrapolation beyond the data and their dilute limits
        (between the two, outside the training hull, the uncertainty is the envelope's, which
        shrinks to 0 with the fraction: tiny fractions need no RVE of a tiny inclusion)."""
        uncertain = prediction.uncertainty > self.spec.tolerance
        far = ~prediction.anchored & (self._distance_to_data(states) > self.spec.cluster)
        return uncertain | far

    def _distance_to_data(self, states: np.ndarray) -> np.ndarray:
        if self._known is None:
            return np.full(len(states), np.inf)
        return self._known.query(self.surrogate.scale(states))[0]

    def _gather(self, states: np.ndarray, uncertainty: np.ndarray) -> tuple:
        """Unsure states of every rank, unique and in one order on any partition."""
        parts = self.comm.allgather((states, uncertainty))
        states = np.concatenate([p for p, _ in parts]) if parts else states
        uncertainty = np.concatenate([u for _, u in parts])
        if not len(states):
            return states, uncertainty
        unique, first = np.unique(states, axis=0, return_index=True)
        return unique, uncertainty[first]

    def _clusters(self, states: np.ndarray, uncertainty: np.ndarray) -> np.ndarray:
        """The most unsure state first, then each time the state farthest from those chosen
        and from the training data, while farther than ``cluster``: a batch spread over the
        unsure states (states beyond the data span a range; the most unsure alone would all
        lie at one end of it and walk the refresh through it a few states per round)."""
        level = np.where(np.isfinite(uncertainty), np.round(np.log10(uncertainty + 1e-300), 3), 99)
        order = np.lexsort((*states.T[::-1], -level))
        scaled = self.surrogate.scale(states[order])
        distance = np.full(len(order), np.inf)
        if self._known is not None:
            distance = self._known.query(scaled)[0]
        chosen = [0]
        while len(chosen) < self.spec.batch:
            distance = np.minimum(distance, np.linalg.norm(scaled - scaled[chosen[-1]], axis=1))
            farthest = int(np.argmax(distance))  # the first of equals: the same on any partition
            if distance[farthest] <= self.spec.cluster:
                break
            chosen.append(farthest)
        return states[order[chosen]]

    def _direct(self, states: np.ndarray) -> np.ndarray:
        """Each state's own RVE (the dilute state, fraction 0, is the matrix exactly)."""
        parts = self.comm.allgather(states)
        everything = np.unique(np.concatenate(parts), axis=0)
        solid = everything[everything[:, self.fraction] > 0]
        self._solve(solid)
        values = self.backbone.decode(
            states[:, self.fraction], np.zeros((len(states), self.backbone.outputs))
        )
        for i, state in enumerate(states):
            if state[self.fraction] > 0:
                values[i] = self.from_cell([self.database.get(tuple(state))])[0]
        return values

    def change(self, before: np.ndarray, after: np.ndarray) -> float:
        """Largest relative change of the property over all cells."""
        local = self.backbone.relative_error(after, before) if len(before) else np.zeros(0)
        return self.comm.allreduce(float(np.max(local, initial=0.0)), op=MPI.MAX)

    def assign(self, states: np.ndarray, values: np.ndarray, uncertainty: np.ndarray) -> None:
        """Write the served fields (owned cells, then the ghosts) and the diagnostics."""
        fraction = states[:, self.fraction]
        if self.spec.property == "elasticity":
            bulk, shear = self.backbone.moduli(values)
        for output, function in self.outputs:
            if self.spec.property == "conductivity":
                cellwise = properties.conductivity_values(
                    output, values, fraction, float(self.matrix[0]), float(self.inclusion[0])
                )
            else:
                cellwise = properties.elastic_values(output, bulk, shear)
            set_cells(function, cellwise, self.cells)
        set_cells(self.uncertainty, uncertainty, self.cells)
        for copy in self.copies:
            copy.update()

    def close(self) -> None:
        self.database.close()
