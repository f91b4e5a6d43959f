"""``[output.plot]``: the PNGs a run writes into its own folder when it ends.

The same pictures as ``scalebridge plot RUN_DIR`` (app/plotting.py), drawn once the run has
finished, beside its field files: chosen ``quantities.csv`` columns against time (six panels to
``quantities.png``) and chosen fields at the last output time::

    [output.plot]
    columns = ["voltage_V", "current_A", "temperature_K"]

The columns and fields are checked when the case is built, before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from app.contracts import Parameters
from app.errors import CaseError, did_you_mean, listing
from app.parallel import on_rank_zero


class PlotSpec(Parameters):
    """PNGs drawn into the run folder at the end of the run (as ``scalebridge plot``)."""

    columns: list[str] | None = Field(
        None,
        description="quantities.csv columns against time, six panels a PNG "
        "(default: every column that changes; [] for none)",
    )
    fields: list[str] = Field(
        default_factory=list, description="Fields drawn at the last output time (default: none)"
    )


def check_plot(spec: PlotSpec | None, columns: list[str], fields: list[str]) -> None:
    """Refuse a column the run does not write, or a field it does not write to a file.

    Raises:
        CaseError: At ``output.plot.columns`` or ``output.plot.fields``.
    """
    if spec is None:
        return
    for where, wanted, known in (
        ("columns", spec.columns or [], columns),
        ("fields", spec.fields, fields),
    ):
        for name in wanted:
            if name not in known:
                kind = "column" if where == "columns" else "field written to a file"
                raise CaseError(
                    f"output.plot.{where}",
                    f"unknown {kind} '{name}'{did_you_mean(name, known)}; "
                    f"{where}: {listing(known)}",
                    "name one the run writes (output.fields and output.xdmf choose the fields)",
                )


def plot_run(spec: PlotSpec | None, folder: Path, comm: Any) -> list[Path]:
    """Draw the PNGs of a finished run into its folder (rank 0; every rank returns them)."""
    if spec is None:
        return []
    from app.plotting import plot  # matplotlib only for runs that plot

    return on_rank_zero(
        comm, lambda: plot([folder], spec.columns, spec.fields, None, folder), "output.plot"
    )
