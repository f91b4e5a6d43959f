"""Command line: ``scalebridge run | restart | check | modules | plot | new-module | study``.

Every command behaves the same under ``mpirun -n N``: all ranks do the work, rank 0 prints.
Bad input prints one message naming the case-file path and exits with code 2; a solve that
fails for good exits with code 1. ``run`` and ``restart`` stop after the current step on
SIGTERM/SIGINT, with a checkpoint, and exit with code 3 (app/safeguards.py lists every code).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from app import __version__, jit_cache
from app.errors import TERMINAL_CODES, CaseError, ScaleBridgeError
from app.module_listing import listing
from app.parallel import on_rank_zero
from app.studies import cli as studies_cli
from app.trust import add_trust_flag, trust_all

log = logging.getLogger("scalebridge")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scalebridge",
        description="Finite-element multiphysics across scales (DOLFINx).",
        epilog=(
            "first steps: 'scalebridge check cases/heated_plate.toml' validates a case and "
            "prints its plan; 'scalebridge run cases/heated_plate.toml' writes "
            "results/heated_plate/; 'scalebridge COMMAND --help' for each command; README.md "
            "and docs/plugin_guide.md for the rest."
        ),
    )
    parser.add_argument("--version", action="version", version=f"scalebridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_case(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("case", type=Path, help="case file (TOML)")
        command.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a case value by dotted path, e.g. physics.heat.conductivity=50",
        )
        add_trust_flag(command)
        return command

    run = with_case("run", "Run a case and write its results folder.")
    run.add_argument("-o", "--output", type=Path, help="results folder (default: results/<case>)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing results folder")
    run.add_argument(
        "--restart",
        type=Path,
        metavar="RUN_DIR",
        help="continue the stopped run in RUN_DIR from its latest checkpoint, with this case",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar or log on screen")
    text = "Continue a stopped run from its latest checkpoint, into the same folder."
    again = commands.add_parser("restart", help=text, description=text)
    again.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the stopped run's folder")
    again.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change the case compatibly, e.g. time.end=7200 (the mesh and fields stay)",
    )
    again.add_argument("-q", "--quiet", action="store_true", help="no progress bar or log")
    with_case("check", "Validate a case and print its mesh, fields and solve plan; solve nothing.")
    text = (
        "List installed physics plug-ins: the fields each provides and requires, and every "
        "parameter with its unit, default and bounds."
    )
    modules = commands.add_parser(
        "modules", help="List installed physics plug-ins.", description=text
    )
    modules.add_argument("name", nargs="?", help="show one plug-in only (e.g. heat)")
    _plot_parser(commands)
    _new_module_parser(commands)
    studies_cli.add_parser(commands)
    return parser


#: the exit code of an internal error, a bug rather than the input (EX_SOFTWARE of sysexits.h)
INTERNAL_ERROR = 70

#: the exit code when the reader of the output went away (128 + SIGPIPE, as a shell reports it)
BROKEN_PIPE = 141

#: Errors of a JIT that failed inside a solver's constructor, kept until the process ends: their
#: tracebacks hold the half-built DOLFINx LinearProblem, whose destructor raises (it reads
#: attributes its constructor never set), printing a traceback after the message.
HALF_BUILT: list[BaseException] = []


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scalebridge`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if getattr(args, "trust_scripts", False):
        trust_all()
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    console = _console_log(comm.rank, quiet=getattr(args, "quiet", False))
    try:
        if args.command == "run":
            _run(args, comm)
        elif args.command == "restart":
            _restart(args, comm)
        elif args.command == "check":
            _say(comm, _check(args, comm))
        elif args.command == "plot":
            _say(comm, _plot(args, comm))
        elif args.command == "new-module":
            _say(comm, _new_module(args, comm))
        elif args.command == "study":
            _say(comm, studies_cli.command(args, comm))
        else:
            _say(comm, listing(args.name))
    except ScaleBridgeError as exc:
        if comm.rank == 0:
            message = TERMINAL_CODES.sub("", str(exc))
            print(f"scalebridge: error: {_given(args)}{message}", file=sys.stderr, flush=True)
        if isinstance(exc, jit_cache.UnfinishedCompile):
            HALF_BUILT.append(exc)
        if getattr(sys.modules.get("app.output"), "UNFINISHED", None):
            _end_before_destructors(exc.exit_code)
        return exc.exit_code
    except BrokenPipeError:
        # the reader of the output left (`scalebridge modules | head -3`): end quietly, as a
        # shell command that SIGPIPE ends does; what is still buffered goes nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    except Exception as exc:
        if os.environ.get("SCALEBRIDGE_TRACEBACK"):
            raise
        if comm.size > 1 and jit_cache.parallel_jit_failure(exc):
            HALF_BUILT.append(exc)
            return _jit_failure(exc, comm, _given(args))
        _internal_error(exc, comm.rank)
        if comm.size > 1:  # the other ranks may wait in a collective call for this one
            comm.Abort(INTERNAL_ERROR)
        return INTERNAL_ERROR
    finally:
        if console is not None:
            log.removeHandler(console)
    return 0


def _internal_error(exc: Exception, rank: int) -> None:
    # A bug in ScaleBridge, not in the input: one line here (the run's log keeps where)
    print(
        f"scalebridge: internal error on rank {rank}: {type(exc).__name__}: {exc}. This is a "
        "bug: please report it with the run folder's run.log (set SCALEBRIDGE_TRACEBACK=1 to "
        "print where it happened)",
        file=sys.stderr,
        flush=True,
    )


def _given(args: argparse.Namespace) -> str:
    """The file a command was given, as its messages start."""
    given = getattr(args, "case", None) or getattr(args, "study", None)
    given = given or getattr(args, "run_dir", None)
    return f"{given}: " if given else ""


def _jit_failure(exc: Exception, comm: Any, where: str) -> int:
    """Every rank raised DOLFINx's JIT failure together, rank 0 with the reason: rank 0 says it
    and every rank exits with its code (no rank waits in a collective, so none aborts)."""
    code = None
    if comm.rank == 0:
        unfinished = jit_cache.unfinished_compile_in(exc)
        if unfinished is None:
            _internal_error(exc, comm.rank)
        else:
            print(f"scalebridge: error: {where}{unfinished}", file=sys.stderr, flush=True)
        code = INTERNAL_ERROR if unfinished is None else jit_cache.UnfinishedCompile.exit_code
    return comm.bcast(code, root=0)


def console() -> None:
    """Entry point of the ``scalebridge`` console script: ``main``, then the process ends
    without the interpreter's teardown (app/process_end.py)."""
    from app.process_end import end_process

    end_process(main())


