"""Training data of a surrogate: RVE solves as JSON lines, reusable by later runs.

Each line is one solved cell::

    {"signature": "...", "inputs": {"volume_fraction": 0.1, "shape": "circle"},
     "state": [0.1], "tensor": [[...]], "property": "conductivity", "boundary": "periodic",
     "mesh_size": 0.05, "degree": 2, "microstructure": "rve_inclusion.py",
     "microstructure_sha256": "...", "phases": {...}, "code_version": "0.1.0+<git>",
     "seconds": 0.31}

The signature hashes everything that decides the result except the state (script contents,
fixed parameters, phases, property, boundary condition, mesh size, degree): a record is reused
only by a surrogate with the same signature. Rank 0 reads and writes; all ranks hold the records.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI

from app.errors import CaseError

log = logging.getLogger("scalebridge")

RESOLUTION = 1e-9  # states are compared (and cells solved) rounded to this part of their range


def signature(description: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


class Database:
    """Solved cells of one surrogate, keyed by their (rounded) state.

    Args:
        description: What the signature is made of (see the module).
        comm: The run's communicator.
    """

    def __init__(self, description: dict[str, Any], comm: MPI.Comm):
        self.description = description
        self.signature = signature(description)
        self.comm = comm
        self.records: dict[tuple, dict[str, Any]] = {}
        self._file = None

    def load(self, path: Path, where: str) -> int:
        """Read the records of ``path`` that carry this signature; returns how many."""
        outcome: tuple = ()
        if self.comm.rank == 0:
            try:
                outcome = ("ok", _read(path, self.signature))
            except (OSError, ValueError) as exc:
                outcome = ("error", f"cannot read '{path}': {exc}")
        status, payload = self.comm.bcast(outcome, root=0)
        if status == "error":
            raise CaseError(where, payload, "give a surrogate_<name>.jsonl of an earlier run")
        records, skipped = payload
        for record in records:
            self.records[tuple(record["state"])] = record
        if skipped:
            log.info(
                "%s: %d records of %s were made with other settings and are not used",
                where,
                skipped,
                path,
            )
        return len(records)

    def open(self, path: Path | None) -> None:
        """Write every record (those loaded, then each new one) to ``path`` (rank 0)."""
        if path is None or self.comm.rank != 0:
            return
        self._file = path.open("w")
        for record in self.records.values():
            self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def add(self, state: tuple, tensor: np.ndarray, inputs: dict, seconds: float, version: str):
        record = self.description | {
            "signature": self.signature,
            "state": list(state),
            "inputs": inputs,
            "tensor": np.asarray(tensor).tolist(),
            "code_version": version,
            "seconds": round(seconds, 4),
        }
        self.records[tuple(state)] = record
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def get(self, state: tuple) -> np.ndarray | None:
        record = self.records.get(tuple(state))
        return None if record is None else np.array(record["tensor"], float)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _read(path: Path, wanted: str) -> tuple[list[dict[str, Any]], int]:
    records, skipped = [], 0
    with path.open() as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                matches = record["signature"] == wanted
                _ = record["state"], record["tensor"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"line {number} is not a record of RVE solves") from None
            if matches:
                records.append(record)
            else:
                skipped += 1
    return records, skipped
