"""``scalebridge plot``: PNGs of run folders, without a display.

* Quantities against time: each ``quantities.csv`` column in its own panel, six panels to a
  file (``quantities.png``, ``quantities_2.png``, ...), one line per run when several runs are
  compared.
* Field snapshots: a field at chosen output times, one PNG each (``temperature_t120s.png``),
  rendered off-screen by pyvista (EGL); fields on 1D meshes as value against x (matplotlib).

Fields are read from the run's XDMF files (``fields.xdmf``, ``fields_<mesh>.xdmf``) through
app/run_reader.py; the HDF5 data is global, so runs on any number of ranks plot alike.

matplotlib and pyvista are imported only here and in the reader, and this module only by the
``plot`` command and by runs whose case has an ``[output.plot]`` section (app/run_plot.py).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import CaseError, did_you_mean, listing
from app.run_reader import FieldSeries, Run, offscreen_pyvista, open_run, read_snapshot

log = logging.getLogger("scalebridge")

# Columns that describe the stepping, not the physics: plotted only when asked for.
BOOKKEEPING = (
    "time_s",
    "dt_s",
    "newton_iterations",
    "linear_iterations",
    "coupling_iterations",
    "step",
    "cycle",
)
PANELS = 6  # quantity panels per PNG


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------------------------------
# Quantities against time
# ---------------------------------------------------------------------------------------------
def quantity_columns(runs: list[Run], wanted: list[str] | None) -> list[str]:
    """The columns to plot: ``wanted`` (checked), or by default the physical columns that say
    something: a column that is zero throughout every run (an insulated side's heat flow), or
    constant in every run of several output times, is left out (unless nothing else is left),
    and so are the bookkeeping columns (time step, iteration counts)."""
    known: list[str] = []
    for run in runs:
        known += [name for name in run.quantities if name not in known]
    if wanted is None:
        physical = [name for name in known if name not in BOOKKEEPING]
        telling = [name for name in physical if not _flat(runs, name)]
        if len(telling) < len(physical):
            left_out = [name for name in physical if name not in telling]
            log.info("left out (zero or constant in every run): %s", ", ".join(left_out))
        return telling or physical
    for name in wanted:
        if name not in known:
            raise CaseError(
                "--columns",
                f"unknown column '{name}'{did_you_mean(name, known)}; columns: {listing(known)}",
            )
    return wanted


def _flat(runs: list[Run], name: str) -> bool:
    """Whether column ``name`` is zero throughout, or constant over several output times, in
    every run that has it (one output time, a steady run, is constant but may well tell)."""
    for run in runs:
        values = run.quantities.get(name)
        if values is None or not len(values):
            continue
        if np.any(values != 0) and (len(values) == 1 or np.any(values != values[0])):
            return False
    return True


def _time_axis(runs: list[Run]) -> tuple[float, str]:
    """A divisor and label that keep the time axis readable (s, min, h or days)."""
    end = max((float(run.quantities["time_s"].max(initial=0.0)) for run in runs), default=0.0)
    for scale, unit in ((86400.0, "d"), (3600.0, "h"), (60.0, "min")):
        if end >= 3 * scale:
            return scale, unit
    return 1.0, "s"


def plot_quantities(runs: list[Run], columns: list[str], out: Path) -> list[Path]:
    """Each column against time, ``PANELS`` panels to a PNG; several runs overlaid."""
    plt = _pyplot()
    scale, unit = _time_axis(runs)
    steady = all(len(run.quantities["time_s"]) == 1 for run in runs)  # one value: bars
    written = []
    for first in range(0, len(columns), PANELS):
        chunk = columns[first : first + PANELS]
        ncols = 1 if len(chunk) == 1 else 2
        nrows = math.ceil(len(chunk) / ncols)
        figure, axes = plt.subplots(
            nrows, ncols, figsize=(6.4 * ncols, 3.2 * nrows + 0.6), squeeze=False
        )
        for ax, name in zip(axes.flat, chunk, strict=False):
            (_steady_panel if steady else _time_panel)(ax, runs, name, scale)
            ax.set_title(name, fontsize=10)
            ax.grid(True, alpha=0.3)
        for position, ax in enumerate(axes.flat):
            if position >= len(chunk):
                ax.set_visible(False)
            elif steady:
                continue
            elif position + ncols >= len(chunk):  # the lowest panel of its column
                ax.set_xlabel(f"time [{unit}]")
            else:
                ax.tick_params(labelbottom=False)
        if len(runs) > 1 and not steady:
            handles, labels = axes.flat[0].get_legend_handles_labels()
            figure.legend(handles, labels, loc="upper center", ncol=min(len(runs), 4))
        figure.tight_layout(rect=(0, 0, 1, 0.93 if len(runs) > 1 and not steady else 1))
        suffix = "" if first == 0 else f"_{first // PANELS + 1}"
        path = out / f"quantities{suffix}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def _time_panel(ax: Any, runs: list[Run], name: str, scale: float) -> None:
    """One line per run: ``name`` against time."""
    for index, run in enumerate(runs):
        if name in run.quantities:
            t, y = run.quantities["time_s"] / scale, run.quantities[name]
            marker = "o" if len(t) <= 30 else None
            ax.plot(t, y, marker=marker, markersize=3, color=f"C{index}", label=run.name)


def _steady_panel(ax: Any, runs: list[Run], name: str, scale: float) -> None:
    """Steady runs have one value per column: one labelled bar per run."""
    for index, run in enumerate(runs):
        if name in run.quantities:
            value = float(run.quantities[name][0])
            bar = ax.bar(index, value, color=f"C{index}", width=0.6)
            ax.bar_label(bar, labels=[f"{value:.6g}"], fontsize=9)
    ax.set_xticks(range(len(runs)), [run.name for run in runs])
    ax.margins(y=0.15)


# ---------------------------------------------------------------------------------------------
# Field snapshots
# ---------------------------------------------------------------------------------------------
def field_names(runs: list[Run], wanted: list[str] | None) -> list[str]:
    """The fields to render: ``wanted`` (checked against every run), or all of them."""
    known: list[str] = []
    for run in runs:
        known += [name for name in run.fields if name not in known]
    if wanted is None:
        return known
    for name in wanted:
        missing = [run.name for run in runs if name not in run.fields]
        if missing:
            raise CaseError(
                "--fields",
                f"unknown field '{name}'{did_you_mean(name, known)} in run {missing[0]}; "
                f"fields: {listing(known)}",
            )
    return wanted


def step_index(series: FieldSeries, time: float) -> int:
    """The output step nearest ``time``; times outside the written range are refused."""
    times = np.asarray(series.times)
    slack = 1e-9 * max(1.0, float(np.abs(times).max()))
    if time < times.min() - slack or time > times.max() + slack:
        raise CaseError(
            "--times",
            f"t = {time:g} s is outside the times '{series.name}' was written at "
            f"({times.min():g} to {times.max():g} s)",
        )
    return int(np.argmin(np.abs(times - time)))


def colour_map(name: str, values: np.ndarray) -> tuple[str, tuple[float, float]]:
    """Colour map and range, as in view.py: Inferno for temperatures, Cool to Warm centred on
    zero for fields that change sign, Viridis otherwise (vectors: their magnitude)."""
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low == high:  # a constant: the middle of a narrow range around it
        pad = 1e-3 * abs(low) or 1.0
        low, high = low - pad, high + pad
    elif low < 0 < high:
        bound = max(-low, high)
        return "coolwarm", (-bound, bound)
    return ("inferno" if "temperature" in name else "viridis"), (low, high)


def _values(data: Any, name: str, units: str) -> tuple[np.ndarray, bool, str]:
    """The field's values (vectors and tensors: their magnitude), whether they are per cell, and
    a label with the units."""
    cell = name not in data.point_data
    values = np.asarray(data.cell_data[name] if cell else data.point_data[name])
    label = f"{name} [{units}]" if units else name
    if values.ndim > 1 and values.shape[1] > 1:
        return np.linalg.norm(values, axis=1), cell, f"{label} (magnitude)"
    return values.reshape(-1), cell, label


def _is_1d(data: Any) -> bool:
    points = np.asarray(data.points)
    return bool(len(points)) and np.ptp(points[:, 1]) == 0 and np.ptp(points[:, 2]) == 0


def render_snapshot(data: Any, name: str, title: str, path: Path, units: str = "") -> Path:
    """One field of ``data`` as a PNG: a coloured mesh, or value against x for 1D meshes; the
    colour bar (or the value axis) is labelled with the field's ``units``."""
    values, cell, label = _values(data, name, units)
    if _is_1d(data):
        return _line_plot(data, values, cell, label, title, path)
    pv = offscreen_pyvista()
    cmap, clim = colour_map(name, values)
    planar = np.ptp(np.asarray(data.points)[:, 2]) == 0
    plotter = pv.Plotter(off_screen=True, window_size=(1200, 800))
    plotter.set_background("white")
    plotter.add_mesh(
        data,
        scalars=values,
        preference="cell" if cell else "point",
        cmap=cmap,
        clim=clim,
        line_width=5,
        lighting=not planar,  # flat data: the colour map's own colours
        scalar_bar_args={
            "title": label,
            "color": "black",
            "fmt": "%.5g",
            "position_x": 0.2,
            "width": 0.6,
        },
    )
    plotter.add_text(title, position="upper_left", font_size=11, color="black")
    if planar:
        plotter.view_xy()
        plotter.enable_parallel_projection()
        plotter.camera.parallel_scale *= 1.25  # room for the colour bar
    else:
        plotter.view_isometric()
        plotter.camera.zoom(0.8)
    plotter.screenshot(str(path))
    plotter.close()
    return path


def _line_plot(
    data: Any, values: np.ndarray, cell: bool, label: str, title: str, path: Path
) -> Path:
    """A field on a mesh along the x axis: value against x (per cell: a step per cell)."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8, 4.5))
    points = np.asarray(data.points)[:, 0]
    if cell:  # one flat segment per cell, NaN between segments
        cells = np.asarray(data.cells_dict[next(iter(data.cells_dict))])[:, :2]
        gap = np.full((len(cells), 1), np.nan)
        x = np.hstack([points[cells], gap]).reshape(-1)
        y = np.hstack([np.repeat(values[:, None], 2, axis=1), gap]).reshape(-1)
        ax.plot(x, y, color="C0")
    else:
        order = np.argsort(points)
        marker = "o" if len(points) <= 60 else None
        ax.plot(points[order], values[order], color="C0", marker=marker, markersize=3)
    ax.set_xlabel("x [m]")
    ax.set_ylabel(label)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_fields(runs: list[Run], names: list[str], times: list[float] | None, out: Path):
    """Snapshots of each field of each run at ``times`` (default: each field's last time)."""
    written = []
    for run in runs:
        prefix = f"{run.name}_" if len(runs) > 1 else ""
        for name in names:
            series = run.fields.get(name)
            if series is None:
                continue
            indices = [step_index(series, t) for t in times] if times else [-1]
            for index in dict.fromkeys(indices):
                t = series.times[index]
                data = read_snapshot(series, index)
                title = f"{run.name}: {name} at t = {t:g} s"
                path = out / f"{prefix}{name}_t{t:g}s.png"
                units = run.units.get(name, "")
                written.append(render_snapshot(data, name, title, path, units))
    return written


def plot(
    paths: list[Path],
    columns: list[str] | None = None,
    fields: list[str] | None = None,
    times: list[float] | None = None,
    out: Path | None = None,
) -> list[Path]:
    """Quantity plots and field snapshots of run folders; returns the PNGs written.

    Args:
        paths: Run folders (several: overlaid in the quantity plots).
        columns: quantities.csv columns (default: all but time step and iteration counts;
            an empty list: none).
        fields: Fields to render (default: all; an empty list: none).
        times: Snapshot times in s (default: the last output time).
        out: Folder for the PNGs (default: ``<run>/plots`` for one run, ``plots`` for several).

    Raises:
        CaseError: A folder is not a run folder, or a column, field or time is unknown.
    """
    runs = [open_run(path) for path in paths]
    names = [run.name for run in runs]
    for index, run in enumerate(runs):  # the same folder name twice: tell the runs apart
        if names.count(run.name) > 1:
            run.name = f"{run.name}-{index + 1}"
    chosen_columns = quantity_columns(runs, columns)
    chosen_fields = field_names(runs, fields)
    for run in runs:  # check every time before anything is drawn
        for name in chosen_fields:
            if name in run.fields:
                for t in times or []:
                    step_index(run.fields[name], t)
    out = out if out is not None else (runs[0].path / "plots" if len(runs) == 1 else Path("plots"))
    out.mkdir(parents=True, exist_ok=True)
    written = plot_quantities(runs, chosen_columns, out) if chosen_columns else []
    if chosen_fields:
        written += plot_fields(runs, chosen_fields, times, out)
    return written
