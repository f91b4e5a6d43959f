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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from app import registry
from app.checkpoint import CheckpointSpec
from app.contracts import Parameters, Physics, quantity
from app.coupling import CouplingSpec
from app.errors import CaseError, ScaleBridgeError, shown
from app.events import EventSpec, ProtocolSpec
from app.mesh_spec import MeshSpec
from app.multiscale.rve_spec import HOMOGENEOUS, RVESpec
from app.multiscale.spec import SurrogateSpec
from app.output_quantity_spec import OutputQuantity, check_names
from app.parameter_resolution import resolve
from app.parameter_set import ParameterTable
from app.parameters import parameter_scope
from app.probes import Probe, check_probe_names, probe_table
from app.run_plot import PlotSpec
from app.solver_options import GEOMETRIC_MULTIGRID, SolverSpec
from app.time_spec import TimeSpec, times_in_seconds
from app.toml_files import read_toml
from app.validation import check_values, validate


class OutputSpec(Parameters):
    """What to write and when. Quantities are written at every output time."""

    interval: float | None = quantity("s", None, "Time between outputs (default: every step)", gt=0)
    times: list[float] = Field(
        default_factory=list,
        description="Extra output times [s] (numbers, with units, or of the set's constants)",
    )
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
        return times_in_seconds(raw, "output.times")

    quantities: dict[str, OutputQuantity] = Field(
        default_factory=dict,
        description="Quantities of the case: means, ratios and integrals of expressions of "
        'fields ({ value = "HA", over = "packets" }), expressions of columns and set constants '
        '({ value = "p_right_V - p_left_V", units = "V" }) and running time integrals of '
        'columns ({ time_integral = "current_A", units = "Ah" }); see app/output_quantities.py',
    )
    plot: PlotSpec | None = Field(
        None,
        description="PNGs drawn into the run folder when the run ends: columns against time "
        '(columns = ["voltage_V", "temperature_K"]) and fields at the last output time',
    )

    _probe_table = field_validator("probes", mode="before")(probe_table)
    _quantity_names = field_validator("quantities")(check_names)
    _probe_names = field_validator("probes")(check_probe_names)


MAX_OUTPUTS = 10**6  # output times are listed before the run


class Case(Parameters):
    """A whole case file."""

    title: str = Field("", description="One-line title")
    description: str = Field("", description="What the case shows")
    parameters: dict[str, Any] | None = Field(
        None,
        description="A parameter set (set = name or file), overrides of its values, and "
        "initial_soc or initial_voltage (checked by app.parameter_resolution)",
    )
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
    checkpoint: CheckpointSpec = Field(
        default_factory=CheckpointSpec, description="When the whole state is saved for restarts"
    )
    surrogates: dict[str, SurrogateSpec] = Field(
        default_factory=dict,
        description="Microstructures whose effective properties a surrogate serves to "
        'properties written { surrogate = "<name>" }',
    )

    rves: dict[str, RVESpec] = Field(
        default_factory=dict,
        description="Nonlinear unit cells solved at every quadrature point (FE2), read by "
        'constitutive = { rve = "<name>" }',
    )

    @field_validator("surrogates", "rves", mode="before")
    @classmethod
    def _section_names(cls, raw: Any, info: ValidationInfo) -> Any:
        if isinstance(raw, Mapping):
            for name in raw:
                if not str(name).isidentifier():
                    raise ValueError(
                        f"{info.field_name[:-1]} names are letters, digits and underscores: "
                        f"{name!r}"
                    )
        return raw

    @model_validator(mode="after")
    def _multigrid_has_levels(self) -> Case:
        preset = self.solver.preset
        if preset in GEOMETRIC_MULTIGRID and not self.mesh.refine:
            raise CaseError(
                "solver.preset",
                f"'{preset}' is geometric multigrid on the meshes that mesh.refine makes, but "
                "this mesh is not refined (mesh.refine = 0)",
                "give a coarser mesh and mesh.refine >= 1 (each refinement halves the cells' "
                f"size), or use '{GEOMETRIC_MULTIGRID[preset]}' (algebraic multigrid)",
            )
        return self

    @model_validator(mode="after")
    def _surrogates_have_data(self) -> Case:
        # a surrogate that neither starts from RVEs nor may solve any has nothing to learn from
        for name, spec in self.surrogates.items():
            learns = spec.design.points or spec.refresh or spec.database is not None
            if spec.mode == "surrogate" and not learns:
                raise CaseError(
                    f"surrogates.{name}.design.points",
                    "no initial RVE solves, refresh = false and no database: the "
                    "surrogate would serve properties it has no RVE for",
                    "give design.points >= 1, refresh = true or a database of earlier RVE solves",
                )
        return self

    @model_validator(mode="after")
    def _outputs_fit(self) -> Case:
        time, interval = self.time, self.output.interval
        if interval is not None and time.end is not None:
            count = (time.end - time.start) / interval
            if count > MAX_OUTPUTS:
                raise CaseError(
                    "output.interval",
                    f"an output every {interval:g} s from {time.start:g} s to {time.end:g} s "
                    f"makes {count:.3g} outputs; at most {MAX_OUTPUTS:,} are allowed",
                    "give a longer interval",
                )
        # as time.breakpoints: before the start a slip, after the end a shortened run's
        for index, point in enumerate(self.output.times):
            if point < time.start:
                raise CaseError(
                    f"output.times[{index}]",
                    f"{point:g} s is before the run's start at {time.start:g} s",
                    "give output times after time.start, or remove this one (a time before "
                    "the run is never reached)",
                )
        return self


