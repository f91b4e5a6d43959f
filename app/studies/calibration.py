"""Bayesian calibration: the posterior of a study's parameters given measured data.

The data are a CSV of times and values of one quantities.csv column, with a noise level
(Gaussian, independent). The study's distributions are the priors. Each member writes the
column at the measured times (they are added to the case's output times, so the run lands on
them), and

    log p(theta | data) = log prior(theta)
                          - 1/2 sum_i [(y_i - m_i(theta))^2 / s_i^2 + log(2 pi s_i^2)]

is sampled with emcee's affine-invariant ensemble sampler, either

- on direct runs (``sampler = "direct"``): one member per walker and step, walkers x (steps + 1)
  runs, the walkers of each half-step spread over the groups of ranks; or
- on a surrogate (``sampler = "surrogate"``): a scikit-learn Gaussian process (Matern 5/2 plus
  a white-noise term, one kernel for all measured times) trained on ``design`` runs of a latin
  hypercube over the priors (in the priors' probability coordinates), its predictive variance
  added to the noise, s_i^2 = noise_i^2 + sigma_GP,i^2(theta). Cost: ``design`` runs; the chain
  itself costs Gaussian-process predictions only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import CaseError
from app.studies.design import marginal
from app.studies.spec import CalibrationMethod, QuantitySpec, StudySpec
from app.toml_files import read_text
from app.units import compatible, si_factor


@dataclass
class Data:
    """Measurements: times [s], values and the standard deviation of each value's noise."""

    times: np.ndarray
    values: np.ndarray
    noise: np.ndarray


def read_data(method: CalibrationMethod, study_dir: Path) -> Data:
    """The measured CSV (CaseError at ``method.data`` and friends when it is unusable).

    A spreadsheet's habits are read as meant: a byte-order mark, blank lines, spaces around
    the names of the header. A time column named with a unit in brackets (``time [h]``,
    ``t (min)``) is in that unit; without one it is in seconds.
    """
    path = (study_dir / method.data).resolve()
    text = read_text(path, "method.data", "data file", "a CSV of numbers")
    rows = [
        (reader.line_num, row)
        for reader in [csv.reader(io.StringIO(text, newline=""))]
        for row in reader
        if any(cell.strip() for cell in row)
    ]
    if not rows:
        raise CaseError(
            "method.data",
            f"{path.name} is empty",
            "write a header line naming the columns, then one line of numbers per time",
        )
    header = [name.strip() for name in rows[0][1]]
    wanted = {"time_column": method.time_column, "data_column": method.data_column or method.column}
    if method.noise_column:
        wanted["noise_column"] = method.noise_column
    columns = {}
    for key, name in wanted.items():
        if name.strip() not in header:
            raise CaseError(
                f"method.{key}",
                f"'{name}' is not a column of {path.name} (it has {', '.join(header)})",
                "name a column of the file's first line (values separated by commas)",
            )
        columns[key] = _numbers(rows[1:], header.index(name.strip()), path, name)
    times = columns["time_column"] * _seconds_per_unit(method.time_column)
    if times.size == 0:
        raise CaseError("method.data", f"{path.name} holds no data rows")
    if np.any(np.diff(times) <= 0):
        raise CaseError("method.data", f"the times in {path.name} must increase strictly")
    noise = columns.get("noise_column", np.full(times.size, method.noise or 0.0))
    if np.any(noise <= 0):
        raise CaseError("method.noise_column", "noise levels must be positive")
    return Data(times, columns["data_column"], noise)


_UNIT_IN_NAME = re.compile(r".*?[\[(]\s*(?P<unit>[^\[\]()]+?)\s*[\])]\s*")


def _seconds_per_unit(time_column: str) -> float:
    """What one unit of the time column is in seconds: its unit in brackets, or 1."""
    named = _UNIT_IN_NAME.fullmatch(time_column)
    if named is None:
        return 1.0
    unit = named["unit"]
    try:
        right = compatible(unit, "s")
    except ValueError:
        right = False
    if not right:
        raise CaseError(
            "method.time_column",
            f"the time column '{time_column}' names the unit '{unit}', not a unit of time",
            "name the unit of the times in brackets, e.g. 'time [h]', or none for seconds",
        )
    return si_factor(unit)


