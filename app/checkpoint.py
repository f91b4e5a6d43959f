"""Checkpoints: one file set holding the whole state of a coupled run, written atomically.

What a checkpoint holds is a registry: every stateful component contributes a part through a
small protocol (:class:`Stateful`)::

    state() -> dict       # numpy arrays: this rank's rows; anything else: the same on every rank
    restore(dict) -> None # the arrays of every saved rank, concatenated along their first axis

Arrays are rows keyed by something that does not depend on the partition (a node's position,
an original cell number), so a part restores them on any number of ranks by picking the rows
of its own entities. Other values (times, counters, positions in a protocol) are taken from
rank 0. The simulation registers the field store (solved fields at every time level, internal
variables), each group's time scheme, the time loop (step controller, protocol position, event
bracket), the protocol's settings and the outputs written so far (app/runner.py); a component
added later joins with one ``registry.add(name, part)``.

On disk (``RUN_DIR/checkpoints``)::

    checkpoint-000004/state.json        # the parts' values, the case, a manifest
    checkpoint-000004/rank-00000.npz    # each rank's arrays
    checkpoint-000004/rank-00001.npz

A checkpoint is written to ``.writing-<n>`` and renamed when every rank's file is complete
(``fsync``), so a kill at any moment leaves the previous checkpoints intact; the newest ``keep``
stay. ``state.json`` holds a CRC-32 of its own content and of every rank's file, so a checkpoint
damaged or changed after it was written (a truncated copy, a flipped bit, a rank file taken from
another checkpoint) is refused by name before anything is restored from it. Settings: the case's
``[checkpoint]`` section (:class:`CheckpointSpec`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from mpi4py import MPI
from pydantic import Field

from app.errors import CaseError, OutputFailed
from app.parameters import Parameters, quantity

log = logging.getLogger("scalebridge")

FOLDER = "checkpoints"
STATE = "state.json"
FORMAT = 2  # bumped when the layout of a checkpoint changes (2: checksums)
_NAME = re.compile(r"checkpoint-(\d{6,})")


class CheckpointSpec(Parameters):
    """When the whole state of the run is saved (``RUN_DIR/checkpoints``), so that
    ``scalebridge restart RUN_DIR`` can continue it. Each trigger counts from the last
    checkpoint; a checkpoint never changes the steps taken."""

    steps: int | None = Field(None, ge=1, description="Every this many accepted time steps")
    interval: float | None = quantity("s", None, "Every this much simulated time", gt=0)
    wall_interval: float | None = quantity(
        "s", 1800.0, "Every this much wall-clock time (0 or none: never)", ge=0
    )
    at_end: bool = Field(True, description="At the end of the run (a longer run can continue)")
    keep: int = Field(2, ge=1, le=1000, description="Newest checkpoints kept on disk")


class Stateful(Protocol):
    """A component whose state a checkpoint holds (see the module docstring)."""

    def state(self) -> dict[str, Any]: ...
    def restore(self, state: dict[str, Any]) -> None: ...


class Registry:
    """The parts of a checkpoint, by name, restored in the order they were added."""

    def __init__(self) -> None:
        self._parts: dict[str, Stateful] = {}

    def add(self, name: str, part: Stateful) -> None:
        if name in self._parts:
            raise ValueError(f"checkpoint part '{name}' is registered twice")
        self._parts[name] = part

    def __contains__(self, name: str) -> bool:
        return name in self._parts

    def state(self) -> dict[str, dict[str, Any]]:
        return {name: part.state() for name, part in self._parts.items()}

    def restore(self, saved: Mapping[str, dict[str, Any]]) -> None:
        missing = [name for name in self._parts if name not in saved]
        if missing:
            raise CaseError(
                "--restart",
                f"the checkpoint holds no state of {', '.join(missing)}",
                "restart with the version and case that wrote it",
            )
        for name, part in self._parts.items():
            part.restore(saved[name])


@dataclass
class Checkpoint:
    """A checkpoint read back: every part's state (arrays of all ranks concatenated) and the
    manifest (what it was written by and of); ``changes`` lists how the case continuing it
    differs from the checkpoint's (compatible changes, app/restart.py)."""

    path: Path
    parts: dict[str, dict[str, Any]]
    manifest: dict[str, Any]
    changes: list[str] = field(default_factory=list)

    @property
    def time(self) -> float:
        return float(self.manifest["time"])

    @property
    def case(self) -> dict[str, Any]:
        return self.manifest["case"]