@dataclass
class LoadedCase:
    """A validated case with its plug-in instances.

    Attributes:
        case: The validated sections.
        physics: Plug-in instances by instance name, in case-file order.
        raw: The case as written, with command-line overrides applied.
        path: The case file (None for a case given as a dict).
        base_dir: Where relative paths (mesh files) are resolved from.
        parameters: The parameter set the case names, resolved (None without one).
    """

    case: Case
    physics: dict[str, Physics]
    raw: dict[str, Any]
    path: Path | None
    base_dir: Path
    parameters: ParameterTable | None = None

    def resolved(self) -> dict[str, Any]:
        """The complete case with defaults filled in and SI values, runnable as it is."""
        data = self.case.model_dump(
            mode="json", exclude_none=True, exclude={"physics"}, by_alias=True
        )
        if self.case.mesh.file:
            data["mesh"]["file"] = str(self.mesh_file_hint())
        if self.parameters is not None:  # a set given by path is found from any run folder
            data["parameters"]["set"] = self.parameters_hint()
        for section in data.get("surrogates", {}).values():  # runnable from the run folder
            for key in ("microstructure", "database"):
                if key in section:
                    section[key] = str(self.file_hint(section[key]))
        for section in data.get("rves", {}).values():
            if section["microstructure"] != HOMOGENEOUS:
                section["microstructure"] = str(self.file_hint(section["microstructure"]))
        data["physics"] = {
            name: {"type": plugin.name}
            | ({"domain": plugin.domain} if plugin.domain else {})
            | ({"regions": list(plugin.regions)} if plugin.regions else {})
            | plugin.params.model_dump(mode="json", exclude_none=True)
            for name, plugin in self.physics.items()
        }
        return data

    def parameters_hint(self) -> str:
        """The set as written when it is a shipped name, else its file's absolute path."""
        given = self.case.parameters["set"]
        return given if self.parameters.path.stem == given else str(self.parameters.path)

    def differences(self, other: LoadedCase) -> dict[str, Any]:
        """Dotted paths where ``other``'s resolved case differs from this one, with
        ``other``'s values (a path present in only one of them counts too)."""
        found: dict[str, Any] = {}
        _compare(self.resolved(), other.resolved(), "", found)
        return found

    def mesh_file_hint(self) -> Path:
        """The mesh file as an absolute path when it exists relative to the case."""
        return self.file_hint(self.case.mesh.file)

    def file_hint(self, file: str) -> Path:
        """A file the case names, as an absolute path when it exists relative to the case."""
        candidate = (self.base_dir / file).resolve()
        return candidate if candidate.exists() else Path(file)

    def locate(self, token: str, within: str) -> str:
        """Dotted path of the first key or string value equal to (or containing) ``token``
        under the raw section ``within`` (e.g. where a boundary name was written)."""
        node: Any = self.raw
        for part in within.split("."):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        found = _find(node, token)
        return f"{within}.{found}" if found else within


