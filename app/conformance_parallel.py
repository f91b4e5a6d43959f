"""The parallel side of the conformance kit: one rank against several.

:func:`run_ranks` runs a case under mpirun as ``python -m app.conformance_parallel CASE OUTPUT``,
which writes the quantities and field norms (:func:`summary`) that :func:`compare` holds against
a serial run's (:func:`app.testing.check_parallel`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from app import registry
from app.conformance import CaseData, instances_of, registered, require
from app.contracts import Physics

_SOLVER_COLUMNS = {"newton_iterations", "linear_iterations", "coupling_iterations"}


def summary(sim: Any, result: Any, instances: list[str]) -> dict[str, list[float]]:
    """Quantities at every output time (without solver statistics) and field L2 norms."""
    import ufl
    from dolfinx import fem
    from mpi4py import MPI

    values = {
        name: [float(v) for v in np.atleast_1d(column)]
        for name, column in result.quantities.items()
        if name not in _SOLVER_COLUMNS
    }
    for instance in instances:
        plugin = sim.physics[instance]
        for spec in [*plugin.provides, *(v.spec for v in plugin.internal_variables)]:
            stored = sim.store[spec.name]
            u = stored.function
            # Values at quadrature points are integrated at their own points.
            metadata = {"quadrature_degree": stored.spec.space[1]} if stored.pointwise else {}
            dx = ufl.dx(domain=u.function_space.mesh, metadata=metadata)
            local = fem.assemble_scalar(fem.form(ufl.inner(u, u) * dx))
            total = u.function_space.mesh.comm.allreduce(local, op=MPI.SUM)
            values[f"L2 norm of {spec.name}"] = [math.sqrt(total)]
    return values


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
        command = [_mpirun(), "-n", str(ranks), sys.executable, "-m", "app.conformance_parallel"]
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


def units_of(sim: Any) -> dict[str, str]:
    """Units of the summary's columns (each field norm is a unit of its own)."""
    return {"time_s": "s", "dt_s": "s"} | {n: q.units for n, q in sim.quantities.items()}


def compare(
    cls: type[Physics],
    serial: dict[str, list[float]],
    parallel: dict[str, list[float]],
    ranks: int,
    rtol: float,
    units: dict[str, str] | None = None,
) -> str:
    """Require the summaries of 1 and ``ranks`` ranks to agree to ``rtol``, each value relative
    to itself or, for values near zero, to 1e-12 times the largest value of the same units (a
    minimum of 1e-49 mol/m^3 beside a maximum of 2 mol/m^3 is round-off on either side)."""
    require(
        serial.keys() == parallel.keys(),
        f"'{cls.name}': outputs differ on {ranks} ranks: {sorted(serial.keys() ^ parallel.keys())}",
    )
    units = units or {}
    largest: dict[str, float] = {}
    for name, values in serial.items():
        unit = units.get(name, name)
        largest[unit] = max(largest.get(unit, 0.0), *map(abs, values))
    worst = 0.0
    for name, values in serial.items():
        other = parallel[name]
        require(len(values) == len(other), f"'{name}': {len(values)} vs {len(other)} outputs")
        floor = 1e-12 * largest[units.get(name, name)]
        for a, b in zip(values, other, strict=True):
            difference = abs(a - b) / max(abs(a), abs(b), floor, 1e-300)
            require(
                difference <= rtol,
                f"'{cls.name}': {name} is {a!r} on 1 rank and {b!r} on {ranks} ranks "
                f"(relative difference {difference:.2g} > {rtol:g})",
            )
            worst = max(worst, difference)
    return f"1 and {ranks} ranks agree to {worst:.1e} on {len(serial)} outputs"


def main(argv: list[str] | None = None) -> int:
    """Run a case and write the summary :func:`check_parallel` compares (the MPI side)."""
    import argparse

    from mpi4py import MPI

    from app.simulation import Simulation

    parser = argparse.ArgumentParser(prog="python -m app.conformance_parallel")
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
