"""Run folders: the resolved case, provenance, fields for ParaView, quantities.csv and a log.

A run folder is never half-passed-off: ``provenance.json`` says ``"status": "running"`` from the
first moment, and only a run that reached its end time says ``"completed"``; a failed run says
``"failed"`` with the reason. An existing folder is replaced only with ``overwrite=True``, and
only if it is a run folder (it holds ``provenance.json``), so a mistyped ``-o`` never deletes
unrelated data.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w
from dolfinx import fem, io

from app import __version__
from app.errors import CaseError
from app.units import unit_suffix

log = logging.getLogger("scalebridge")

PROVENANCE = "provenance.json"


def column(name: str, units: str) -> str:
    """CSV column of a quantity: ``heat_flow_left`` in ``W/m`` -> ``heat_flow_left_W_per_m``."""
    suffix = unit_suffix(units)
    return f"{name}_{suffix}" if suffix else name


class RunDirectory:
    """The folder of one run (all ranks construct it; rank 0 writes the small files)."""

    def __init__(self, path: str | Path, comm: Any, overwrite: bool = False):
        self.path = Path(path).resolve()
        self.comm = comm
        problem = None
        if comm.rank == 0:
            problem = self._prepare(overwrite)
        problem = comm.bcast(problem, root=0)
        if problem:
            raise CaseError("--output", *problem)
        self._started = time.perf_counter()
        self._provenance: dict[str, Any] = {}
        self._log_handler: logging.Handler | None = None

    def _prepare(self, overwrite: bool) -> tuple[str, str] | None:
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
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        return None

    def write_case(self, resolved: dict[str, Any]) -> None:
        """The complete case as run, with defaults, in SI (runnable as it is)."""
        if self.comm.rank == 0:
            (self.path / "case.toml").write_text(tomli_w.dumps(resolved))

    @contextmanager
    def running(self, case_file: Path | None, details: dict[str, Any]):
        """Provenance around the run: ``running``, then ``completed`` or ``failed``."""
        self._attach_log()
        self._provenance = _provenance(case_file, self.comm.size) | details
        self._write_provenance("running")
        try:
            yield self._provenance
        except KeyboardInterrupt:
            self._write_provenance("interrupted")
            raise
        except BaseException as exc:
            self._write_provenance("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        else:
            self._write_provenance("completed")
        finally:
            self._detach_log()

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
        (self.path / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")

    def _attach_log(self) -> None:
        if self.comm.rank == 0:
            self._log_handler = logging.FileHandler(self.path / "run.log", mode="w")
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


class FieldWriter:
    """Fields as XDMF time series that ParaView opens: ``fields.xdmf`` (+ ``.h5``) for the
    fields of the whole mesh, ``fields_<name>.xdmf`` for those of a region or a boundary.

    XDMF holds Lagrange fields of the mesh's degree and cellwise constants; anything else is
    interpolated to degree 1 for output (the solution keeps its own degree).
    """

    def __init__(self, folder: Path, mesh_data: Any, functions: Sequence[fem.Function]):
        parent = mesh_data.mesh
        by_mesh: dict[Any, list[fem.Function]] = {}
        for function in functions:
            by_mesh.setdefault(function.function_space.mesh, []).append(function)
        self._files = []
        for mesh, members in by_mesh.items():
            name = "fields.xdmf" if mesh is parent else f"fields_{mesh.name}.xdmf"
            stream = io.XDMFFile(mesh.comm, str(folder / name), "w")
            stream.write_mesh(mesh)
            if mesh is parent and len(mesh_data.regions) > 1:  # one region: a constant array
                mesh.topology.create_connectivity(mesh.topology.dim, mesh.topology.dim)
                mesh_data.cell_tags.name = "regions"
                stream.write_meshtags(mesh_data.cell_tags, mesh.geometry)
            pairs = [(f, _output_function(f, mesh)) for f in members]
            self._files.append((stream, pairs))

    def write(self, time: float) -> None:
        for stream, pairs in self._files:
            for source, target in pairs:
                if target is not source:
                    target.interpolate(source)
                stream.write_function(target, time)

    def close(self) -> None:
        for stream, _ in self._files:
            stream.close()


def _output_function(function: fem.Function, mesh: Any) -> fem.Function:
    element = function.function_space.ufl_element()
    degree, discontinuous = element.embedded_superdegree, element.discontinuous
    mesh_degree = mesh.geometry.cmap.degree
    if (degree == 0 and discontinuous) or (degree == mesh_degree and not discontinuous):
        return function
    shape = function.function_space.value_shape
    space = fem.functionspace(mesh, ("Lagrange", mesh_degree, shape))
    return fem.Function(space, name=function.name)


class QuantityTable:
    """``quantities.csv``: one row per output time, flushed as it is written."""

    def __init__(self, path: Path | None, columns: list[str], comm: Any):
        self.columns = columns
        self.rows: list[list[float]] = []
        self._stream = None
        if path is not None and comm.rank == 0:
            self._stream = path.open("w", newline="")
            self._writer = csv.writer(self._stream)
            self._writer.writerow(columns)

    def append(self, row: list[float]) -> None:
        self.rows.append(row)
        if self._stream is not None:
            self._writer.writerow([f"{value:.12g}" for value in row])
            self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
