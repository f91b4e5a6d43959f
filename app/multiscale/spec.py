"""The ``[surrogates.<name>]`` section of a case file: a microstructure, its state descriptors and
how its effective property is served to the macro model.

::

    [surrogates.mineral]
    microstructure = "../meshes/rve_inclusion.py"     # gmsh script with build(model, ...)
    parameters = { shape = "circle" }                  # fixed arguments of build()
    descriptors = { volume_fraction = "calcite" }      # arguments computed per cell from fields
    property = "conductivity"                          # or "elasticity"
    matrix = "1e-9 m^2/s"                              # the phases (region names of the cell)
    inclusion = "1e-11 m^2/s"
    tolerance = 0.005                                  # relative uncertainty that asks for an RVE
    design = { points = 4, range = { volume_fraction = [0.02, 0.1] } }

A plug-in property then reads it: ``diffusivity = { surrogate = "mineral" }``. Elastic phases
are tables: ``{ youngs_modulus = "1.5 GPa", poisson_ratio = 0.28 }`` or ``{ bulk_modulus =
..., shear_modulus = ... }``; an inclusion of 0 is a pore (the script must leave it unmeshed).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from app import units as _units
from app.contracts import Parameters
from app.errors import CaseError
from app.expressions import Expression, ExpressionError, parse

FRACTION = "volume_fraction"


class DesignSpec(Parameters):
    """The initial design of experiments: RVE solves before the run starts."""

    points: int = Field(4, ge=0, le=1000, description="Number of initial RVE solves")
    range: dict[str, list[float]] = Field(
        default_factory=dict,
        description="Range sampled per descriptor (default: its limits); e.g. "
        "{ volume_fraction = [0.02, 0.1] }",
    )

    @field_validator("range")
    @classmethod
    def _ordered(cls, ranges: dict[str, list[float]]) -> dict[str, list[float]]:
        return {name: _interval(name, values) for name, values in ranges.items()}


class SurrogateSpec(Parameters):
    """A microstructure whose effective property a surrogate serves (see the module)."""

    microstructure: str = Field(
        description="gmsh .py script with build(model, volume_fraction, ...) meshing a periodic "
        "unit cell with regions 'matrix' and 'inclusion' (relative to the case file)"
    )
    parameters: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="Fixed arguments of the script's build()"
    )
    descriptors: dict[str, str] = Field(
        default_factory=dict,
        description="Arguments of build() computed per cell: expressions of fields, x, y, z, t",
    )
    property: Literal["conductivity", "elasticity"] = Field(
        description="conductivity: any transport tensor (heat, diffusion, electric); "
        "elasticity: the isotropic stiffness (E, nu, K, G)"
    )
    matrix: float | str | dict[str, float | str] = Field(
        description="The matrix phase: a value with units (conductivity) or elastic moduli"
    )
    inclusion: float | str | dict[str, float | str] = Field(
        description="The inclusion phase, as the matrix; 0 for pores"
    )
    tolerance: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="Relative uncertainty above which a state gets an RVE, and "
        "the relative change of properties that makes a step retried",
    )
    design: DesignSpec = Field(default_factory=DesignSpec, description="Initial RVE solves")
    limits: dict[str, list[float]] = Field(
        default_factory=dict,
        description="Admissible range per descriptor (default for volume_fraction: the script's "
        "limits()); states beyond are clamped with a warning",
    )
    mesh_size: float = Field(0.05, gt=0, le=0.5, description="RVE cell size (cell edge = 1)")
    degree: int = Field(2, ge=1, le=2, description="Lagrange degree (and geometry order) of RVEs")
    boundary: Literal["periodic", "kinematic", "minimal"] = Field(
        "periodic", description="RVE boundary condition (kinematic/minimal bracket periodic)"
    )
    database: str | None = Field(
        None,
        description="JSON-lines file of earlier RVE solves to reuse (a run folder's "
        "surrogate_<name>.jsonl)",
    )
    refresh: bool = Field(True, description="Solve new RVEs where the surrogate is unsure")
    mode: Literal["surrogate", "direct"] = Field(
        "surrogate",
        description="direct: an RVE for every cell and step (the FE2 reference; "
        "identical states share one)",
    )
    coupling: Literal["auto", "explicit", "implicit"] = Field(
        "auto",
        description="Properties of a step from its start state (explicit) or its end "
        "state, iterated (implicit); auto: explicit for transient runs, implicit for steady",
    )
    iterations: int = Field(10, ge=1, description="Retries of a step before it counts as failed")
    batch: int = Field(4, ge=1, description="RVEs per refresh round (one per cluster of states)")
    cluster: float = Field(
        0.02, gt=0, le=1, description="States closer than this (in descriptor ranges) share an RVE"
    )
    ranks_per_rve: int = Field(1, ge=1, description="MPI ranks that solve one RVE together")

    @field_validator("descriptors")
    @classmethod
    def _expressions(cls, descriptors: dict[str, str]) -> dict[str, str]:
        for name, source in descriptors.items():
            if not name.isidentifier():
                raise ValueError(f"{name!r} is not an argument name of build()")
            try:
                parse(str(source))
            except ExpressionError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return descriptors

    @field_validator("matrix", "inclusion")
    @classmethod
    def _phase(cls, raw: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("property")
        if kind == "conductivity":
            conductivity_phase(raw)
        elif kind == "elasticity":
            elastic_phase(raw)
        return raw

    @field_validator("limits")
    @classmethod
    def _limits(cls, limits: dict[str, list[float]]) -> dict[str, list[float]]:
        return {name: _interval(name, values) for name, values in limits.items()}

    @model_validator(mode="after")
    def _consistent(self) -> SurrogateSpec:
        if FRACTION not in self.descriptors and FRACTION not in self.parameters:
            raise ValueError(
                f"the surrogate's backbone needs the {FRACTION}: give it in descriptors "
                "(computed from fields) or parameters (fixed)"
            )
        both = sorted(set(self.descriptors) & set(self.parameters))
        if both:
            raise ValueError(f"{both[0]} is both a descriptor and a fixed parameter")
        for name in [*self.design.range, *self.limits]:
            if name not in self.descriptors:
                raise ValueError(f"{name} in design.range or limits is not a descriptor")
        matrix, inclusion = self.phases()
        if np.min(matrix) <= 0:
            raise ValueError("the matrix must have a positive property (a pore is an inclusion)")
        if np.allclose(matrix, inclusion, rtol=1e-12, atol=0):
            raise ValueError("matrix and inclusion have the same property: nothing to homogenise")
        return self

    def phases(self) -> tuple[np.ndarray, np.ndarray]:
        """Matrix and inclusion in SI: a conductivity each, or (K, G) pairs."""
        raw = (self.matrix, self.inclusion)
        if self.property == "conductivity":
            return tuple(np.array([conductivity_phase(value)[0]]) for value in raw)
        return tuple(np.array(elastic_phase(value)) for value in raw)

    def units(self) -> str | None:
        """The unit the conductivity phases were given in (None: plain numbers, or elasticity)."""
        if self.property != "conductivity":
            return None
        return conductivity_phase(self.matrix)[1] or conductivity_phase(self.inclusion)[1]

    def expressions(self) -> dict[str, Expression]:
        return {name: parse(str(source)) for name, source in self.descriptors.items()}


def _interval(name: str, values: list[float]) -> list[float]:
    if len(values) != 2 or not all(math.isfinite(v) for v in values) or values[0] > values[1]:
        raise ValueError(f"{name}: give [low, high] with low <= high, got {values}")
    return [float(values[0]), float(values[1])]


# Phases ---------------------------------------------------------------------------------------
def conductivity_phase(raw: Any) -> tuple[float, str | None]:
    """A transport coefficient: (SI value, its unit or None for a plain number)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f'expected a value with units such as "1e-9 m^2/s", got {raw!r}')
    if isinstance(raw, str):
        quantity = _quantity(raw)
        value, unit = float(quantity.to_base_units().magnitude), f"{quantity.units:~}"
    else:
        value, unit = float(raw), None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a finite value >= 0, got {raw!r}")
    return value, unit