def _numbers(rows: list[tuple[int, list[str]]], index: int, path: Path, name: str) -> np.ndarray:
    values = []
    for line, row in rows:
        try:
            value = float(row[index])
        except (ValueError, IndexError):
            raise CaseError(
                "method.data", f"{path.name} line {line}: {name} is not a number"
            ) from None
        if not math.isfinite(value):
            raise CaseError("method.data", f"{path.name} line {line}: {name} is {value}")
        values.append(value)
    return np.array(values)


def data_quantities(method: CalibrationMethod, data: Data) -> dict[str, QuantitySpec]:
    """The column at each measured time, as the quantities every member records."""
    return {
        f"{method.column}@{t!r}": QuantitySpec(column=method.column, reduce="at", time=float(t))
        for t in data.times
    }


@dataclass
class Posterior:
    """An MCMC sample of the posterior and its summary.

    Attributes:
        names: Parameter names.
        samples: Flat chain after burn-in, one row per sample.
        models: The model's values at the measured times for each sample (the surrogate's
            mean for a surrogate).
        acceptance: Mean acceptance fraction of the walkers.
        autocorrelation: Integrated autocorrelation time per parameter (steps; a chain should
            be tens of times longer).
        runs: Model runs the calibration needed.
        wall_time: Seconds for the runs and the chain.
        sampler: "direct" or "surrogate".
    """

    names: list[str]
    samples: np.ndarray
    models: np.ndarray
    acceptance: float
    autocorrelation: np.ndarray
    runs: int
    wall_time: float
    sampler: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> np.ndarray:
        return self.samples.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return self.samples.std(axis=0, ddof=1)

    def interval(self, level: float = 0.95) -> np.ndarray:
        """Equal-tailed credible intervals, one row (low, high) per parameter."""
        tail = 50 * (1 - level)
        return np.percentile(self.samples, [tail, 100 - tail], axis=0).T

    def summary(self) -> dict[str, Any]:
        low, high = self.interval().T
        return {
            "sampler": self.sampler,
            "runs": self.runs,
            "wall_time_s": round(self.wall_time, 3),
            "samples": int(self.samples.shape[0]),
            "acceptance_fraction": self.acceptance,
            "parameters": {
                name: {
                    "mean": float(self.mean[i]),
                    "std": float(self.std[i]),
                    "ci95_low": float(low[i]),
                    "ci95_high": float(high[i]),
                    "autocorrelation_steps": float(self.autocorrelation[i]),
                }
                for i, name in enumerate(self.names)
            },
        } | self.extra


