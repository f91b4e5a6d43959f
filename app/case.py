"""Case files: TOML -> a validated :class:`Case` and its plug-in instances.

A case is data. Every section is a pydantic model that rejects unknown keys; each
``[physics.<instance>]`` table is validated by the ``Parameters`` model of the plug-in its
``type`` names (default: the instance name). Values with units are converted to SI, expressions
are parsed by the restricted language of :mod:`app.expressions`. Anything wrong becomes one
:class:`~app.errors.CaseError` naming the dotted path (``physics.heat.conductivity``), what was
expected and, where it helps, the closest valid spelling.
"""

from __future__ import annotations

import copy
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from app import registry
from app.contracts import Parameters, Physics, quantity
from app.coupling import CouplingSpec
from app.errors import CaseError, did_you_mean, listing
from app.events import EventSpec, ProtocolSpec
from app.meshing import MeshSpec
from app.output_quantities import OutputQuantity, check_names
from app.probes import Probe, check_probe_names, probe_table
from app.units import to_si


class AdaptiveSpec(Parameters):
    """Adaptive time stepping: dt grows after easy steps and shrinks on failure."""

    dt_min: float = quantity("s", 1e-9, "Smallest time step before the run gives up", gt=0)
    dt_max: float | None = quantity("s", None, "Largest time step (default: the run length)", gt=0)
    growth: float = Field(1.5, gt=1, description="Factor dt grows by after an easy step")
    shrink: float = Field(0.5, gt=0, lt=1, description="Factor dt shrinks by after a failure")
    easy_iterations: int = Field(
        4, ge=1, description="A step whose Newton solve took at most this many iterations is easy"
    )
    rtol: float | None = Field(
        None, gt=0, description="Relative local-error tolerance; set it for error-based control"
    )
    atol: float = Field(1e-8, gt=0, description="Absolute local-error tolerance (field units)")


class TimeSpec(Parameters):
    """Time discretisation. ``steady`` without ``end`` is a single steady solve; with ``end``
    and ``dt`` it is a sequence of steady solves (quasi-static loading)."""

    scheme: Literal["steady", "bdf1", "bdf2", "cn"] = Field(
        "steady", description="Time scheme (cn: Crank-Nicolson)"
    )
    start: float = quantity("s", 0.0, "Start time")
    end: float | None = quantity("s", None, "End time")
    dt: float | None = quantity("s", None, "Time step (the first one when adaptive)", gt=0)
    adaptive: AdaptiveSpec | None = Field(None, description="Adaptive time-step control")
    breakpoints: list[float] = Field(
        default_factory=list,
        description="Times where the forcing jumps: steps end there and BDF2 restarts with BDF1",
    )

    @field_validator("breakpoints", mode="before")
    @classmethod
    def _breakpoints_with_units(cls, raw: Any) -> Any:
        return [to_si(item, "s", "") for item in raw] if isinstance(raw, list) else raw

    @property
    def transient(self) -> bool:
        return self.scheme != "steady"


class NewtonSpec(Parameters):
    """Newton (PETSc SNES) settings for nonlinear problems."""

    rtol: float = Field(1e-9, gt=0, description="Relative residual tolerance")
    atol: float = Field(1e-10, ge=0, description="Absolute residual tolerance")
    max_iterations: int = Field(25, ge=1, description="Iterations before a step counts as failed")
    line_search: Literal["basic", "bt"] = Field("basic", description="SNES line search")


class SolverSpec(Parameters):
    """Linear solver choice. ``auto`` takes MUMPS (direct) below 100k unknowns; above, CG + GAMG
    for symmetric positive definite problems, GMRES + GAMG for other single fields and
    ``fieldsplit`` (block preconditioning, one AMG per field) for groups of several fields."""

    preset: Literal["auto", "direct", "cg_gamg", "gmres_gamg", "gmres_ilu", "fieldsplit"] = Field(
        "auto", description="Linear solver preset"
    )
    rtol: float = Field(1e-10, gt=0, description="Relative tolerance of iterative solvers")
    newton: NewtonSpec = Field(default_factory=NewtonSpec, description="Newton settings")
    petsc: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Raw PETSc options, applied after the preset"
    )
    quadrature_degree: int | None = Field(
        None,
        ge=0,
        le=30,
        description="Quadrature degree of every form (default: 2 x the highest field degree, "
        "+ the curved geometry's, + 2 for nonlinear equations)",
    )


