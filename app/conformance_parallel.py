"""One rank against several, for :func:`app.testing.check_parallel`.

The serial run (in the test's process) gives every quantity at every output time, the L2 norms
of the checked plug-in's fields, the instance each column belongs to, and the scale each value
is judged against: the magnitude of the terms it is made of (:mod:`app.magnitudes`). A value
that is zero by cancellation (the reaction of a support a free expansion does not load) is
round-off of those terms on either side, so two values agree when they differ by less than
``rtol`` of the larger of themselves and that scale. ``python -m app.conformance_parallel CASE
OUTPUT`` is the MPI side: it runs the case under mpirun and writes the same values.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import registry
from app.conformance import CaseData, CheckedRun, instances_of, registered, require
from app.contracts import Physics

_SOLVER_COLUMNS = {"newton_iterations", "linear_iterations", "coupling_iterations"}
_TIME_COLUMNS = {"time_s", "dt_s"}


@dataclass(frozen=True)
class Serial:
    """The serial side of the comparison.

    Attributes:
        values: Per column, its value at every output time (field norms: one value).
        scales: Per column, the magnitude of its terms at every output time (empty: the
            value itself is its scale).
        owners: Per column, the instance it belongs to.
    """

    values: dict[str, list[float]]
    scales: dict[str, list[float]]
    owners: dict[str, str]


def summary(sim: Any, result: Any, instances: list[str]) -> dict[str, list[float]]:
    """Quantities at every output time (without solver statistics) and field L2 norms."""
    values = {
        name: [float(v) for v in column]
        for name, column in result.quantities.items()
        if name not in _SOLVER_COLUMNS
    }
    for instance in instances:
        for spec in sim.physics[instance].provides:
            values[f"L2 norm of {spec.name}"] = [_l2_norm(sim.store[spec.name].function)]
    return values


def serial_side(run: CheckedRun, instances: list[str]) -> Serial:
    """Values, scales and owners of the serial run (the scales of quantities were recorded at
    every output; a derived field's norm is judged against the norm of its magnitude)."""
    from app.magnitudes import magnitude

    sim = run.sim
    values = summary(sim, run.result, instances)
    scales = dict(run.scales)
    owners = dict.fromkeys(_TIME_COLUMNS, "the time loop") | dict(sim.quantity_owners)
    for instance in instances:
        for spec in sim.physics[instance].provides:
            field = sim.store[spec.name]
            name = f"L2 norm of {spec.name}"
            owners[name] = field.provider
            if field.evaluation is not None:
                bound = magnitude(field.evaluation.expression)
                scales[name] = [_l2_norm(bound, field.function.function_space.mesh)]
    return Serial(values, scales, owners)


def _l2_norm(expression: Any, mesh: Any = None) -> float:
    import ufl
    from dolfinx import fem
    from mpi4py import MPI

    mesh = mesh or expression.function_space.mesh
    local = fem.assemble_scalar(fem.form(ufl.inner(expression, expression) * ufl.dx(domain=mesh)))
    return math.sqrt(mesh.comm.allreduce(local, op=MPI.SUM))


def excluded(columns: Collection[str], patterns: Collection[str]) -> set[str]:
    """The columns the patterns (``fnmatch``: ``"reaction_*"``) leave out; a pattern that
    matches nothing is a mistake (a renamed column, a typo) and fails."""
    found = set()
    for pattern in patterns:
        matched = fnmatch.filter(columns, pattern)
        require(
            bool(matched),
            f"exclude_columns: '{pattern}' matches no column; columns: {', '.join(columns)}",
        )
        found.update(matched)
    return found


def compare(
    cls: type[Physics],
    serial: Serial,
    parallel: dict[str, list[float]],
    ranks: int,
    rtol: float,
    checked: Collection[str],
    exclude: Collection[str] = (),
) -> str:
    """Require the values of 1 and ``ranks`` ranks to agree to ``rtol``, relative to the
    larger of the two values and the column's scale (the magnitude of its terms).

    A failure names the column's owner; when that is not one of the ``checked`` instances, it
    says so and how to leave the column out.
    """
    values = serial.values
    require(
        values.keys() == parallel.keys(),
        f"'{cls.name}': outputs differ on {ranks} ranks: {sorted(values.keys() ^ parallel.keys())}",
    )
    skipped = excluded(list(values), exclude)
    worst = 0.0
    for name, column in values.items():
        if name in skipped:
            continue
        other, scales = parallel[name], serial.scales.get(name, [])
        require(len(column) == len(other), f"'{name}': {len(column)} vs {len(other)} outputs")
        for index, (a, b) in enumerate(zip(column, other, strict=True)):
            scale = scales[index] if index < len(scales) else max(scales, default=0.0)
            difference = abs(a - b) / max(abs(a), abs(b), scale, 1e-300)
            if difference > rtol:
                raise AssertionError(_disagreement(cls, serial, name, a, b, ranks, scale, checked))
            worst = max(worst, difference)
    left_out = f" ({len(skipped)} left out)" if skipped else ""
    return f"1 and {ranks} ranks agree to {worst:.1e} on {len(values) - len(skipped)} outputs" + (
        left_out
    )


def _disagreement(
    cls: type[Physics],
    serial: Serial,
    name: str,
    a: float,
    b: float,
    ranks: int,
    scale: float,
    checked: Collection[str],
) -> str:
    owner = serial.owners.get(name, "?")
    difference = abs(a - b) / max(abs(a), abs(b), scale, 1e-300)
    message = (
        f"'{owner}': {name} is {a!r} on 1 rank and {b!r} on {ranks} ranks (relative difference "
        f"{difference:.2g}, judged against the larger value and the magnitude of its terms "
        f"{scale:.3g})"
    )
    if owner not in checked:
        message += (
            f"; the column belongs to '{owner}', not to the plug-in under test '{cls.name}': "
            f"leave it out with exclude_columns=['{name}'] if this difference is expected"
        )
    return message


def _mpirun() -> str:
    local = Path(sys.executable).parent / "mpirun"
    found = str(local) if local.exists() else shutil.which("mpirun")
    require(found is not None, "mpirun not found; pass ranks=(1,) to skip the MPI check")
    return found


def run_ranks(cls: type[Physics], spec: CaseData, ranks: int) -> dict[str, list[float]]:
    import tomli_w

    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as folder:
        case_file, output = Path(folder) / "case.toml", Path(folder) / "summary.json"
        case_file.write_text(tomli_w.dumps(spec.raw))
        command = [_mpirun(), "-n", str(ranks), sys.executable, "-m", __name__]
        command += [str(case_file), str(output), "--instances", ",".join(instances_of(cls, spec))]
        command += ["--base-dir", str(spec.base_dir or Path.cwd())]
        if registry.discover().classes.get(cls.name) is not cls or cls.__module__ == "__main__":
            command += ["--plugin", _import_path(cls)]
            root = _import_root(cls)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        process = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=folder, timeout=900
        )
        require(
            process.returncode == 0 and output.exists(),
            f"the case failed on {ranks} ranks (exit code {process.returncode}):\n"
            + (process.stderr or process.stdout)[-3000:],
        )
        return json.loads(output.read_text())


