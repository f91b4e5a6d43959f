"""Where ScaleBridge's time goes: ``scalebridge run`` with timers around its main functions.

Runs the command line exactly as ``scalebridge run ...`` does (same arguments), after wrapping the
ScaleBridge and DOLFINx functions named in ``TIMED`` (dotted names; a test checks that each one
still exists) with wall-clock timers (nothing in app/ is changed).
Prints on stderr a table of total seconds (wall clock, and the process's CPU time: what a shared
machine inflates least) and call counts per function, plus the time before ``main`` (interpreter
start-up and imports); the process exit time is left to the caller.

    .venv/bin/python benchmarks/phases_scalebridge.py run benchmarks/heat_3d.toml -o /tmp/x \
        --overwrite -q
    .venv/bin/python benchmarks/phases_scalebridge.py --json out.json run ...   # also as JSON

Timers nest (a function's time includes its callees'), so the rows do not add up.
"""

import time

_started = time.perf_counter()

import functools  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections import defaultdict  # noqa: E402

import app  # noqa: E402, F401  (MPI/dolfinx_solver first)

TOTALS: dict[str, float] = defaultdict(float)
CPU: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)

# The functions to time, by dotted name: a module, then attributes ("Class.method").
# tests/test_benchmarks.py checks that every name resolves, so a rename fails there, not here.
TIMED = [
    "app.simulation.Simulation.from_case",
    "app.simulation.Simulation.run",
    "app.simulation.Simulation.build",
    "app.simulation.Simulation.compile",
    "app.runner.Session.execute",
    "app.runner.Session.record",
    "app.runner.Session.checkpoint",
    "app.simulation.Simulation.step",
    "app.simulation.Simulation.commit",
    "app.simulation.Simulation.evaluate_quantities",
    "app.coupling.build_groups",
    "app.meshing.build_mesh",
    "app.meshing._builtin_mesh",
    "app.meshing._mark_sides",
    "app.mesh_sets.apply_conditions",
    "app.mesh_sets.keep_used",
    "app.mesh_sets.meshtags",
    "app.groups.Group.__init__",
    "app.groups.Group.assemble",
    "app.groups.Group.compile",
    "app.groups.Group._dirichlet",
    "app.fields.FieldStore.add",
    "app.fields.Field.refresh",
    "app.fields.Field.push_history",
    "app.fields.assign",
    "app.solvers.LinearSolver.__init__",
    "app.solvers.LinearSolver.solve",
    "app.solvers._finite",
    "app.run_folder.RunDirectory.__init__",
    "app.run_folder.RunDirectory.write_case",
    "app.run_folder.RunDirectory._write_provenance",
    "app.run_folder._provenance",
    "app.output.FieldWriter.__init__",
    "app.output.FieldWriter.write",
    "app.output.FieldWriter.close",
    "dolfinx.mesh.create_box",
    "dolfinx.mesh.locate_entities",
    "dolfinx.mesh.exterior_facet_indices",
    "dolfinx.mesh.meshtags",
    "dolfinx.mesh.Topology.create_connectivity",
    "dolfinx.fem.functionspace",
    "dolfinx.fem.form",
    "dolfinx.fem.locate_dofs_topological",
    "dolfinx.fem.assemble_scalar",
    "dolfinx.fem.Function.interpolate",
    "dolfinx.fem.petsc.create_matrix",
    "dolfinx.fem.petsc.assemble_matrix",
    "dolfinx.fem.petsc.assemble_vector",
    "dolfinx.fem.petsc.apply_lifting",
    "dolfinx.fem.petsc.set_bc",
    "dolfinx.fem.petsc.assign",
    "dolfinx.io.XDMFFile.write_mesh",
    "dolfinx.io.XDMFFile.write_meshtags",
    "dolfinx.io.XDMFFile.write_function",
]


def resolve(dotted: str) -> tuple[object, str, object]:
    """(holder, attribute, function) of a dotted name: the longest importable prefix is the
    module, the rest are attributes. Raises LookupError naming the part that is missing."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            holder = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for index, name in enumerate(parts[split:-1], start=split):
            if not hasattr(holder, name):
                raise LookupError(f"{dotted}: {'.'.join(parts[: index + 1])} does not exist")
            holder = getattr(holder, name)
        if not hasattr(holder, parts[-1]):
            raise LookupError(f"{dotted}: {parts[-1]} does not exist in {'.'.join(parts[:-1])}")
        return holder, parts[-1], getattr(holder, parts[-1])
    raise LookupError(f"{dotted}: no importable module")


def _timed(name, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            TOTALS[name] += time.perf_counter() - started
            CPU[name] += time.process_time() - cpu
            CALLS[name] += 1

    return wrapper


def install() -> None:
    """Wrap every target where it is defined and where ScaleBridge's modules imported it."""
    import app.cli
    import app.simulation  # noqa: F401  (imports the rest of app)

    for dotted in TIMED:
        holder, attr, original = resolve(dotted)
        if isinstance(holder, type) and isinstance(holder.__dict__.get(attr), classmethod):
            wrapped = classmethod(_timed(dotted, original.__func__))
        else:
            wrapped = _timed(dotted, original)
        setattr(holder, attr, wrapped)
        if not isinstance(holder, type):  # a module-level function: also names imported elsewhere
            for other in list(sys.modules.values()):
                name = getattr(other, "__name__", "")
                if name.startswith(("app.", "dolfinx.")) and getattr(other, attr, None) is original:
                    setattr(other, attr, wrapped)


def main() -> int:
    argv = sys.argv[1:]
    json_path = None
    if argv[:1] == ["--json"]:
        json_path, argv = argv[1], argv[2:]
    install()
    from app.cli import main as cli_main

    before_main, before_main_cpu = time.perf_counter() - _started, time.process_time()
    code = cli_main(argv)
    total, total_cpu = time.perf_counter() - _started, time.process_time()
    rows = sorted(TOTALS.items(), key=lambda item: -item[1])
    lines = [f"{'':<52}{'wall':>9}   {'CPU':>9}"]
    lines += [
        f"{'start-up and imports (before main)':<52}{before_main:9.3f} s {before_main_cpu:9.3f} s"
    ]
    lines += [
        f"{name:<52}{seconds:9.3f} s {CPU[name]:9.3f} s  x{CALLS[name]}" for name, seconds in rows
    ]
    lines.append(f"{'total in process (exit not included)':<52}{total:9.3f} s {total_cpu:9.3f} s")
    print("\n".join(lines), file=sys.stderr)
    if json_path:
        record = {
            "before_main_s": before_main,
            "before_main_cpu_s": before_main_cpu,
            "total_s": total,
            "total_cpu_s": total_cpu,
            "functions": {n: {"s": s, "cpu_s": CPU[n], "calls": CALLS[n]} for n, s in rows},
        }
        with open(json_path, "w") as stream:
            json.dump(record, stream, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