class OutputSpec(Parameters):
    """What to write and when. Quantities are written at every output time."""

    interval: float | None = quantity("s", None, "Time between outputs (default: every step)", gt=0)
    times: list[float] = Field(default_factory=list, description="Extra output times [s]")
    fields: list[str] | None = Field(None, description="Fields to write (default: all)")
    xdmf: bool = Field(True, description="Write fields as an XDMF time series")
    vtx: bool = Field(
        False,
        description="Also write fields as VTX (ADIOS2 .bp folders), each at its own degree",
    )
    every_cycle: int | None = Field(
        None,
        ge=1,
        description="Write fields only in protocol cycles 0, N, 2N, ... (quantities: always)",
    )
    probes: dict[str, Probe] = Field(
        default_factory=dict,
        description="Named points (D = [x, y]: quantities.csv columns) and lines "
        "({ from = [...], to = [...], points = 100 }: profiles/<name>.csv) where fields are read",
    )

    @field_validator("times", mode="before")
    @classmethod
    def _times_with_units(cls, raw: Any) -> Any:
        return [to_si(item, "s", "") for item in raw] if isinstance(raw, list) else raw

    quantities: dict[str, OutputQuantity] = Field(
        default_factory=dict,
        description="Quantities of the case: means, ratios and integrals of expressions of "
        'fields ({ value = "HA", over = "packets" }; see app/output_quantities.py)',
    )

    _probe_table = field_validator("probes", mode="before")(probe_table)
    _quantity_names = field_validator("quantities")(check_names)
    _probe_names = field_validator("probes")(check_probe_names)


class Case(Parameters):
    """A whole case file."""

    title: str = Field("", description="One-line title")
    description: str = Field("", description="What the case shows")
    mesh: MeshSpec = Field(description="Mesh and named regions/boundaries")
    physics: dict[str, dict[str, Any]] = Field(description="Plug-in instances by name")
    time: TimeSpec = Field(default_factory=TimeSpec, description="Time discretisation")
    solver: SolverSpec = Field(default_factory=SolverSpec, description="Solver settings")
    output: OutputSpec = Field(default_factory=OutputSpec, description="Output settings")
    coupling: CouplingSpec = Field(default_factory=CouplingSpec, description="Groups, splitting")
    events: list[EventSpec] = Field(
        default_factory=list, description="Conditions that stop the run"
    )
    protocol: ProtocolSpec | None = Field(None, description="Controlled steps with conditions")


@dataclass
class LoadedCase:
    """A validated case with its plug-in instances.

    Attributes:
        case: The validated sections.
        physics: Plug-in instances by instance name, in case-file order.
        raw: The case as written, with command-line overrides applied.
        path: The case file (None for a case given as a dict).
        base_dir: Where relative paths (mesh files) are resolved from.
    """

    case: Case
    physics: dict[str, Physics]
    raw: dict[str, Any]
    path: Path | None
    base_dir: Path

    def resolved(self) -> dict[str, Any]:
        """The complete case with defaults filled in and SI values, runnable as it is."""
        data = self.case.model_dump(
            mode="json", exclude_none=True, exclude={"physics"}, by_alias=True
        )
        if self.case.mesh.file:
            data["mesh"]["file"] = str(self.mesh_file_hint())
        data["physics"] = {
            name: {"type": plugin.name}
            | ({"domain": plugin.domain} if plugin.domain else {})
            | plugin.params.model_dump(mode="json", exclude_none=True)
            for name, plugin in self.physics.items()
        }
        return data

    def mesh_file_hint(self) -> Path:
        """The mesh file as an absolute path when it exists relative to the case."""
        candidate = (self.base_dir / self.case.mesh.file).resolve()
        return candidate if candidate.exists() else Path(self.case.mesh.file)

    def locate(self, token: str, within: str) -> str:
        """Dotted path of the first key or string value equal to (or containing) ``token``
        under the raw section ``within`` (e.g. where a boundary name was written)."""
        node: Any = self.raw
        for part in within.split("."):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        found = _find(node, token)
        return f"{within}.{found}" if found else within


def _find(node: Any, token: str) -> str | None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == token:
                return str(key)
            inner = _find(value, token)
            if inner is not None:
                return f"{key}.{inner}" if inner else str(key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            inner = _find(value, token)
            if inner is not None:
                return f"[{index}].{inner}".rstrip(".")
    elif isinstance(node, str) and re.search(rf"\b{re.escape(token)}\b", node):
        return ""
    return None


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def read_toml(path: Path) -> dict[str, Any]:
    """Parse a case file; a missing file or malformed TOML is a CaseError."""
    if not path.is_file():
        raise CaseError("", f"case file '{path}' not found", "check the path")
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError("", f"not valid TOML: {exc}", "fix the syntax there") from None


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any] | Sequence[str]) -> None:
    """Set values by dotted path, in place: ``{"physics.heat.conductivity": 50}`` or the
    command-line form ``["physics.heat.conductivity=50"]`` (values read as TOML when they parse,
    else as strings)."""
    items = overrides.items() if isinstance(overrides, Mapping) else map(_split, overrides)
    for dotted, value in items:
        parts = dotted.split(".")
        node = raw
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise CaseError(where, f"is a value, so '{dotted}' cannot be set below it")
            node = child
        node[parts[-1]] = value


def _split(assignment: str) -> tuple[str, Any]:
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise CaseError(
            "--set", f"expected KEY=VALUE, got {assignment!r}", "e.g. --set time.end=10"
        )
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key.strip(), value


