"""Figures a case asks for: ``[output.plots]``, quantities.csv columns against time.

A case names the figure that shows it best, so every run of it draws the same one::

    [output.plots.cure_cycle]
    title = "Cure cycle"
    panels = [["surface_air_temperature_K", "centre_temperature_K", "surface_temperature_K"],
              ["centre_degree_of_cure", "surface_degree_of_cure"]]

Each panel overlays its columns (one axis each, stacked top to bottom, sharing the time axis).
The columns are checked when the case is built (``scalebridge check`` reports a misspelt one);
rank 0 draws ``plots/<name>.png`` into the run folder when the run ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

from app.errors import CaseError, did_you_mean, listing
from app.parameters import Parameters


class CasePlot(Parameters):
    """One figure: panels of quantities.csv columns against time."""

    panels: list[list[str]] = Field(description="Columns of each panel, top to bottom")
    title: str = Field("", description="Title of the figure (default: its name)")

    @field_validator("panels")
    @classmethod
    def _some_columns(cls, panels: list[list[str]]) -> list[list[str]]:
        if not panels or not all(panels):
            raise ValueError('give at least one panel, each with columns: [["a_K", "b_K"]]')
        return panels


def check_plots(plots: Mapping[str, CasePlot], columns: Sequence[str]) -> None:
    """Every column a figure draws is written by the run.

    Raises:
        CaseError: At ``output.plots.<name>.panels[i][j]``, with the closest column.
    """
    for name, spec in plots.items():
        for i, panel in enumerate(spec.panels):
            for j, column in enumerate(panel):
                if column not in columns:
                    raise CaseError(
                        f"output.plots.{name}.panels[{i}][{j}]",
                        f"unknown column '{column}'{did_you_mean(column, columns)}; columns: "
                        f"{listing(columns)}",
                    )


def draw_plots(
    plots: Mapping[str, CasePlot], quantities: Mapping[str, np.ndarray], folder: Path
) -> list[Path]:
    """The case's figures as PNGs in ``folder``; returns their paths."""
    if not plots:
        return []
    from app.plotting import pyplot, time_scale  # matplotlib only when there is a figure

    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    times = np.asarray(quantities["time_s"], dtype=float)
    scale, unit = time_scale(float(times.max(initial=0.0)))
    written = []
    for name, spec in plots.items():
        rows = len(spec.panels)
        figure, axes = plt.subplots(rows, 1, figsize=(8, 2.6 * rows + 0.8), sharex=True)
        for ax, panel in zip(np.atleast_1d(axes), spec.panels, strict=True):
            for column in panel:
                ax.plot(times / scale, np.asarray(quantities[column], dtype=float), label=column)
            ax.legend(fontsize=8)
            ax.grid(True, alpha=0.3)
        np.atleast_1d(axes)[-1].set_xlabel(f"time [{unit}]")
        figure.suptitle(spec.title or name)
        figure.tight_layout()
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written