def _import_path(cls: type[Physics]) -> str:
    require(
        "<locals>" not in cls.__qualname__ and cls.__module__ != "__main__",
        f"{cls.__qualname__} must be defined at module level of an importable module to run "
        "under MPI (or be installed through an entry point)",
    )
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_root(cls: type[Physics]) -> str:
    """The sys.path entry the class's module is imported from."""
    module = sys.modules[cls.__module__]
    path = Path(module.__file__).resolve()
    depth = cls.__module__.count(".") + (path.name == "__init__.py")
    return str(path.parents[depth])


def main(argv: list[str] | None = None) -> int:
    """Run a case and write the values :func:`compare` compares (the MPI side)."""
    import argparse

    from mpi4py import MPI

    from app.simulation import Simulation

    parser = argparse.ArgumentParser(prog=f"python -m {__name__}")
    parser.add_argument("case", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--instances", required=True)
    parser.add_argument("--base-dir", type=Path)
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE:CLASS")
    args = parser.parse_args(argv)
    classes = []
    for path in args.plugin:
        module, _, name = path.partition(":")
        classes.append(getattr(importlib.import_module(module), name))
    with contextlib.ExitStack() as stack:
        for cls in classes:
            stack.enter_context(registered(cls))
        sim = Simulation.from_case(args.case, base_dir=args.base_dir)
    result = sim.run()
    values = summary(sim, result, args.instances.split(","))
    if MPI.COMM_WORLD.rank == 0:
        args.output.write_text(json.dumps(values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
