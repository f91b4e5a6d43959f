"""Study files: the schema, validated like a case file.

A study varies the values of one case file and reduces each run to a few numbers::

    title = "Heated rod: Sobol indices of the heat flow"
    case = "../heated_rod.toml"            # relative to the study file
    seed = 7
    ranks_per_member = 1                   # each member runs on a group of this many ranks

    [overrides]                            # applied to every member, like --set
    "mesh.cells" = [16]

    [parameters."physics.heat.conductivity"]          # the dotted path --set takes
    distribution = "uniform"
    lower = 10.0
    upper = 20.0

    [parameters.k]                         # a number inside an expression: {k} is replaced
    path = "physics.mass_transport.species.c.source"
    expression = "-{k}*c"
    values = [0.5, 1.0, 2.0]

    [quantities.flow]                      # a quantities.csv column reduced to one number
    column = "heat_flow_left_W_per_m2"
    reduce = "final"

    [method]
    type = "saltelli"
    samples = 256

Distribution parameters are SI numbers. Errors are :class:`~app.errors.CaseError` located by
their dotted path in the study file; :mod:`app.studies.checks` then checks the study against
its case before any member runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from app.case import validate
from app.errors import CaseError
from app.parameters import Parameters, one_of, quantity
from app.toml_files import read_toml

# The arguments each distribution takes (SI values of the parameter).
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "uniform": ("lower", "upper"),
    "loguniform": ("lower", "upper"),
    "normal": ("mean", "std"),
    "lognormal": ("mu", "sigma"),
    "truncated_normal": ("mean", "std", "lower", "upper"),
}
_ARGUMENTS = ("lower", "upper", "mean", "std", "mu", "sigma")
#: How many standard deviations from its mean a truncated normal's interval may start. chaospy's
#: TruncNormal inverts its distribution function to 1e-5 std there, 0.6 std at 8 and returns
#: one value outside the interval beyond (measured against scipy.stats.truncnorm).
TRUNCATION_REACH = 6.0
_SPEC_KEYS = {"distribution", "values", "path", "expression"}
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


class ParameterSpec(Parameters):
    """A varied value of the case: a distribution or a list of values."""

    model_config = Parameters.model_config | ConfigDict(allow_inf_nan=False)

    path: str | None = Field(None, description="Dotted case path (default: the table's key)")
    expression: str | None = Field(
        None,
        description="Text the path is set to, each {name} replaced by that parameter's value "
        "(a number inside an expression); parameters that share a path share the text",
    )
    distribution: (
        Literal["uniform", "loguniform", "normal", "lognormal", "truncated_normal"] | None
    ) = Field(None, description="Distribution of the value (SI numbers)")
    lower: float | None = Field(None, description="Lower bound (uniform, loguniform, truncated)")
    upper: float | None = Field(None, description="Upper bound (uniform, loguniform, truncated)")
    mean: float | None = Field(None, description="Mean (normal; truncated: before truncation)")
    std: float | None = Field(None, gt=0, description="Standard deviation (normal, truncated)")
    mu: float | None = Field(None, description="Mean of ln(value) (lognormal)")
    sigma: float | None = Field(None, gt=0, description="Standard deviation of ln(value)")
    values: list[Any] | None = Field(None, min_length=1, description="The values to take")

    @model_validator(mode="after")
    def _one_kind(self) -> ParameterSpec:
        if (self.distribution is None) == (self.values is None):
            raise ValueError(
                "give either a distribution (distribution = "
                f"{' | '.join(repr(d) for d in DISTRIBUTIONS)}, with its arguments) or a list of "
                "values (values = [...]), not both or neither"
            )
        return self

    @model_validator(mode="after")
    def _arguments(self) -> ParameterSpec:
        wanted = DISTRIBUTIONS.get(self.distribution or "", ())
        given = [name for name in _ARGUMENTS if getattr(self, name) is not None]
        missing = [name for name in wanted if name not in given]
        extra = [name for name in given if name not in wanted]
        if missing or extra:
            kind = self.distribution or "a list of values"
            takes = f"takes {', '.join(wanted)}" if wanted else "takes no distribution arguments"
            problems = [f"{', '.join(missing)} missing"] * bool(missing)
            problems += [f"remove {', '.join(extra)}"] * bool(extra)
            raise ValueError(f"{kind} {takes}: {'; '.join(problems)}")
        return self

    @model_validator(mode="after")
    def _ordered_bounds(self) -> ParameterSpec:
        if self.lower is not None and self.upper is not None and not self.lower < self.upper:
            raise ValueError(f"lower ({self.lower:g}) must be below upper ({self.upper:g})")
        if self.distribution == "loguniform" and self.lower is not None and self.lower <= 0:
            raise ValueError(f"loguniform needs lower > 0, got {self.lower:g}")
        return self

    @model_validator(mode="after")
    def _truncation_within_reach(self) -> ParameterSpec:
        if self.distribution != "truncated_normal" or self.std is None:
            return self
        distance = max(self.lower - self.mean, self.mean - self.upper) / self.std
        if distance > TRUNCATION_REACH:
            raise ValueError(
                f"the interval [{self.lower:g}, {self.upper:g}] lies {distance:.3g} standard "
                f"deviations from the mean {self.mean:g}, where the normal's probability is "
                f"below 1e-9 and the truncated normal cannot be sampled (at most "
                f"{TRUNCATION_REACH:g}); give a uniform distribution over the interval, or a "
                "mean and std that reach it"
            )
        return self

    @property
    def bounded(self) -> bool:
        """Whether the distribution has a finite range (a list of values always has)."""
        return self.distribution not in ("normal", "lognormal")


class QuantitySpec(Parameters):
    """A quantities.csv column reduced to one number per member."""

    model_config = Parameters.model_config | ConfigDict(allow_inf_nan=False)

    column: str | None = Field(None, description="quantities.csv column (not for end_time)")
    reduce: Literal["final", "max", "min", "mean", "integral", "at", "crossing", "end_time"] = (
        Field(
            "final",
            description="final value, max, min, time average (mean), time integral, value at "
            "a time (at), first time the column crosses a level (crossing), or the time the run "
            "ended (end_time: the end, or when an event stopped it)",
        )
    )
    time: float | None = quantity("s", None, "Time of reduce = 'at'")
    level: float | None = Field(None, description="Level of reduce = 'crossing'")

    @model_validator(mode="after")
    def _column_given(self) -> QuantitySpec:
        if self.reduce != "end_time" and self.column is None:
            raise ValueError(f"reduce = '{self.reduce}' needs a column")
        return self

    @model_validator(mode="after")
    def _time_for_at(self) -> QuantitySpec:
        if (self.reduce == "at") != (self.time is not None):
            raise ValueError("reduce = 'at' takes a time, and only it does")
        return self

    @model_validator(mode="after")
    def _level_for_crossing(self) -> QuantitySpec:
        if (self.reduce == "crossing") != (self.level is not None):
            raise ValueError("reduce = 'crossing' takes a level, and only it does")
        return self


class GridMethod(Parameters):
    """Every combination of the parameters' values (a full factorial sweep)."""

    type: Literal["grid"]
    levels: int = Field(
        5,
        ge=2,
        description="Points per distribution: evenly spaced over a bounded range, at evenly "
        "spaced probabilities otherwise (lists of values give their own)",
    )


