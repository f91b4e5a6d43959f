"""Statistics of a finished study, by the field's libraries, written to the study folder.

- every method: ``statistics.csv``, per quantity the completed members' mean, standard
  deviation, extremes and 5/50/95 % percentiles (uncertainty propagation for the sampling
  methods);
- ``saltelli``: ``sobol_indices.csv``/``.json``, first-order and total Sobol' indices with
  bootstrap confidence intervals (SALib ``sobol.analyze``; second order when asked);
- ``morris``: ``morris_indices.csv``, mu, mu*, its bootstrap interval, sigma and the rank by mu*
  (SALib ``morris.analyze``; elementary effects per unit of each parameter's screened range);
- ``polynomial_chaos``: ``chaos.csv`` (mean and standard deviation from the expansion, relative
  residual at the collocation points) and ``sobol_indices.csv`` (chaospy ``Sens_m``/``Sens_t``).

Indices need every member: a quantity with failed members (or NaN values) is reported as such
and left out of the indices.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from app.studies.design import Design, marginal, unit_problem
from app.studies.spec import StudySpec
from app.studies.table import StudyTable


def analyse(spec: StudySpec, design: Design, table: StudyTable, folder: Path) -> dict[str, Any]:
    """Write the method's statistics; returns them (also for the Python API)."""
    results: dict[str, Any] = {"statistics": statistics(table)}
    _write_rows(folder / "statistics.csv", results["statistics"])
    complete, skipped = _complete_quantities(table)
    results["skipped"] = skipped
    match spec.method.type:
        case "saltelli":
            results["sobol"] = {q: _saltelli(spec, table.quantities[q]) for q in complete}
            _write_sobol(folder, design.names, results["sobol"])
        case "morris":
            results["morris"] = {q: _morris(spec, design, table.quantities[q]) for q in complete}
            _write_rows(
                folder / "morris_indices.csv", _morris_rows(design.names, results["morris"])
            )
        case "polynomial_chaos":
            results["chaos"] = {q: _chaos(spec, design, table.quantities[q]) for q in complete}
            _write_rows(
                folder / "chaos.csv",
                [
                    {"quantity": q, **{k: r[k] for k in ("mean", "std", "residual")}}
                    for q, r in results["chaos"].items()
                ],
            )
            _write_sobol(folder, design.names, results["chaos"])
    return results


def statistics(table: StudyTable) -> list[dict[str, Any]]:
    rows = []
    for name, values in table.quantities.items():
        finite = values[np.isfinite(values)]
        row: dict[str, Any] = {"quantity": name, "members": len(values), "values": finite.size}
        if finite.size:
            p05, p50, p95 = np.percentile(finite, [5, 50, 95])
            row |= {
                "mean": float(finite.mean()),
                "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
                "min": float(finite.min()),
                "p05": float(p05),
                "median": float(p50),
                "p95": float(p95),
                "max": float(finite.max()),
            }
        rows.append(row)
    return rows


def _complete_quantities(table: StudyTable) -> tuple[list[str], dict[str, str]]:
    complete, skipped = [], {}
    failed = int((~table.completed).sum())
    for name, values in table.quantities.items():
        missing = int((~np.isfinite(values)).sum())
        if missing:
            skipped[name] = (
                f"{missing} of {len(values)} members have no value ({failed} failed runs); "
                "indices need every member"
            )
        else:
            complete.append(name)
    return complete, skipped


def _saltelli(spec: StudySpec, values: np.ndarray) -> dict[str, Any]:
    from SALib.analyze import sobol

    method = spec.method
    indices = sobol.analyze(
        unit_problem(list(spec.parameters)),
        values,
        calc_second_order=method.second_order,
        num_resamples=method.bootstrap,
        conf_level=method.confidence,
        seed=spec.seed,
    )
    result = {key: np.asarray(indices[key]).tolist() for key in ("S1", "S1_conf", "ST", "ST_conf")}
    if method.second_order:
        result |= {key: np.asarray(indices[key]).tolist() for key in ("S2", "S2_conf")}
    return result


def _morris(spec: StudySpec, design: Design, values: np.ndarray) -> dict[str, Any]:
    from SALib.analyze import morris

    method = spec.method
    indices = morris.analyze(
        unit_problem(design.names),
        design.unit,
        values,
        num_resamples=method.bootstrap,
        conf_level=method.confidence,
        num_levels=method.levels,
        seed=spec.seed,
    )
    result = {k: np.asarray(indices[k], dtype=float).tolist() for k in ("mu", "mu_star", "sigma")}
    result["mu_star_conf"] = np.asarray(indices["mu_star_conf"], dtype=float).tolist()
    order = np.argsort(-np.asarray(result["mu_star"]), kind="stable")
    result["rank"] = (np.argsort(order) + 1).tolist()  # 1: the most influential
    return result


def _chaos(spec: StudySpec, design: Design, values: np.ndarray) -> dict[str, Any]:
    import chaospy

    joint = chaospy.J(*[marginal(spec.parameters[name]) for name in design.names])
    expansion = chaospy.generate_expansion(spec.method.order, joint, normed=True)
    points = np.array([design.column(name) for name in design.names])
    model = chaospy.fit_regression(expansion, points, values)
    fitted = np.asarray(model(*points), dtype=float)
    scale = max(float(np.std(values)), 1e-300)
    return {
        "mean": float(chaospy.E(model, joint)),
        "std": float(chaospy.Std(model, joint)),
        "residual": float(np.sqrt(np.mean((fitted - values) ** 2)) / scale),
        "S1": np.atleast_1d(chaospy.Sens_m(model, joint)).astype(float).tolist(),
        "ST": np.atleast_1d(chaospy.Sens_t(model, joint)).astype(float).tolist(),
    }


def _write_sobol(folder: Path, names: list[str], indices: dict[str, dict[str, Any]]) -> None:
    rows = []
    for quantity, result in indices.items():
        for i, name in enumerate(names):
            row = {"quantity": quantity, "parameter": name, "S1": result["S1"][i]}
            row["S1_conf"] = result["S1_conf"][i] if "S1_conf" in result else ""
            row["ST"] = result["ST"][i]
            row["ST_conf"] = result["ST_conf"][i] if "ST_conf" in result else ""
            rows.append(row)
    _write_rows(folder / "sobol_indices.csv", rows)
    (folder / "sobol_indices.json").write_text(
        json.dumps({"parameters": names, "indices": indices}, indent=2) + "\n"
    )


def _morris_rows(names: list[str], indices: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"quantity": quantity, "parameter": name}
        | {key: result[key][i] for key in ("mu", "mu_star", "mu_star_conf", "sigma", "rank")}
        for quantity, result in indices.items()
        for i, name in enumerate(names)
    ]


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