class Priors:
    """The study's distributions as priors (independent)."""

    def __init__(self, spec: StudySpec):
        self.names = list(spec.parameters)
        self.marginals = [marginal(spec.parameters[name]) for name in self.names]

    def log_density(self, theta: np.ndarray) -> np.ndarray:
        """Log prior density of each row of ``theta`` (-inf outside the support)."""
        total = np.zeros(theta.shape[0])
        with np.errstate(divide="ignore"):
            for i, distribution in enumerate(self.marginals):
                total += np.log(np.asarray(distribution.pdf(theta[:, i]), dtype=float))
        return total

    def probabilities(self, theta: np.ndarray) -> np.ndarray:
        """Each coordinate's prior distribution function: the surrogate's inputs in [0, 1]."""
        return np.column_stack(
            [np.asarray(d.fwd(theta[:, i]), dtype=float) for i, d in enumerate(self.marginals)]
        )

    def sample(self, count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        unit = rng.uniform(size=(count, len(self.names)))
        return np.column_stack(
            [np.asarray(d.inv(unit[:, i]), dtype=float) for i, d in enumerate(self.marginals)]
        )


def log_likelihood(model: np.ndarray, variance: np.ndarray, data: Data) -> np.ndarray:
    """Gaussian log likelihood of model values (one row per parameter point); NaN rows (failed
    runs) get -inf."""
    residual = data.values - model
    value = -0.5 * np.sum(residual**2 / variance + np.log(2 * np.pi * variance), axis=1)
    return np.where(np.isfinite(value), value, -np.inf)


Target = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def sample_posterior(
    log_probability: Target, priors: Priors, method: CalibrationMethod, seed: int
) -> dict[str, Any]:
    """Run emcee, walkers started from the prior. ``log_probability`` maps points (rows) to
    their log posterior and the model's values at the measured times (kept with each state of
    the chain as emcee "blobs"). Returns the flat chain after burn-in, its model values, the
    mean acceptance fraction and the autocorrelation times."""
    import emcee

    def target(theta: np.ndarray) -> list[tuple[float, np.ndarray]]:
        values, models = log_probability(theta)
        return list(zip(values, models, strict=True))

    dimension = len(priors.names)
    sampler = emcee.EnsembleSampler(method.walkers, dimension, target, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()
    sampler.run_mcmc(priors.sample(method.walkers, seed), method.steps)
    return {
        "samples": sampler.get_chain(discard=method.burn, flat=True),
        "models": sampler.get_blobs(discard=method.burn, flat=True),
        "acceptance": float(np.mean(sampler.acceptance_fraction)),
        "autocorrelation": sampler.get_autocorr_time(discard=method.burn, quiet=True, tol=0),
    }


class Surrogate:
    """A Gaussian process of the measured column at the measured times, over the priors'
    probability coordinates (so every input lies in [0, 1])."""

    def __init__(self, priors: Priors, points: np.ndarray, outputs: np.ndarray, seed: int):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        dimension = points.shape[1]
        kernel = ConstantKernel(1.0, (1e-3, 1e6)) * Matern(
            [0.3] * dimension, (1e-2, 1e3), nu=2.5
        ) + WhiteKernel(1e-6, (1e-12, 1e-1))
        self.priors = priors
        self.model = GaussianProcessRegressor(
            kernel, normalize_y=True, n_restarts_optimizer=4, random_state=seed
        )
        with warnings.catch_warnings():
            # Restarts from random hyperparameters may stop early; the best fit is kept.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(priors.probabilities(points), outputs)

    def predict(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the column at the measured times, one row per point."""
        mean, std = self.model.predict(self.priors.probabilities(theta), return_std=True)
        return mean.reshape(theta.shape[0], -1), (std**2).reshape(theta.shape[0], -1)


def calibrate_on_surrogate(
    spec: StudySpec, data: Data, points: np.ndarray, outputs: np.ndarray, run_time: float
) -> Posterior:
    """Posterior from MCMC on a Gaussian process trained on the design runs."""
    started = time.perf_counter()
    priors, method = Priors(spec), spec.method
    surrogate = Surrogate(priors, points, outputs, spec.seed)

    def log_probability(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prior = priors.log_density(theta)
        inside = np.isfinite(prior)
        result = np.full(theta.shape[0], -np.inf)
        models = np.full((theta.shape[0], data.times.size), np.nan)
        if inside.any():
            mean, variance = surrogate.predict(theta[inside])
            models[inside] = mean
            result[inside] = prior[inside] + log_likelihood(mean, data.noise**2 + variance, data)
        return result, models

    chain = sample_posterior(log_probability, priors, method, spec.seed)
    _, variance = surrogate.predict(chain["samples"].mean(axis=0, keepdims=True))
    return Posterior(
        priors.names,
        **chain,
        runs=len(points),
        wall_time=run_time + time.perf_counter() - started,
        sampler="surrogate",
        extra={
            "kernel": str(surrogate.model.kernel_),
            # Above about 0.3 the surrogate, not the data, limits the posterior: more design.
            "surrogate_sd_over_noise": float(np.max(np.sqrt(variance) / data.noise)),
        },
    )


def calibrate_directly(
    spec: StudySpec, data: Data, evaluate: Callable[[np.ndarray], np.ndarray]
) -> Posterior:
    """Posterior from MCMC whose every likelihood is a run: ``evaluate`` maps parameter points
    (rows) to the column at the measured times (NaN rows for failed runs); every rank calls
    this with the same seed, so all ranks follow the same chain."""
    started = time.perf_counter()
    priors, method = Priors(spec), spec.method
    runs = 0

    def log_probability(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal runs
        prior = priors.log_density(theta)
        inside = np.isfinite(prior)
        result = np.full(theta.shape[0], -np.inf)
        models = np.full((theta.shape[0], data.times.size), np.nan)
        if inside.any():
            models[inside] = evaluate(theta[inside])
            runs += int(inside.sum())
            variance = np.broadcast_to(data.noise**2, models[inside].shape)
            result[inside] = prior[inside] + log_likelihood(models[inside], variance, data)
        return result, models

    chain = sample_posterior(log_probability, priors, method, spec.seed)
    return Posterior(
        priors.names,
        **chain,
        runs=runs,
        wall_time=time.perf_counter() - started,
        sampler="direct",
    )


def write_posterior(folder: Path, posterior: Posterior, summary: dict[str, Any]) -> None:
    """posterior.json (the summary) and posterior_samples.csv (the chain after burn-in)."""
    (folder / "posterior.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (folder / "posterior_samples.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(posterior.names)
        writer.writerows(posterior.samples.tolist())