class MonteCarloMethod(Parameters):
    """Uncertainty propagation: random samples of the joint distribution, statistics of each
    quantity."""

    type: Literal["monte_carlo"]
    samples: int = Field(ge=2, description="Number of members")


class LatinHypercubeMethod(MonteCarloMethod):
    """Uncertainty propagation with a latin hypercube: each parameter's range in equal-
    probability strata, one sample per stratum."""

    type: Literal["latin_hypercube"]


class SobolSequenceMethod(MonteCarloMethod):
    """Uncertainty propagation with a Sobol' low-discrepancy sequence (quasi-Monte Carlo)."""

    type: Literal["sobol_sequence"]


class SaltelliMethod(Parameters):
    """Sobol' indices by Saltelli's scheme (SALib): samples * (d + 2) members for d parameters
    (samples * (2d + 2) with second-order indices)."""

    type: Literal["saltelli"]
    samples: int = Field(ge=2, description="Base sample count N (a power of 2)")
    second_order: bool = Field(False, description="Also the second-order indices")
    bootstrap: int = Field(1000, ge=10, description="Bootstrap resamples of the intervals")
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals")

    @model_validator(mode="after")
    def _power_of_two(self) -> SaltelliMethod:
        if self.samples & (self.samples - 1):
            raise ValueError(
                f"samples must be a power of 2 (Sobol' sequence balance), got {self.samples}"
            )
        return self


class MorrisMethod(Parameters):
    """Morris elementary-effects screening (SALib): trajectories * (d + 1) members. Unbounded
    distributions are screened between their 0.5 % and 99.5 % quantiles."""

    type: Literal["morris"]
    trajectories: int = Field(10, ge=2, description="Number of trajectories r")
    levels: int = Field(4, ge=2, description="Grid levels p (even)")
    bootstrap: int = Field(1000, ge=10, description="Bootstrap resamples of the intervals")
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals")

    @model_validator(mode="after")
    def _even_levels(self) -> MorrisMethod:
        if self.levels % 2:
            raise ValueError(f"levels must be even, got {self.levels}")
        return self


class ChaosMethod(Parameters):
    """Polynomial chaos expansion by point collocation (chaospy): mean, standard deviation and
    Sobol' indices from the expansion."""

    type: Literal["polynomial_chaos"]
    order: int = Field(2, ge=1, le=10, description="Total polynomial order")
    samples: int | None = Field(
        None, ge=2, description="Collocation points (default: twice the number of terms)"
    )


