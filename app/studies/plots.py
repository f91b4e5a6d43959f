"""PNG figures of a study (matplotlib, no display): scatter of each quantity against each
parameter, Sobol' and Morris bar charts with their intervals, and the posterior corner plot
and fit of a calibration. All land in the study folder's ``plots/``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from app.studies.table import StudyTable


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _file(folder: Path, kind: str, quantity: str) -> Path:
    return folder / f"{kind}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', quantity)}.png"


def scatter(table: StudyTable, folder: Path) -> list[Path]:
    """One PNG per quantity: its value against each numeric parameter (completed members)."""
    plt = _pyplot()
    names = [n for n, v in table.parameters.items() if isinstance(v, np.ndarray)]
    written = []
    for quantity, values in table.quantities.items():
        if not names:
            break
        figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
        for axis, name in zip(axes[0], names, strict=True):
            axis.plot(table.parameters[name], values, ".", markersize=3, alpha=0.6)
            axis.set_xlabel(name, fontsize=8)
        axes[0][0].set_ylabel(quantity, fontsize=8)
        figure.tight_layout()
        written.append(_file(folder, "scatter", quantity))
        figure.savefig(written[-1], dpi=110)
        plt.close(figure)
    return written


def sobol_bars(names: list[str], indices: dict[str, dict[str, Any]], folder: Path) -> list[Path]:
    """First-order and total indices per parameter, with their confidence intervals."""
    plt = _pyplot()
    written = []
    x = np.arange(len(names))
    for quantity, result in indices.items():
        figure, axis = plt.subplots(figsize=(max(4, 1.2 * len(names) + 2), 3.2))
        for offset, key in ((-0.2, "S1"), (0.2, "ST")):
            errors = result.get(f"{key}_conf")
            axis.bar(x + offset, result[key], 0.4, yerr=errors, capsize=3, label=key)
        axis.set_xticks(x, names, rotation=20, ha="right", fontsize=7)
        axis.set_ylabel("Sobol' index")
        axis.set_title(quantity, fontsize=9)
        axis.legend(fontsize=8)
        figure.tight_layout()
        written.append(_file(folder, "sobol", quantity))
        figure.savefig(written[-1], dpi=110)
        plt.close(figure)
    return written


def morris_bars(names: list[str], indices: dict[str, dict[str, Any]], folder: Path) -> list[Path]:
    """mu* per parameter with its bootstrap interval, and sigma beside it."""
    plt = _pyplot()
    written = []
    x = np.arange(len(names))
    for quantity, result in indices.items():
        figure, axis = plt.subplots(figsize=(max(4, 1.2 * len(names) + 2), 3.2))
        axis.bar(
            x - 0.2, result["mu_star"], 0.4, yerr=result["mu_star_conf"], capsize=3, label="mu*"
        )
        axis.bar(x + 0.2, result["sigma"], 0.4, label="sigma")
        axis.set_xticks(x, names, rotation=20, ha="right", fontsize=7)
        axis.set_ylabel("elementary effect")
        axis.set_title(quantity, fontsize=9)
        axis.legend(fontsize=8)
        figure.tight_layout()
        written.append(_file(folder, "morris", quantity))
        figure.savefig(written[-1], dpi=110)
        plt.close(figure)
    return written


def corner_plot(samples: np.ndarray, names: list[str], truths: Any, folder: Path) -> Path:
    """The posterior's marginals and pairs (corner), with 2.5/50/97.5 % lines."""
    import corner

    plt = _pyplot()
    figure = corner.corner(
        samples,
        labels=names,
        quantiles=[0.025, 0.5, 0.975],
        show_titles=True,
        title_fmt=".3g",
        truths=truths,
        label_kwargs={"fontsize": 8},
        title_kwargs={"fontsize": 8},
    )
    path = folder / "posterior_corner.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def calibration_fit(
    times: np.ndarray,
    data: np.ndarray,
    noise: np.ndarray,
    band: np.ndarray,
    column: str,
    folder: Path,
) -> Path:
    """Data with their noise, and the 2.5-97.5 % band of the model at the posterior samples."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 3.4))
    axis.fill_between(times, band[0], band[2], alpha=0.3, label="model, 95 % band")
    axis.plot(times, band[1], "-", label="model, median")
    axis.errorbar(times, data, yerr=noise, fmt="o", markersize=3, capsize=2, label="data")
    axis.set_xlabel("time [s]")
    axis.set_ylabel(column, fontsize=8)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path = folder / "calibration_fit.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