def split(state: Mapping[str, Any], prefix: str = "") -> tuple[dict, dict[str, np.ndarray]]:
    """A nested state as (its values without arrays, its arrays by '/'-joined path)."""
    values: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if "/" in key:
            raise ValueError(f"checkpoint key {key!r} contains '/'")
        path = f"{prefix}{key}"
        if isinstance(value, np.ndarray):
            arrays[path] = value
        elif isinstance(value, Mapping):
            inner, inner_arrays = split(value, f"{path}/")
            values[key] = inner
            arrays |= inner_arrays
        else:
            values[key] = value
    return values, arrays


def join(values: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The nested state from :func:`split`'s two halves (in place on ``values``)."""
    for path, array in arrays.items():
        node = values
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = array
    return values


class CheckpointFiles:
    """The checkpoints of a run folder (all ranks construct it; writing is collective).

    Args:
        run_dir: The run folder.
        comm: The run's communicator.
        keep: How many checkpoints to keep.
        room: Called with the bytes about to be written; raises :class:`OutputFailed` when
            they do not fit (see app/safeguards.py). Collective.
    """

    def __init__(
        self, run_dir: Path, comm: Any, keep: int = 2, room: Callable[[int], None] | None = None
    ):
        self.folder = Path(run_dir) / FOLDER
        self.comm, self.keep, self._room = comm, keep, room
        self.latest: Path | None = None

    def numbers(self) -> list[int]:
        """Numbers of the complete checkpoints, oldest first (rank 0 reads the folder)."""
        found: list[int] = []
        if self.comm.rank == 0 and self.folder.is_dir():
            for entry in self.folder.iterdir():
                match = _NAME.fullmatch(entry.name)
                if match and (entry / STATE).is_file():
                    found.append(int(match[1]))
        return self.comm.bcast(sorted(found), root=0)

    def path(self, number: int) -> Path:
        return self.folder / f"checkpoint-{number:06d}"

    def write(self, parts: dict[str, dict[str, Any]], manifest: dict[str, Any]) -> Path:
        """Write a checkpoint of ``parts`` (collective) and drop the oldest beyond ``keep``.

        Raises:
            OutputFailed: A rank could not write its file (disk full, read-only, quota); the
                partial checkpoint is removed and the previous ones are intact.
        """
        values, arrays = split(parts)
        size = self.comm.allreduce(sum(a.nbytes for a in arrays.values()), op=MPI.SUM)
        if self._room is not None:
            self._room(size + len(json.dumps({"manifest": manifest, "parts": values})))
        existing = self.numbers()
        number = (existing[-1] if existing else 0) + 1
        partial = self.folder / f".writing-{number:06d}"
        failure = None
        if self.comm.rank == 0:
            failure = _attempt(lambda: _fresh_folder(partial))
        failure = self.comm.bcast(failure, root=0)
        written = None
        if failure is None:
            try:
                written = _write_arrays(partial, self.comm.rank, arrays)
            except OSError as exc:
                failure = _reason(exc)
        outcomes = self.comm.gather((failure, written), root=0)
        if self.comm.rank == 0:
            failure = next((f for f, _ in outcomes if f), None)
            if failure is None:
                body = {"manifest": manifest, "parts": values, "files": [w for _, w in outcomes]}
                failure = _attempt(lambda: _write_text(partial / STATE, _document(body)))
            if failure is None:
                failure = _attempt(lambda: _publish(partial, self.path(number)))
            if failure is not None:
                shutil.rmtree(partial, ignore_errors=True)
        failure = self.comm.bcast(failure, root=0)
        if failure is not None:
            raise OutputFailed(f"the checkpoint could not be written: {failure}")
        if self.comm.rank == 0:
            for old in existing[: max(0, len(existing) + 1 - self.keep)]:
                shutil.rmtree(self.path(old), ignore_errors=True)
        self.comm.barrier()
        self.latest = self.path(number)
        return self.latest

    def read(self, number: int | None = None) -> Checkpoint:
        """The newest complete checkpoint (or checkpoint ``number``), on every rank.

        Raises:
            CaseError: There is none, or it cannot be read.
        """
        numbers = self.numbers()
        if not numbers:
            raise CaseError(
                "--restart",
                f"'{self.folder.parent}' holds no checkpoint ({FOLDER}/ is empty or missing)",
                "restart a run folder that wrote one ([checkpoint] in its case; one is written "
                "at the end and on SIGTERM/SIGINT by default)",
            )
        path = self.path(numbers[-1] if number is None else number)
        earlier = [n for n in numbers if n < int(_NAME.fullmatch(path.name)[1])]
        fix = (
            f"remove '{path.name}' to restart from '{self.path(earlier[-1]).name}', or start a "
            "new run"
            if earlier
            else "start a new run (the folder holds no earlier checkpoint)"
        )
        try:
            body = _read_body(path)
            arrays = _read_arrays(path, body["files"])
            problem = None
        except _OtherFormat as exc:
            problem, fix = str(exc), "restart with the ScaleBridge version that wrote it"
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
            problem = f"cannot read the checkpoint '{path}': {exc}"
        # Every rank reads the files; they agree on refusing, so none goes on alone.
        refusals = [(p, f) for p, f in self.comm.allgather((problem, fix)) if p]
        if refusals:
            raise CaseError("--restart", *refusals[0])
        self.latest = path
        return Checkpoint(path, join(body["parts"], arrays), body["manifest"])


class _OtherFormat(ValueError):
    """A checkpoint written by a version with another layout."""


def _document(body: dict[str, Any]) -> str:
    """state.json's text: the body and a CRC-32 of its JSON text."""
    checksum = zlib.crc32(json.dumps(body).encode())
    return json.dumps({"format": FORMAT, "crc32": checksum, "body": body})


def _read_body(path: Path) -> dict[str, Any]:
    """The body of the checkpoint's state.json, its format and checksum verified.

    Raises:
        _OtherFormat: Another version wrote it.
        ValueError: Its content is not what was written.
    """
    document = json.loads((path / STATE).read_text())
    if not isinstance(document, dict) or "format" not in document:
        raise ValueError(f"its {STATE} is not a checkpoint's")
    if document["format"] != FORMAT:
        raise _OtherFormat(
            f"the checkpoint '{path}' has format {document['format']}, this version reads "
            f"format {FORMAT}"
        )
    body = document.get("body")
    # json.dumps of what json.loads read gives the text written back, float for float
    if zlib.crc32(json.dumps(body).encode()) != document.get("crc32"):
        raise ValueError(f"its {STATE} was changed or damaged after it was written")
    return body


def _attempt(action: Callable[[], None]) -> str | None:
    """Run a file operation; what went wrong, or None."""
    try:
        action()
    except OSError as exc:
        return _reason(exc)
    return None


def _reason(exc: OSError) -> str:
    return f"{exc.strerror or exc} ({exc.filename or ''})".replace(" ()", "")


def _fresh_folder(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def _write_arrays(folder: Path, rank: int, arrays: dict[str, np.ndarray]) -> tuple[str, int, int]:
    """Write a rank's file; its name, size and CRC-32 (what a reader checks it by)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    name = f"rank-{rank:05d}.npz"
    with (folder / name).open("wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    return name, len(data), zlib.crc32(data)


def _write_text(path: Path, text: str) -> None:
    with path.open("w") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())


def _publish(partial: Path, final: Path) -> None:
    """Make a complete checkpoint visible under its final name (an atomic rename)."""
    os.rename(partial, final)
    descriptor = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_arrays(folder: Path, files: list[list[Any]]) -> dict[str, np.ndarray]:
    """Every rank file's arrays, concatenated along the first axis by name, each file's size
    and CRC-32 checked against those written.

    Raises:
        ValueError: A file is not the one written.
    """
    pieces: dict[str, list[np.ndarray]] = {}
    for name, size, checksum in files:
        data = (folder / name).read_bytes()
        if len(data) != size:
            raise ValueError(f"{name} has {len(data)} bytes, {size} were written")
        if zlib.crc32(data) != checksum:
            raise ValueError(f"{name} was changed or damaged after it was written (CRC-32)")
        with np.load(io.BytesIO(data)) as loaded:
            for array in loaded.files:
                pieces.setdefault(array, []).append(loaded[array])
    return {name: np.concatenate(parts) for name, parts in pieces.items()}