class CalibrationMethod(Parameters):
    """Bayesian calibration (emcee): the parameters' distributions are the priors; the case's
    column is compared with measured data at the measured times, with Gaussian noise."""

    model_config = Parameters.model_config | ConfigDict(allow_inf_nan=False)

    type: Literal["calibration"]
    data: str = Field(description="CSV file of measurements (relative to the study file)")
    column: str = Field(description="quantities.csv column the data measure")
    data_column: str | None = Field(None, description="Column in the data file (default: column)")
    time_column: str = Field("time_s", description="Time column of the data file [s]")
    noise: float | None = Field(None, gt=0, description="Standard deviation of the noise")
    noise_column: str | None = Field(None, description="Data column with the noise per point")
    sampler: Literal["surrogate", "direct"] = Field(
        "surrogate",
        description="MCMC on a Gaussian-process surrogate trained on design runs, or on direct "
        "runs of the case (one run per walker and step)",
    )
    design: int = Field(40, ge=4, description="Design runs (latin hypercube) for the surrogate")
    walkers: int = Field(16, ge=4, description="emcee walkers (at least twice the parameters)")
    steps: int = Field(2000, ge=10, description="Steps per walker")
    burn: int = Field(500, ge=0, description="Steps discarded at the start of each chain")

    @model_validator(mode="after")
    def _one_noise(self) -> CalibrationMethod:
        if (self.noise is None) == (self.noise_column is None):
            raise ValueError("give the noise level as noise = <std> or noise_column = <name>")
        return self

    @model_validator(mode="after")
    def _burn_in_chain(self) -> CalibrationMethod:
        if self.burn >= self.steps:
            raise ValueError(f"burn ({self.burn}) must be below steps ({self.steps})")
        return self


Method = one_of(
    GridMethod,
    MonteCarloMethod,
    LatinHypercubeMethod,
    SobolSequenceMethod,
    SaltelliMethod,
    MorrisMethod,
    ChaosMethod,
    CalibrationMethod,
)


class StudySpec(Parameters):
    """A whole study file."""

    title: str = Field("", description="One-line title")
    description: str = Field("", description="What the study shows")
    case: str = Field(description="The case file it varies (relative to the study file)")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Case values set for every member, like --set"
    )
    parameters: dict[str, ParameterSpec] = Field(
        min_length=1, description="Varied values by dotted case path (or by name with a path)"
    )
    quantities: dict[str, QuantitySpec] = Field(
        default_factory=dict, description="Numbers taken from each member's quantities"
    )
    method: Method = Field(description="How the members are chosen and analysed")
    seed: int = Field(0, ge=0, description="Seed of every random choice")
    ranks_per_member: int = Field(1, ge=1, description="MPI ranks of each member's group")
    output: str | None = Field(None, description="Study folder (default: results/<study name>)")
    keep_runs: bool = Field(False, description="Write each member's run folder (members/)")
    reuse: bool = Field(
        True,
        description="Run members that differ only in constant parameters on the group's built "
        "simulation (new constant values, no rebuild); checked once against a fresh build",
    )

    def path_of(self, name: str) -> str:
        return self.parameters[name].path or name


def load_study(path: Path) -> StudySpec:
    """Read and validate a study file (CaseError located in the study file)."""
    raw = read_toml(path, what="study file")
    if "case" not in raw and raw.keys() & {"mesh", "physics"}:
        raise CaseError(
            "case",
            "this is a case file ([mesh], [physics]), not a study",
            f"run it with: scalebridge run {path}; a study names it: case = '{path.name}'",
        )
    if isinstance(raw.get("parameters"), Mapping):
        raw["parameters"] = _flatten(raw["parameters"], "parameters")
    if isinstance(raw.get("quantities"), list):  # shorthand: final values of these columns
        raw["quantities"] = {str(column): {"column": column} for column in raw["quantities"]}
    spec = validate(StudySpec, raw, "")
    _check_expressions(spec)
    return spec


def _flatten(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Parameter tables by dotted path, also when TOML nested an unquoted dotted key."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{where}.{key}"
        if not isinstance(value, Mapping):
            raise CaseError(path, f"expected a table with a distribution or values, got {value!r}")
        if _SPEC_KEYS & value.keys() or not all(isinstance(v, Mapping) for v in value.values()):
            flat[key] = value
        else:
            flat |= {f"{key}.{inner}": item for inner, item in _flatten(value, path).items()}
    return flat


def _check_expressions(spec: StudySpec) -> None:
    """Every {name} names a parameter; parameters setting one path agree on its text."""
    texts: dict[str, tuple[str, str | None]] = {}
    for name, parameter in spec.parameters.items():
        where, path = f"parameters.{name}", spec.path_of(name)
        if parameter.expression is not None:
            for placeholder in PLACEHOLDER.findall(parameter.expression):
                if placeholder not in spec.parameters:
                    raise CaseError(
                        f"{where}.expression",
                        f"{{{placeholder}}} is not a parameter of the study",
                        f"use one of {', '.join('{' + n + '}' for n in spec.parameters)}",
                    )
            if f"{{{name}}}" not in parameter.expression:
                raise CaseError(f"{where}.expression", f"does not use its own value {{{name}}}")
        if path in texts:
            text, other = texts[path]
            if parameter.expression is None or text != parameter.expression:
                raise CaseError(
                    where,
                    f"sets '{path}', as parameter '{other}' does",
                    "parameters that share a path give it the same expression, which uses both",
                )
        texts[path] = (parameter.expression, name)