def _end_before_destructors(code: int) -> None:
    """End the process now with ``code``: ADIOS2 would retry closing the VTX files it could not
    finish (app/output.py) from their destructors, and failing again, abort the process."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _console_log(rank: int, quiet: bool) -> logging.Handler | None:
    """Log to stdout on rank 0 for the duration of a command (the other ranks stay quiet)."""
    log.setLevel(logging.INFO)
    if rank != 0 or quiet:
        return None
    handler = _ConsoleEcho(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    return handler


class _ConsoleEcho(logging.StreamHandler):
    """The run's log echoed on stdout. A reader that leaves (`scalebridge run ... | head -3`)
    ends the echo, not the run: run.log keeps every line. PETSc installs a signal handler when
    it starts that aborts the process on the broken pipe's SIGPIPE (MPI_Abort, no results), so
    each line is written with SIGPIPE ignored, as Python itself starts: a write then fails with
    BrokenPipeError, which ends the echo."""

    def emit(self, record: logging.LogRecord) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if not isinstance(sys.exc_info()[1], BrokenPipeError):
            super().handleError(record)
            return
        log.removeHandler(self)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # what is buffered


def _say(comm: Any, text: str) -> None:
    if comm.rank == 0:
        print(text, flush=True)


def _run(args: argparse.Namespace, comm: Any) -> None:
    from app.safeguards import StopRequests
    from app.simulation import Simulation

    if args.restart is not None:
        if args.output is not None and args.output.resolve() != args.restart.resolve():
            raise CaseError(
                "--output", "a restart continues into its own folder", "leave out -o with --restart"
            )
        from app.restart import restart

        log.info("case %s -> %s (restart)", args.case, args.restart)
        with StopRequests() as stops:
            restart(args.restart, args.case, args.overrides, comm, not args.quiet, stops)
        return
    output = args.output or Path("results") / args.case.stem
    simulation = Simulation.from_case(args.case, args.overrides, comm=comm)
    log.info("case %s -> %s", args.case, output)
    with StopRequests() as stops:
        simulation.run(output, overwrite=args.overwrite, progress=not args.quiet, stops=stops)


def _restart(args: argparse.Namespace, comm: Any) -> None:
    from app.restart import restart
    from app.safeguards import StopRequests

    with StopRequests() as stops:
        restart(args.run_dir, None, args.overrides, comm, not args.quiet, stops)


def _check(args: argparse.Namespace, comm: Any) -> str:
    from app.simulation import Simulation

    simulation = Simulation.from_case(args.case, args.overrides, comm=comm)
    simulation.build()
    case = simulation.case
    lines = [f"Case: {case.title or args.case.stem} ({args.case})", ""]
    if simulation.loaded.parameters is not None:
        lines += [*simulation.loaded.parameters.describe(), ""]
    lines += simulation.mesh_data.summary().splitlines()
    lines += ["", "Plug-ins:"]
    for instance, plugin in simulation.physics.items():
        lines.append(f"  {instance} ({plugin.name}): {plugin.describe()}")
    lines += ["", "Fields (provider -> consumers):"]
    lines += ["  " + line for line in simulation.graph.describe()]
    lines += ["", "Solve plan:", "  " + _time_plan(case.time)]
    lines += ["  " + line for line in _coupling_plan(simulation)]
    lines += ["  " + line for line in simulation.describe_solvers().splitlines()]
    lines += [f"  output: {_output_plan(case.output, simulation)}"]
    for trigger in simulation.events:
        lines.append(f"  event: stop when {trigger.text} (located within {trigger.tolerance:g} s)")
    if simulation.stages is not None:
        lines.append(f"  protocol: {len(simulation.stages)} steps")
        lines += [f"    [{stage.cycle}] {stage.text}" for stage, _, _ in simulation.stages[:12]] + (
            ["    ..."] if len(simulation.stages) > 12 else []
        )
    if simulation.multiscale.served or simulation.multiscale.rves:
        lines += ["", "Multiscale (surrogates serving properties cellwise; FE2 cells per point):"]
        lines += [f"  {line}" for line in simulation.multiscale.describe()]
    lines += ["", "Quantities (quantities.csv columns):"]
    lines += [f"  {name}: {q.description}" for name, q in simulation.quantities.items()]
    if simulation.probes.points or simulation.probes.lines:
        lines += ["", "Probes (fields read at points: quantities.csv; along lines: profiles/):"]
        lines += [f"  {line}" for line in simulation.probes.describe()]
    lines += ["", "OK: the case is valid."]
    return "\n".join(lines)


def _coupling_plan(simulation: Any) -> list[str]:
    coupling = simulation.case.coupling
    if len(simulation.groups) == 1:
        return ["coupling: one monolithic group"]
    lines = [f"coupling: {coupling.method} over {len(simulation.groups)} groups, in this order"]
    if coupling.method == "fixed_point":
        it = coupling.iterations
        lines.append(
            f"  iterations: up to {it.max_iterations}, tolerance {it.tolerance:g}, "
            f"acceleration {it.acceleration}, relaxation {it.relaxation:g}"
        )
    for group in simulation.groups:
        cycles = f", {group.subcycles} substeps per step" if group.subcycles > 1 else ""
        lines.append(f"  group '{group.name}': {', '.join(group.physics)}{cycles}")
    return lines


def _time_plan(time: Any) -> str:
    if time.end is None and time.dt is None:
        return "steady: one solve"
    step = f"dt {time.dt:g} s"
    adaptive = time.adaptive
    if adaptive and adaptive.rtol:
        step += f", error-controlled (rtol {adaptive.rtol:g}, atol {adaptive.atol:g})"
    elif adaptive:
        step += (
            f", adaptive (x{adaptive.growth:g} after easy steps, x{adaptive.shrink:g} on failure)"
        )
    end = f"{time.end:g} s" if time.end is not None else "the end of the protocol"
    return f"{time.scheme}: t from {time.start:g} s to {end}, {step}"


def _output_plan(output: Any, simulation: Any) -> str:
    time = simulation.case.time
    when = f"every {output.interval:g} s" if output.interval else "every step"
    if time.end is None and time.dt is None:
        when = "the steady solution"
    if output.times:
        when += " and at " + ", ".join(f"{t:g}" for t in output.times) + " s"
    formats = [name for name, chosen in (("XDMF", output.xdmf), ("VTX", output.vtx)) if chosen]
    fields = "none"
    if formats:
        fields = f"{', '.join(simulation._output_fields)} ({' and '.join(formats)})"
    if formats and output.every_cycle:
        fields += f", in protocol cycles 0, {output.every_cycle}, {2 * output.every_cycle}, ..."
    return f"{when}; fields: {fields}"


# ---------------------------------------------------------------------------------------------
# scalebridge plot
# ---------------------------------------------------------------------------------------------
def _plot_parser(commands: Any) -> None:
    text = "Plot quantities against time and field snapshots of run folders (PNG, no display)."
    plot = commands.add_parser("plot", help=text, description=text)
    plot.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run folder(s)")
    plot.add_argument(
        "--columns",
        help="quantities.csv columns, comma-separated (default: all but dt and iteration "
        "counts; 'none': no quantity plots)",
    )
    plot.add_argument(
        "--fields", help="fields to render, comma-separated (default: all; 'none': no snapshots)"
    )
    plot.add_argument(
        "--times",
        help="snapshot times, comma-separated, in s or with units ('90,2 min'; default: last)",
    )
    plot.add_argument(
        "--out", type=Path, help="folder for the PNGs (default: RUN_DIR/plots; several: ./plots)"
    )


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    return [] if names == ["none"] else names


def _plot(args: argparse.Namespace, comm: Any) -> str:
    """Rank 0 plots (and prints); the other ranks wait and share its exit code."""
    return on_rank_zero(comm, lambda: _plot_files(args), "--out")


def _plot_files(args: argparse.Namespace) -> str:
    from app.plotting import plot
    from app.units import to_si

    times = None
    if args.times is not None:
        times = [
            to_si(float(item) if _is_number(item) else item, "s", "--times")
            for item in _names(args.times) or []
        ]
    written = plot(args.runs, _names(args.columns), _names(args.fields), times, args.out)
    folders = ", ".join(sorted({str(path.parent) for path in written})) or "-"
    files = "1 PNG file" if len(written) == 1 else f"{len(written)} PNG files"
    return "\n".join([f"wrote {files} to {folders}:"] + [f"  {path.name}" for path in written])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# scalebridge new-module
# ---------------------------------------------------------------------------------------------
def _new_module_parser(commands: Any) -> None:
    text = (
        "Create an installable plug-in package: pyproject with the entry point, a worked "
        "reaction-diffusion plug-in, a demo case and tests that pass as generated."
    )
    command = commands.add_parser("new-module", help=text, description=text)
    command.add_argument("name", help="plug-in name (a Python module name, e.g. reaction_front)")
    command.add_argument(
        "--dir", type=Path, default=Path("."), help="folder to create the package in (default: .)"
    )


def _new_module(args: argparse.Namespace, comm: Any) -> str:
    from app import scaffold

    target = on_rank_zero(comm, lambda: scaffold.create(args.name, args.dir), "--dir")
    return scaffold.summary(target, args.name)


if __name__ == "__main__":
    console()
