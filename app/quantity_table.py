"""``quantities.csv`` and the probes' profile files: CSV tables written row by row, flushed
after each, and cut back to a checkpoint's length when a run restarts."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from app.errors import CaseError


class QuantityTable:
    """``quantities.csv``: one row per output time, flushed as it is written.

    In a checkpoint (app/checkpoint.py) the table is the number of rows written and the file's
    length then; a restart (``resume=True``) opens the file as it is, cuts it back to that
    length (rows the stopped run wrote after its checkpoint go), reads those rows back and
    appends after them.
    """

    def __init__(self, path: Path | None, columns: list[str], comm: Any, resume: bool = False):
        self.columns = columns
        self.rows: list[list[float]] = []
        self.path, self.comm = path, comm
        self._stream = None
        tables = {} if path is None else {"quantities": (path, columns)}
        streams = open_tables(tables, resume, comm)
        if streams:
            self._stream = streams["quantities"]
            self._writer = csv.writer(self._stream)

    def append(self, row: list[float]) -> None:
        self.rows.append(row)
        if self._stream is not None:
            self._writer.writerow([f"{value:.12g}" for value in row])
            self._stream.flush()

    def state(self) -> dict[str, Any]:
        size = self._stream.tell() if self._stream is not None else 0
        return {"rows": len(self.rows), "bytes": self.comm.bcast(size, root=0)}

    def restore(self, state: dict[str, Any]) -> None:
        self.rows = cut_table(self.path, self._stream, state["bytes"], self.columns, self.comm)
        if self.path is not None and len(self.rows) != state["rows"]:
            raise CaseError(
                "--restart",
                f"'{self.path}' holds {len(self.rows)} rows up to the checkpoint, which "
                f"counted {state['rows']}",
                "run again from the start",
            )

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


def open_tables(
    tables: dict[str, tuple[Path, list[str]]], resume: bool, comm: Any
) -> dict[str, Any]:
    """Open CSV files for writing rows (collective; rank 0 gets the streams, by the keys of
    ``tables``, the other ranks none): new, with their header, or (``resume``) the existing
    ones, to be cut back by :func:`cut_table`.

    Raises:
        CaseError: A file cannot be opened (a folder in its place, no permission), on every
            rank: rank 0 alone raising left the others in its next collective call.
    """
    streams, problem = {}, None
    if comm.rank == 0:
        try:
            for key, (path, columns) in tables.items():
                streams[key] = _open_table(path, columns, resume)
        except OSError as exc:
            for stream in streams.values():
                stream.close()
            streams, problem = {}, f"cannot open '{exc.filename}' to write rows: {exc.strerror}"
    problem = comm.bcast(problem, root=0)
    if problem is None:
        return streams
    if resume:
        raise CaseError(
            "--restart",
            f"{problem}; a restart appends to the stopped run's tables",
            "put the stopped run's file back (or remove what is in its place), or run again "
            "from the start",
        )
    raise CaseError("--output", problem, "choose another folder with -o")


def _open_table(path: Path, columns: list[str], resume: bool) -> Any:
    path.parent.mkdir(exist_ok=True)
    if resume and path.exists():
        return path.open("r+", newline="")
    stream = path.open("w", newline="")
    csv.writer(stream).writerow(columns)
    stream.flush()
    return stream


def cut_table(
    path: Path | None, stream: Any, length: int, columns: list[str], comm: Any
) -> list[list[float]]:
    """Cut a CSV file back to its first ``length`` bytes (as it was at a checkpoint), leave
    ``stream`` at its end and return its rows (on every rank; rank 0 holds the stream).

    Raises:
        CaseError: The file is shorter than that, or its header differs from ``columns``.
    """
    problem, rows = None, []
    if path is not None and comm.rank == 0:
        data = path.read_bytes()
        lines = data[:length].decode(errors="replace").splitlines()
        if len(data) < length:
            problem = f"'{path}' is shorter than when the checkpoint was written"
        elif not lines or next(csv.reader(lines[:1])) != columns:
            problem = f"the columns of '{path}' differ from this run's"
        else:
            rows, problem = _numbers(lines[1:], path)
            if problem is None:
                stream.seek(length)
                stream.truncate()
    problem, rows = comm.bcast((problem, rows), root=0)
    if problem:
        raise CaseError("--restart", problem, "run again from the start")
    return rows


def _numbers(lines: list[str], path: Path) -> tuple[list[list[float]], str | None]:
    """The rows of a table's lines after its header, or what is wrong with them (a file changed
    since it was written: the rows are only read, never trusted to parse)."""
    rows = []
    for number, row in enumerate(csv.reader(lines), start=2):
        try:
            rows.append([float(value) for value in row])
        except ValueError:
            return [], f"line {number} of '{path}' is not a row of numbers: {','.join(row)!r}"
    return rows, None