def _compare(mine: Any, theirs: Any, prefix: str, found: dict[str, Any]) -> None:
    if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
        for key in mine.keys() | theirs.keys():
            path = f"{prefix}.{key}" if prefix else str(key)
            _compare(mine.get(key), theirs.get(key), path, found)
    elif mine != theirs:
        found[prefix] = theirs


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
_INDEXED = re.compile(r"\[[^\]]*\]")


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
    indexed = _INDEXED.search(key)
    if indexed:  # else read as an unknown key 'cells[1]', with a spelling fix for it
        raise CaseError(
            f"--set {key.strip()}",
            "list entries cannot be set one by one",
            f"give the whole list, e.g. --set '{key[: indexed.start()].strip()}=[...]'",
        )
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
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
        check_values(source)  # before deepcopy, which recurses
        path, raw = None, copy.deepcopy(dict(source))
    else:
        path = Path(source)
        raw = read_toml(path)
    if "case" in raw and not raw.keys() & {"mesh", "physics"}:  # read before any override
        raise CaseError(
            "case",
            "this is a study file (it names the case it varies), not a case",
            f"run it with: scalebridge study {path or 'STUDY_FILE'}",
        )
    apply_overrides(raw, overrides or {})
    check_values(raw)
    base = Path(base_dir) if base_dir else (path.parent if path else Path.cwd())
    parameters = resolve(raw.get("parameters"), base)
    with parameter_scope(parameters):
        case = validate(Case, raw, "")
        physics = {name: _instantiate(name, raw["physics"][name]) for name in case.physics}
    if not physics:
        raise CaseError("physics", "no physics given", "add a [physics.<name>] table")
    return LoadedCase(case, physics, raw, path, base, parameters)


def _instantiate(instance: str, table: Mapping[str, Any]) -> Physics:
    where = f"physics.{instance}"
    if not isinstance(table, Mapping):
        raise CaseError(where, f"expected a table, got {shown(table)}")
    if not instance.isidentifier():
        raise CaseError(where, "instance names are letters, digits and underscores")
    type_name = table.get("type", instance)
    if not isinstance(type_name, str):
        raise CaseError(
            f"{where}.type",
            f"expected the name of a plug-in, got {shown(type_name)}",
            'write type = "heat" (see `scalebridge modules`)',
        )
    cls = registry.plugin(type_name, f"{where}.type" if "type" in table else where)
    domain = table.get("domain")
    if domain is not None and not isinstance(domain, str):
        raise CaseError(
            f"{where}.domain", f"expected the name of a region or boundary, got {shown(domain)}"
        )
    regions = _acting_regions(table, where)
    params = {
        key: value for key, value in table.items() if key not in ("type", "domain", "regions")
    }
    placement = (instance, domain) if regions is None else (instance, domain, regions)
    try:
        return cls(validate(cls.Parameters, params, where), *placement)
    except ScaleBridgeError:
        raise
    except Exception as exc:  # the plug-in's own validators or constructor (third-party code)
        raise CaseError(
            where,
            f"plug-in '{type_name}' ({cls.__module__}) failed to read its parameters: "
            f"{type(exc).__name__}: {exc}",
            "a validator of a plug-in raises ValueError for bad input; anything else is for "
            "the plug-in's author to correct (docs/plugin_guide.md)",
        ) from None


def _acting_regions(table: Mapping[str, Any], where: str) -> tuple[str, ...] | None:
    """The instance's ``regions``: names of regions of the boundary it is placed on."""
    regions = table.get("regions")
    if regions is None:
        return None
    if (
        not isinstance(regions, list)
        or not regions
        or not all(isinstance(name, str) for name in regions)
    ):
        raise CaseError(
            f"{where}.regions",
            f"expected a list of region names, got {shown(regions)}",
            'e.g. regions = ["negative", "positive"]',
        )
    if "domain" not in table:
        raise CaseError(
            f"{where}.regions",
            "regions are read for an instance placed on a boundary (the regions of the "
            "boundary's mesh it acts on)",
            'place it on a boundary (domain = "top"), or on one region with domain = "<region>"',
        )
    return tuple(dict.fromkeys(regions))
