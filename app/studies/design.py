"""Designs: the parameter values each member of a study runs with.

Every method draws points u of the unit cube [0, 1]^d (SALib's Saltelli and Morris samplers;
chaospy's random, latin hypercube and Sobol' rules) and maps each coordinate through its
parameter's inverse distribution function (chaospy), so the inputs are independent with the
marginals the study file gives. A list of values takes item floor(u n). A grid takes every
combination of each parameter's values or levels. The design depends only on the study file
(the seed included), so every rank, and a resumed study, computes the same one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.studies.spec import PLACEHOLDER, ParameterSpec, StudySpec

# Screening and surrogate designs cover unbounded distributions between these quantiles.
TAIL = 0.005


@dataclass
class Design:
    """The members of a study.

    Attributes:
        names: Parameter names (the study's keys), in order.
        unit: Points of the unit cube, one row per member (None for a grid).
        values: Each member's parameter values by name.
    """

    names: list[str]
    unit: np.ndarray | None
    values: list[dict[str, Any]]

    def column(self, name: str) -> np.ndarray:
        return np.array([member[name] for member in self.values], dtype=float)


def marginal(spec: ParameterSpec) -> Any:
    """The chaospy distribution of a parameter (not for a list of values)."""
    import chaospy

    match spec.distribution:
        case "uniform":
            return chaospy.Uniform(spec.lower, spec.upper)
        case "loguniform":  # chaospy takes the bounds of ln(value)
            return chaospy.LogUniform(math.log(spec.lower), math.log(spec.upper))
        case "normal":
            return chaospy.Normal(spec.mean, spec.std)
        case "lognormal":
            return chaospy.LogNormal(spec.mu, spec.sigma)
        case "truncated_normal":
            return chaospy.TruncNormal(spec.lower, spec.upper, spec.mean, spec.std)
    raise ValueError(f"{spec!r} has no distribution")


def from_unit(spec: ParameterSpec, u: np.ndarray) -> list[Any]:
    """Parameter values at unit-cube coordinates ``u`` (inverse distribution function)."""
    if spec.values is not None:
        count = len(spec.values)
        return [spec.values[min(int(x * count), count - 1)] for x in u]
    return [float(x) for x in np.atleast_1d(marginal(spec).inv(u))]


def screened(spec: ParameterSpec, u: np.ndarray) -> np.ndarray:
    """Unit coordinates squeezed into the 0.5 %-99.5 % quantiles of an unbounded distribution
    (screening designs and surrogates need finite ends)."""
    return u if spec.bounded else TAIL + (1 - 2 * TAIL) * u


def make_design(spec: StudySpec) -> Design:
    """The members the study's method asks for."""
    method, names = spec.method, list(spec.parameters)
    parameters = [spec.parameters[name] for name in names]
    match method.type:
        case "grid":
            return _grid(names, parameters, method.levels)
        case "saltelli":
            from SALib.sample import sobol

            unit = sobol.sample(
                unit_problem(names),
                method.samples,
                calc_second_order=method.second_order,
                seed=spec.seed,
            )
        case "morris":
            from SALib.sample import morris

            unit = morris.sample(
                unit_problem(names), method.trajectories, num_levels=method.levels, seed=spec.seed
            )
            return from_unit_points(names, parameters, unit, screen=True)
        case "monte_carlo" | "latin_hypercube" | "sobol_sequence":
            rule = {"monte_carlo": "random", "sobol_sequence": "sobol"}.get(
                method.type, method.type
            )
            unit = unit_sample(len(names), method.samples, rule, spec.seed)
        case "polynomial_chaos":
            unit = unit_sample(len(names), chaos_samples(spec), "sobol", spec.seed)
        case "calibration":
            unit = unit_sample(len(names), method.design, "latin_hypercube", spec.seed)
            return from_unit_points(names, parameters, unit, screen=True)
    return from_unit_points(names, parameters, unit)


def from_unit_points(
    names: list[str], parameters: list[ParameterSpec], unit: np.ndarray, screen: bool = False
) -> Design:
    """Members at unit-cube points (``screen``: unbounded marginals within their 0.5 % and
    99.5 % quantiles; ``Design.unit`` keeps the points as drawn)."""
    columns = [
        from_unit(p, screened(p, unit[:, i]) if screen else unit[:, i])
        for i, p in enumerate(parameters)
    ]
    values = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    return Design(names, unit, values)


def unit_sample(dimension: int, count: int, rule: str, seed: int) -> np.ndarray:
    """``count`` points of the unit cube by a chaospy sampling rule, one row per point."""
    import chaospy

    cube = chaospy.J(*[chaospy.Uniform(0, 1) for _ in range(dimension)])
    return np.asarray(cube.sample(count, rule=rule, seed=seed)).reshape(dimension, count).T


def unit_problem(names: list[str]) -> dict[str, Any]:
    """A SALib problem on the unit cube (designs map it to the marginals)."""
    return {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}


def chaos_samples(spec: StudySpec) -> int:
    """Collocation points of a polynomial chaos study (default: twice the number of terms)."""
    method = spec.method
    terms = math.comb(len(spec.parameters) + method.order, method.order)
    return method.samples or 2 * terms


def _grid(names: list[str], parameters: list[ParameterSpec], levels: int) -> Design:
    axes = []
    for parameter in parameters:
        if parameter.values is not None:
            axes.append(list(parameter.values))
        else:
            if parameter.bounded:
                unit = np.linspace(0.0, 1.0, levels)
            else:
                unit = (np.arange(levels) + 0.5) / levels
            axes.append(from_unit(parameter, unit))
    values = [
        dict(zip(names, combination, strict=True)) for combination in itertools.product(*axes)
    ]
    return Design(names, None, values)


def member_overrides(spec: StudySpec, values: dict[str, Any]) -> dict[str, Any]:
    """The case overrides of a member: the study's overrides and its parameter values."""
    overrides = dict(spec.overrides)
    for name, parameter in spec.parameters.items():
        path = spec.path_of(name)
        if parameter.expression is None:
            overrides[path] = values[name]
        else:  # parenthesised: a negative value stays one number inside the expression
            overrides[path] = PLACEHOLDER.sub(
                lambda match: f"({values[match.group(1)]!r})", parameter.expression
            )
    return overrides
