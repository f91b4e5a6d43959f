"""The study folder and its results table, the record a killed study resumes from.

``results.csv`` has one row per member: ``member, status, wall_time_s``, the parameter values,
the quantities, and the error of a failed member. While a study runs, the first rank of each
group appends its rows to ``parts/group-<g>.csv``, one flushed line per finished member, so a
study killed at any moment keeps every member that finished. The next run reads the table and
the parts, runs only the members missing from them, and merges everything, sorted by member,
into ``results.csv``: the same table an uninterrupted run writes (wall times aside).

Values are written exactly (``repr`` of floats, JSON for other values) and merged as written.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from app.errors import CaseError

RESULTS = "results.csv"
PARTS = "parts"
STUDY_COPY = "study.toml"
FIXED = ["member", "status", "wall_time_s"]


def encode(value: Any) -> str:
    """A value as table text that reads back exactly."""
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return repr(int(value))
    return json.dumps(value)


def decode(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass
class Row:
    """The outcome of one member."""

    member: int
    status: str  # "completed" or "failed"
    wall_time: float
    values: Mapping[str, Any]
    quantities: Mapping[str, float]
    error: str = ""

    def cells(self, names: list[str], quantities: list[str]) -> list[str]:
        return [
            str(self.member),
            self.status,
            f"{self.wall_time:.4f}",
            *(encode(self.values[name]) for name in names),
            *(encode(float(self.quantities.get(name, float("nan")))) for name in quantities),
            self.error,
        ]


@dataclass
class StudyTable:
    """The results table as arrays: what :meth:`Study.run` returns.

    Attributes:
        member: Member indices, ascending.
        status: "completed" or "failed" per member.
        wall_time: Seconds each member took.
        parameters: Each parameter's values (a float array, or a list for other values).
        quantities: Each quantity (NaN where a member failed).
        error: The error message of each failed member ("" otherwise).
    """

    member: np.ndarray
    status: list[str]
    wall_time: np.ndarray
    parameters: dict[str, Any]
    quantities: dict[str, np.ndarray]
    error: list[str]

    @property
    def completed(self) -> np.ndarray:
        return np.array([status == "completed" for status in self.status], dtype=bool)

    def __len__(self) -> int:
        return len(self.member)


class StudyFolder:
    """The folder of a study: a copy of the study file, the results table and its parts.

    Args:
        path: The folder.
        names: Parameter names (table columns).
        quantities: Quantity names (table columns).
    """

    def __init__(self, path: Path, names: list[str], quantities: list[str]):
        self.path = path
        self.names, self.quantities = names, quantities
        self.header = [*FIXED, *names, *quantities, "error"]

    def prepare(self, overwrite: bool, inputs: Sequence[Path] = ()) -> None:
        """Create the folder, or keep the one of a study to resume it (rank 0); ``inputs``
        (absolute paths of the files the study reads) are never deleted with it."""
        path = self.path
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            if not (path / STUDY_COPY).is_file():
                raise CaseError(
                    "output",
                    f"'{path}' exists and is not a study folder (no {STUDY_COPY}); refusing to "
                    "use it",
                    "choose another folder with -o",
                )
            # The folder's own study.toml may go: its text is read already.
            own = (path / STUDY_COPY).resolve()
            kept = [file for file in inputs if file.is_relative_to(path.resolve()) and file != own]
            if overwrite and kept:
                raise CaseError(
                    "output",
                    f"'{path}' holds '{kept[0]}', a file this study reads, which --overwrite "
                    "would delete with the folder",
                    "move the file out of the study folder, or choose another folder with -o",
                )
            if overwrite:
                shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / PARTS).mkdir(exist_ok=True)

    def keep_copy(self, study_text: str) -> None:
        """The study file beside its results (after the recorded rows were checked)."""
        (self.path / STUDY_COPY).write_text(study_text)

    def finished(self) -> dict[int, list[str]]:
        """Rows already recorded (table and parts), as written, by member."""
        rows: dict[int, list[str]] = {}
        for file in [self.path / RESULTS, *sorted((self.path / PARTS).glob("*.csv"))]:
            for cells in self._read(file):
                rows.setdefault(int(cells[0]), cells)
        return rows

    def check_design(self, rows: Mapping[int, list[str]], values: list[dict[str, Any]]) -> None:
        """Recorded rows must be members of this design (same values, exactly)."""
        for member, cells in rows.items():
            self._check_member(member, cells, values[member] if member < len(values) else None)

    def _check_member(self, member: int, cells: list[str], expected: Mapping | None) -> None:
        recorded = cells[len(FIXED) : len(FIXED) + len(self.names)]
        if expected is None or recorded != [encode(expected[n]) for n in self.names]:
            raise CaseError(
                "output",
                f"'{self.path}' holds member {member} of another design (the study file "
                "changed since it ran)",
                "pass --overwrite to start again, or choose another folder with -o",
            )

    def row(self, cells: list[str], expected: Mapping[str, Any]) -> Row:
        """A recorded row, checked to hold the expected parameter values."""
        member = int(cells[0])
        self._check_member(member, cells, expected)
        first = len(FIXED) + len(self.names)
        return Row(
            member,
            cells[1],
            float(cells[2]),
            {name: decode(cells[len(FIXED) + i]) for i, name in enumerate(self.names)},
            {name: float(cells[first + i]) for i, name in enumerate(self.quantities)},
            cells[-1],
        )

    def part(self, group: int) -> TextIO:
        """The part file a group appends its rows to (header written when new)."""
        file = self.path / PARTS / f"group-{group}.csv"
        new = not file.exists() or file.stat().st_size == 0
        stream = file.open("a", newline="")
        if new:
            csv.writer(stream).writerow(self.header)
            stream.flush()
        return stream

    def append(self, stream: TextIO, row: Row) -> None:
        stream.write(_line(row.cells(self.names, self.quantities)))
        stream.flush()  # the operating system keeps it if the process is killed

    def merge(self) -> list[list[str]]:
        """Write results.csv from the table and the parts (sorted by member), drop the parts."""
        rows = self.finished()
        ordered = [rows[member] for member in sorted(rows)]
        temporary = self.path / f".{RESULTS}.tmp"
        with temporary.open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(self.header)
            writer.writerows(ordered)
        temporary.replace(self.path / RESULTS)
        shutil.rmtree(self.path / PARTS, ignore_errors=True)
        return ordered

    def table(self, rows: Iterable[list[str]]) -> StudyTable:
        rows = list(rows)
        first_quantity = len(FIXED) + len(self.names)
        parameters: dict[str, Any] = {}
        for offset, name in enumerate(self.names):
            items = [decode(cells[len(FIXED) + offset]) for cells in rows]
            numeric = all(isinstance(item, float) for item in items)
            parameters[name] = np.array(items, dtype=float) if numeric else items
        return StudyTable(
            member=np.array([int(cells[0]) for cells in rows], dtype=int),
            status=[cells[1] for cells in rows],
            wall_time=np.array([float(cells[2]) for cells in rows]),
            parameters=parameters,
            quantities={
                name: np.array([float(cells[first_quantity + i]) for cells in rows])
                for i, name in enumerate(self.quantities)
            },
            error=[cells[-1] for cells in rows],
        )

    def _read(self, file: Path) -> list[list[str]]:
        if not file.is_file():
            return []
        with file.open(newline="") as stream:
            lines = list(csv.reader(stream))
        if not lines:
            return []
        if lines[0] != self.header:
            raise CaseError(
                "output",
                f"'{file}' has the columns of another study ({', '.join(lines[0][:8])}, ...)",
                "pass --overwrite to start again, or choose another folder with -o",
            )
        # A line cut short by a kill has fewer cells: that member runs again.
        return [cells for cells in lines[1:] if len(cells) == len(self.header) and _member(cells)]


def _member(cells: list[str]) -> bool:
    return cells[0].isdigit() and cells[1] in ("completed", "failed")


def _line(cells: list[str]) -> str:
    from io import StringIO

    buffer = StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()