def load_case(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    base_dir: str | Path | None = None,
) -> LoadedCase:
    """Read, override and validate a case.

    Args:
        source: A TOML file or an already parsed dict.
        overrides: Dotted-path overrides (see :func:`apply_overrides`).
        base_dir: Folder for relative paths; default: the case file's folder or the cwd.

    Raises:
        CaseError: Anything invalid, located by its dotted path.
    """
    if isinstance(source, Mapping):
        path, raw = None, copy.deepcopy(dict(source))
    else:
        path = Path(source)
        raw = read_toml(path)
    apply_overrides(raw, overrides or {})
    base = Path(base_dir) if base_dir else (path.parent if path else Path.cwd())
    case = validate(Case, raw, "")
    physics = {name: _instantiate(name, raw["physics"][name]) for name in case.physics}
    if not physics:
        raise CaseError("physics", "no physics given", "add a [physics.<name>] table")
    return LoadedCase(case, physics, raw, path, base)


def _instantiate(instance: str, table: Mapping[str, Any]) -> Physics:
    where = f"physics.{instance}"
    if not isinstance(table, Mapping):
        raise CaseError(where, f"expected a table, got {table!r}")
    if not instance.isidentifier():
        raise CaseError(where, "instance names are letters, digits and underscores")
    type_name = table.get("type", instance)
    cls = registry.plugin(type_name, f"{where}.type" if "type" in table else where)
    domain = table.get("domain")
    if domain is not None and not isinstance(domain, str):
        raise CaseError(f"{where}.domain", f"expected a region name, got {domain!r}")
    params = {key: value for key, value in table.items() if key not in ("type", "domain")}
    return cls(validate(cls.Parameters, params, where), instance, domain)


def validate[M: BaseModel](model: type[M], raw: Mapping[str, Any], prefix: str) -> M:
    """Validate ``raw`` with ``model``; the first problem becomes a CaseError under ``prefix``."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _case_error(exc, model, raw, prefix) from None


def _case_error(exc: ValidationError, model: type[BaseModel], raw: Any, prefix: str) -> CaseError:
    error = exc.errors()[0]
    keys = _data_path(error["loc"], raw)
    path = ".".join([prefix, *keys] if prefix else keys)
    kind, ctx, given = error["type"], error.get("ctx", {}), error.get("input")
    key = keys[-1] if keys else ""
    more = exc.error_count() - 1
    suffix = f" ({more} more problem{'s' if more > 1 else ''} after this one)" if more else ""
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, keys[:-1], raw)
        hint = did_you_mean(key, allowed)
        return CaseError(
            path,
            f"unknown key '{key}'{hint}; allowed keys here: {listing(allowed)}{suffix}",
            "correct the spelling or remove the key",
        )
    if kind == "missing":
        return CaseError(path, f"missing required key '{key}'{suffix}")
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        expected = ctx.get("expected_tags", "")
        return CaseError(
            path,
            f"unknown type {tag!r}"
            f"{did_you_mean(tag, expected.replace(chr(39), '').split(', '))}; "
            f"expected one of {expected}{suffix}",
        )
    if kind == "literal_error" and isinstance(given, str):
        expected = ctx.get("expected", "")
        options = [part.strip(" '") for part in expected.replace(" or ", ", ").split(",")]
        return CaseError(
            path, f"got {given!r}{did_you_mean(given, options)}; expected {expected}{suffix}"
        )
    if kind == "value_error":  # a plug-in's validator: its message, as written
        return CaseError(path, str(ctx["error"]) + suffix)
    message = error["msg"]
    if kind != "scalebridge":
        message = message.replace("Input should be", "expected", 1)
        if not isinstance(given, Mapping | list):
            message += f", got {given!r}"
    return CaseError(path, message + suffix)


def _data_path(loc: tuple[Any, ...], raw: Any) -> list[str]:
    """The error location as keys of the case data: pydantic puts the tag of a discriminated
    union into ``loc`` ("boundaries.left.flux.value"), which the user never wrote."""
    keys, node = [], raw
    for part in loc:
        if isinstance(node, Mapping) and part not in node and node.get("type") == part:
            continue
        keys.append(str(part))
        node = node.get(part) if isinstance(node, Mapping) else None
    return keys


def _allowed_keys(model: type[BaseModel], keys: list[str], raw: Any) -> list[str]:
    """Field names of the model that sits at ``keys`` inside ``model``."""
    current: Any = model
    for key in keys:
        raw = raw.get(key) if isinstance(raw, Mapping) else None
        current = _step(current, key, raw)
        if current is None:
            return []
    if not _is_model(current):
        return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _step(current: Any, key: str, raw: Any) -> Any:
    if _is_model(current):
        field = current.model_fields.get(key)
        return _select(field.annotation, raw) if field else None
    origin = typing.get_origin(current)
    if origin in (dict, Mapping):
        return _select(typing.get_args(current)[1], raw)
    return None


def _select(annotation: Any, raw: Any) -> Any:
    """Resolve Annotated/Optional/discriminated unions to the model the data belongs to."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [_select(arg, raw) for arg in typing.get_args(annotation)]
        models = [option for option in options if _is_model(option)]
        tag = raw.get("type") if isinstance(raw, Mapping) else None
        for option in models:
            literal = option.model_fields.get("type")
            if literal and tag in typing.get_args(literal.annotation):
                return option
        return models[0] if len(models) == 1 else None
    return annotation


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)