ELASTIC_PAIRS = (("youngs_modulus", "poisson_ratio"), ("bulk_modulus", "shear_modulus"))


def elastic_phase(raw: Any) -> tuple[float, float]:
    """Bulk and shear moduli (Pa) of a table of two isotropic constants; 0 is a pore."""
    if not isinstance(raw, dict):
        if not isinstance(raw, bool) and raw == 0:
            return 0.0, 0.0
        raise ValueError(
            'expected a table of moduli such as { youngs_modulus = "1.5 GPa", poisson_ratio = '
            f"0.3 }}, or 0 for a pore; got {raw!r}"
        )
    pair = next((p for p in ELASTIC_PAIRS if set(raw) == set(p)), None)
    if pair is None:
        raise ValueError(
            f"give exactly one pair: {' and '.join(ELASTIC_PAIRS[0])}, or "
            f"{' and '.join(ELASTIC_PAIRS[1])}; got {', '.join(sorted(raw)) or 'none'}"
        )
    first = _si(raw[pair[0]], "Pa", pair[0])
    second = _si(raw[pair[1]], "dimensionless" if pair[1] == "poisson_ratio" else "Pa", pair[1])
    if pair[0] == "youngs_modulus":
        if not (first > 0 and -1 < second < 0.5):
            raise ValueError(f"need E > 0 and -1 < nu < 0.5, got E = {first:g}, nu = {second:g}")
        return first / (3 * (1 - 2 * second)), first / (2 * (1 + second))
    if not (first > 0 and second > 0):
        raise ValueError(f"need K > 0 and G > 0, got K = {first:g}, G = {second:g}")
    return first, second


def si_value(raw: Any, unit: str) -> float:
    """A number (already SI) or a string with units, in SI.

    Raises:
        ValueError: Not a number, not finite, or units of another dimension.
    """
    try:
        return _units.to_si(raw, unit, "")
    except CaseError as exc:
        raise ValueError(exc.problem) from None


def _si(raw: Any, unit: str, key: str) -> float:
    try:
        value = _units.to_si(raw, unit, key)
    except CaseError as exc:
        raise ValueError(f"{key}: {exc.problem}") from None
    if not math.isfinite(value):
        raise ValueError(f"{key}: must be finite, got {raw!r}")
    return value


def _quantity(text: str) -> Any:
    try:
        return _units.registry().Quantity(text)
    except Exception as exc:  # pint raises several unrelated types
        raise ValueError(f"cannot read {text!r} as a quantity ({exc})") from None
