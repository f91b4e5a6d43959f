"""Run folders: the resolved case, provenance and the log.

A run folder is never half-passed-off: ``provenance.json`` says ``"status": "running"`` from the
first moment, and only a run that reached its end time says ``"completed"``; a failed run says
``"failed"`` with the reason, a stopped one (a signal, a full disk) ``"interrupted"`` with the
checkpoint it continues from. An existing folder is replaced only with ``overwrite=True``, and
only if it is a run folder (it holds ``provenance.json``), so a mistyped ``-o`` never deletes
unrelated data. Small files are replaced atomically (written aside, then renamed).

The field files and quantities.csv are app/output.py's.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from app import __version__
from app.errors import CaseError, Interrupted, OutputFailed, ScaleBridgeError
from app.safeguards import writable

log = logging.getLogger("scalebridge")

PROVENANCE = "provenance.json"
CASE = "case.toml"
FIELDS = "fields.json"


def input_files(loaded: Any) -> list[Path]:
    """The files a loaded case reads, as absolute paths: the case file, the mesh file, the
    parameter set, microstructures and surrogate databases (those that exist)."""
    data = loaded.resolved()
    named = [loaded.path, data["mesh"].get("file")]
    named += [loaded.parameters.path] if loaded.parameters is not None else []
    for section in data.get("surrogates", {}).values():
        named += [section.get("microstructure"), section.get("database")]
    named += [section.get("microstructure") for section in data.get("rves", {}).values()]
    paths = [Path(name) for name in named if name]
    return [path.resolve() for path in paths if path.is_absolute() and path.exists()]


class RunDirectory:
    """The folder of one run (all ranks construct it; rank 0 writes the small files).

    Args:
        path: The folder.
        comm: The run's communicator.
        overwrite: Replace an existing run folder.
        resume: Continue the run folder of a stopped run (``scalebridge restart``).
    """

    def __init__(
        self,
        path: str | Path,
        comm: Any,
        overwrite: bool = False,
        resume: bool = False,
        inputs: Sequence[Path] = (),
    ):
        self.path = Path(path).resolve()
        self.comm = comm
        self.resume = resume
        problem = None
        if comm.rank == 0:
            problem = self._reopen() if resume else self._prepare(overwrite, inputs)
        problem = comm.bcast(problem, root=0)
        if problem:
            raise CaseError("--restart" if resume else "--output", *problem)
        self._started = time.perf_counter()
        self._provenance: dict[str, Any] = {}
        self._log_handler: logging.Handler | None = None
        self.checkpoint: dict[str, Any] | None = None  # the latest: its folder and time

    def _prepare(self, overwrite: bool, inputs: Sequence[Path]) -> tuple[str, str] | None:
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            if not overwrite:
                return (
                    f"output folder '{self.path}' already exists",
                    "pass --overwrite to replace it, or choose another folder with -o",
                )
            if not (self.path / PROVENANCE).is_file():
                return (
                    f"'{self.path}' exists and is not a ScaleBridge run folder (no {PROVENANCE}); "
                    "refusing to overwrite it",
                    "choose another folder with -o",
                )
            # The run's own case.toml may go: the case it holds is read already.
            kept = [p for p in inputs if p.is_relative_to(self.path) and p != self.path / CASE]
            if kept:
                return (
                    f"'{self.path}' holds '{kept[0]}', a file this case reads, which --overwrite "
                    "would delete with the folder",
                    "move the file out of the run folder, or choose another folder with -o",
                )
            shutil.rmtree(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create '{self.path}': {exc.strerror}", "choose another folder with -o"
        return self._writable("choose another folder with -o")

    def _reopen(self) -> tuple[str, str] | None:
        if not (self.path / PROVENANCE).is_file():
            return (
                f"'{self.path}' is not a ScaleBridge run folder (no {PROVENANCE})",
                "give the folder of the run to continue",
            )
        return self._writable("make the folder writable, or copy it and restart the copy")

    def _writable(self, fix: str) -> tuple[str, str] | None:
        problem = writable(self.path)
        return (f"{problem} (a read-only or full disk, or no permission)", fix) if problem else None

    def write_case(self, resolved: dict[str, Any]) -> None:
        """The complete case as run, with defaults, in SI (runnable as it is)."""
        if self.comm.rank == 0:
            replace_text(self.path / CASE, tomli_w.dumps(resolved))

    def write_fields(self, fields: dict[str, dict[str, str]]) -> None:
        """``fields.json``: each field's units and rank, for ``plot`` and ``view.py``."""
        if self.comm.rank == 0:
            replace_text(self.path / FIELDS, json.dumps(fields, indent=2) + "\n")

    @contextmanager
    def running(self, case_file: Path | None, details: dict[str, Any], restart: dict | None = None):
        """Provenance around the run: ``running``, then ``completed``, ``failed`` or
        ``interrupted`` (stopped by a signal or a full disk: where to restart from).

        Args:
            case_file: The case file (None for a case given as a dict).
            details: More entries for provenance.json.
            restart: What a restart continues from (its checkpoint and time); the record of
                the first run is kept, with a list of its restarts.
        """
        self._attach_log()
        try:
            if self.comm.rank == 0:  # only rank 0 writes it (and asks git)
                self._provenance = _provenance(case_file, self.comm.size) | details
                if restart is not None:
                    self._provenance = self._continued(restart)
            self._write_provenance("running")
            yield self._provenance
        except (Interrupted, OutputFailed, KeyboardInterrupt) as exc:
            self._write_provenance("interrupted", error=str(exc) or "KeyboardInterrupt")
            raise
        except BaseException as exc:
            self._write_provenance("failed", error=f"{type(exc).__name__}: {exc}")
            if self._log_handler is not None and not isinstance(exc, ScaleBridgeError):
                # a bug, not the case: where it happened, for a report (the console says less)
                self._log_handler.stream.write("".join(traceback.format_exception(exc)))
                self._log_handler.flush()
            raise
        else:
            self._write_provenance("completed")
        finally:
            self._detach_log()

    def _continued(self, restart: dict) -> dict[str, Any]:
        """The first run's provenance with this restart appended to its ``restarts``."""
        try:
            earlier = json.loads((self.path / PROVENANCE).read_text())
        except (OSError, ValueError):
            earlier = {}
        now = self._provenance
        entry = {key: now[key] for key in ("command", "mpi_ranks", "started", "git_commit")}
        for key in ("status", "error", "restart_from", "restart_command", "checkpoint"):
            earlier.pop(key, None)
        restarts = [*earlier.pop("restarts", []), entry | restart]
        return now | earlier | {"restarts": restarts}

    def checkpointed(self, path: Path, time: float) -> None:
        """Record the latest checkpoint (provenance says where a stopped run continues)."""
        self.checkpoint = {"folder": str(path), "time_s": time}
        self._write_provenance("running")

    def stopped_at_once(self, signal_name: str) -> None:
        """Record a stop by a second signal (no checkpoint of that moment)."""
        self._write_provenance("interrupted", error=f"stopped at once by a second {signal_name}")

    def _write_provenance(self, status: str, error: str | None = None) -> None:
        if self.comm.rank != 0:
            return
        record = self._provenance | {
            "status": status,
            "wall_time_s": round(time.perf_counter() - self._started, 3),
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if error:
            record["error"] = error
        if self.checkpoint is not None:
            record["checkpoint"] = self.checkpoint
            if status == "interrupted":
                record["restart_from"] = self.checkpoint["folder"]
                record["restart_command"] = f"scalebridge restart {self.path}"
        text = json.dumps(record, indent=2) + "\n"
        try:
            replace_text(self.path / PROVENANCE, text)
        except OSError:
            # A full disk takes no new file, but the record's own blocks take the new record
            # (it grows by far less than a block): in place, since the run stops anyway.
            try:
                with (self.path / PROVENANCE).open("r+") as stream:
                    stream.write(text)
                    stream.truncate()
            except OSError as exc:  # the record of the last change stays
                log.error("cannot update %s: %s", PROVENANCE, exc.strerror)

    def _attach_log(self) -> None:
        if self.comm.rank == 0:
            mode = "a" if self.resume else "w"
            self._log_handler = logging.FileHandler(self.path / "run.log", mode=mode)
            self._log_handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
            )
            log.addHandler(self._log_handler)
            log.setLevel(min(log.level or logging.INFO, logging.INFO))

    def _detach_log(self) -> None:
        if self._log_handler is not None:
            log.removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None


def replace_text(path: Path, text: str) -> None:
    """Write a small file so that a reader (or a kill) sees the old or the new text, never a
    mix: a temporary file renamed over it."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise


@functools.cache
def code_version() -> str:
    """The version of the code that runs: the package version and its git commit."""
    commit = _git_commit()
    return f"{__version__}+{commit}" if commit else __version__


def _git_commit() -> str | None:
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _provenance(case_file: Path | None, ranks: int) -> dict[str, Any]:
    import dolfinx
    from petsc4py import PETSc

    return {
        "scalebridge_version": __version__,
        "git_commit": _git_commit(),
        "dolfinx_version": dolfinx.__version__,
        "petsc_version": ".".join(map(str, PETSc.Sys.getVersion())),
        "python_version": platform.python_version(),
        "mpi_ranks": ranks,
        "hostname": platform.node(),
        "user": os.environ.get("USER", ""),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "case_file": str(case_file.resolve()) if case_file else None,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
