"""Restart a stopped run from its latest checkpoint, into the same folder, on any number of ranks.

``scalebridge restart RUN_DIR`` continues the case the checkpoint holds (``--set`` may change
it); ``scalebridge run CASE --restart RUN_DIR`` continues with the case given. Before anything
is computed the case is checked against the checkpoint:

* refused, with the reasons: another mesh (cells, nodes or dimension), other fields (names,
  spaces, shapes, regions, time levels), other quantities.csv columns, or another time scheme,
  start, coupling, protocol or events (the saved position in them would mean something else);
  an end time before the checkpoint's time; a run that had stopped at its event or finished
  its protocol (nothing is left to continue); a case with surrogates (their training states
  are not in a checkpoint);
* accepted, with the differences listed in the log and in provenance.json: anything else (end
  time, output interval or fields, checkpoint settings, solver settings, parameter values).

The checkpoint then restores every part of the registry (app/checkpoint.py), the outputs are
cut back to the checkpoint (rows and field segments written after it by the stopped run go),
and the time loop goes on from where the checkpoint stood: the same steps follow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mpi4py import MPI

from app.case import load_case
from app.checkpoint import Checkpoint, CheckpointFiles
from app.errors import CaseError
from app.run_folder import CASE
from app.runner import field_signature
from app.safeguards import StopRequests
from app.simulation import Result, Simulation
from app.toml_files import read_toml

log = logging.getLogger("scalebridge")

# Sections whose meaning the saved position depends on: a change refuses the restart.
FIXED = ("time.scheme", "time.start", "coupling", "protocol", "events")


def restart(
    run_dir: str | Path,
    case: str | Path | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    comm: MPI.Comm = MPI.COMM_WORLD,
    progress: bool = False,
    stops: StopRequests | None = None,
) -> Result:
    """Continue the run in ``run_dir`` from its latest checkpoint.

    Args:
        run_dir: The stopped run's folder.
        case: The case to continue with (default: the one the checkpoint holds).
        overrides: Dotted-path overrides, as ``--set`` takes them.
        comm: The communicator (any number of ranks).
        progress: Show a progress bar.
        stops: Signal handlers (see :meth:`Simulation.run`).

    Raises:
        CaseError: No checkpoint, or one this case cannot continue (exit code 2).
    """
    run_dir = Path(run_dir).resolve()
    checkpoint = CheckpointFiles(run_dir, comm).read()
    source = checkpoint.case if case is None else case
    simulation = Simulation(load_case(source, overrides, None if case else run_dir), comm)
    simulation.build()
    checkpoint.changes = check(checkpoint, simulation)
    if case is None:
        _check_case_file(run_dir / CASE, checkpoint, simulation)
    if checkpoint.changes:
        log.info("the case differs from the checkpoint's: %s", "; ".join(checkpoint.changes))
    log.info(
        "restarting from %s at t = %.6g s (step %d, written on %d rank(s))",
        checkpoint.path.name,
        checkpoint.time,
        checkpoint.manifest["steps"],
        checkpoint.manifest["ranks"],
    )
    return simulation.run(run_dir, progress=progress, resume=checkpoint, stops=stops)


def check(checkpoint: Checkpoint, simulation: Simulation) -> list[str]:
    """The compatible differences between the checkpoint's case and ``simulation``'s.

    Raises:
        CaseError: The checkpoint cannot continue this case (every reason is listed).
    """
    manifest = checkpoint.manifest
    mine, theirs = checkpoint.case, simulation.loaded.resolved()
    changed = differences(mine, theirs)
    reasons = [
        f"{path} differs ({_shown(old)} in the checkpoint, {_shown(new)} here)"
        for path, (old, new) in changed.items()
        if any(path == fixed or path.startswith(f"{fixed}.") for fixed in FIXED)
    ]
    reasons += _mesh_reasons(manifest["mesh"], simulation)
    reasons += _field_reasons(manifest["fields"], field_signature(simulation.store))
    if manifest["columns"] != simulation.columns:
        gone = [c for c in manifest["columns"] if c not in simulation.columns]
        new = [c for c in simulation.columns if c not in manifest["columns"]]
        reasons.append(
            "the quantities.csv columns differ"
            + (f" (not here: {', '.join(gone)})" if gone else "")
            + (f" (new here: {', '.join(new)})" if new else "")
        )
    if reasons:
        raise CaseError(
            "--restart",
            f"the checkpoint '{checkpoint.path}' cannot continue this case: " + "; ".join(reasons),
            "restart with the case the checkpoint holds (scalebridge restart RUN_DIR, with "
            "--set for compatible changes such as time.end), or start a new run",
        )
    if simulation.case.surrogates:
        raise CaseError(
            "surrogates",
            "a restart cannot continue a run with surrogates: their training states and the "
            "properties in use are not part of a checkpoint",
            "run the case again from its start",
        )
    if simulation.case.rves:
        raise CaseError(
            "rves",
            "a restart cannot continue an FE2 run: the histories of its cells (one per "
            "quadrature point) are not part of a checkpoint",
            "run the case again from its start",
        )
    _check_position(checkpoint, simulation)
    return [
        f"{path}: {_shown(old)} -> {_shown(new)}"
        for path, (old, new) in changed.items()
        if path != "title" and path != "description"
    ]


def _check_case_file(path: Path, checkpoint: Checkpoint, simulation: Simulation) -> None:
    """Refuse to overwrite a run's case.toml changed since the checkpoint where the case the
    restart continues (the checkpoint's, with --set) differs from it: the edit would be
    ignored, then lost."""
    if not path.is_file():
        return  # the restart writes it
    try:
        written = read_toml(path)
    except CaseError:
        return  # not a case any more: nothing of it could be continued
    edited = differences(checkpoint.case, written)  # since the checkpoint was written
    now = differences(simulation.loaded.resolved(), written)
    changed = {where: values for where, values in now.items() if where in edited}
    if changed:
        first, (_, value) = next(iter(changed.items()))
        shown = "; ".join(
            f"{where}: {_shown(old)} here, {_shown(new)} in it"
            for where, (old, new) in list(changed.items())[:3]
        )
        more = f" ({len(changed) - 3} more)" if len(changed) > 3 else ""
        raise CaseError(
            "--restart",
            f"'{path}' differs from the case this restart continues (the checkpoint's, with "
            f"--set): {shown}{more}; the restart would run without it and overwrite it",
            f"to continue with its values give them with --set (--set {first}={_shown(value)}); "
            "to continue the checkpoint's case, delete it (the restart writes it again)",
        )


def _check_position(checkpoint: Checkpoint, simulation: Simulation) -> None:
    """Refuse a checkpoint of a run with nothing left to continue."""
    loop = checkpoint.parts["loop"]
    end = simulation.case.time.end
    fired = loop.get("fired")
    if fired:
        raise CaseError(
            "--restart",
            f"the run stopped at its event '{fired}' at t = {loop['t']:.6g} s; a restart has "
            "nothing to continue",
            "change the event in a new run",
        )
    if simulation.stages is not None and loop["stage"] >= len(simulation.stages):
        raise CaseError(
            "--restart",
            f"the protocol had ended at t = {loop['t']:.6g} s; a restart has nothing to continue",
        )
    if end is not None and loop["t"] >= end - 1e-9 * max(abs(end), 1.0):
        raise CaseError(
            "time.end",
            f"the run already reached t = {loop['t']:.6g} s, and time.end is {end:g} s",
            "give a later end: --set time.end=...",
        )


def _mesh_reasons(saved: dict[str, Any], simulation: Simulation) -> list[str]:
    msh = simulation.mesh_data.mesh
    here = {
        "dim": msh.topology.dim,
        "cells": msh.topology.index_map(msh.topology.dim).size_global,
        "nodes": msh.geometry.index_map().size_global,
    }
    return [
        f"the mesh has {here[key]} {key} here and {saved[key]} in the checkpoint"
        for key in ("dim", "cells", "nodes")
        if saved[key] != here[key]
    ]


def _field_reasons(saved: dict[str, dict], here: dict[str, dict]) -> list[str]:
    reasons = []
    missing = [name for name in saved if name not in here]
    extra = [name for name in here if name not in saved]
    if missing:
        reasons.append(f"the checkpoint's field(s) {', '.join(missing)} are not solved here")
    if extra:
        reasons.append(f"the field(s) {', '.join(extra)} are not in the checkpoint")
    for name in saved.keys() & here.keys():
        for key in ("space", "shape", "region", "levels", "values"):
            if saved[name][key] != here[name][key]:
                reasons.append(
                    f"field '{name}' has {key} {_shown(here[name][key])} here and "
                    f"{_shown(saved[name][key])} in the checkpoint"
                )
    return sorted(reasons)


def differences(old: Any, new: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted paths where two resolved cases differ, with (old, new) values."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found: dict[str, tuple[Any, Any]] = {}
        for key in sorted(old.keys() | new.keys()):
            path = f"{prefix}.{key}" if prefix else str(key)
            found |= differences(old.get(key), new.get(key), path)
        return found
    return {} if old == new else {prefix: (old, new)}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:45]}...{text[-10:]}"
