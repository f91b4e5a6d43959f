"""Parameter sets: named constants with units and functions of named arguments, from TOML files.

A case names a set in its ``[parameters]`` section and may override single values there (or
with ``--set parameters.<name>=...``)::

    [parameters]
    set = "Chen2020"          # a shipped set (app/parameter_sets/<name>.toml) or a file path
    initial_soc = 1           # lithium-ion sets: the initial concentrations follow from the SOC
    L_n = "80 um"             # a constant: its value, in the set's units or with units
    D_e = "3e-10"             # a function: a new body over the same arguments (c_e, T)

Every plug-in expression may then use the set's constants and call its functions
(``diffusivity = "D_e(c_e, temperature)"``, ``open_circuit_potential = "U_p(theta)"``); a
``float`` plug-in parameter takes a constant (``reference_temperature = "T_ref"``) at load time.
Constants become one ``fem.Constant`` each in the forms (see :mod:`app.context`), so protocols
and studies change them without recompiling (``target = "parameters.T_amb"``).

The file format (docs/parameter_sets.md has the full description)::

    name = "Chen2020"
    description = "LG M50 cell ..."
    citation = "C.-H. Chen et al., J. Electrochem. Soc. 167 (2020) 080534"

    [constants]
    L_n = { value = "85.2 um", units = "m", description = "Negative electrode thickness" }
    a_n = { value = "3*eps_act_n/R_n", units = "1/m", description = "..." }  # of constants

    [functions.U_n]
    arguments = { theta = "dimensionless" }       # name = units, in call order
    units = "V"
    expression = "1.9793*exp(-39.3631*theta) + ..."   # of the arguments and the constants

    [state_of_charge]                              # optional: what initial_soc needs
    ...

Bodies are parsed by the restricted language of :mod:`app.expressions` (never evaluated as
Python); calls between functions are expanded, and a function that calls itself (through others
or directly) is refused. Every set also knows the physical constants ``FARADAY`` and
``GAS_CONSTANT``. Anything wrong is one :class:`~app.errors.CaseError` at ``parameters.set`` (a
problem of the file, with its place in the file) or ``parameters.<name>`` (an override).

This module holds the file format and the resolved :class:`ParameterTable`;
:mod:`app.parameter_resolution` reads a case's section into one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app import state_of_charge as soc
from app.contracts import FARADAY, GAS_CONSTANT
from app.errors import CaseError, did_you_mean, listing
from app.expression_tree import FUNCTIONS
from app.expressions import Expression, Function
from app.toml_files import read_toml

#: Keys of a case's [parameters] section that are not names of the set.
CASE_KEYS = ("set", "initial_soc", "initial_voltage")
#: Constants every set knows.
PHYSICAL = {
    "FARADAY": (FARADAY, "C/mol", "Faraday constant"),
    "GAS_CONSTANT": (GAS_CONSTANT, "J/(mol*K)", "Molar gas constant"),
}
RESERVED = {"x", "y", "z", "t", "pi", *CASE_KEYS, *FUNCTIONS, *PHYSICAL}


# --------------------------------------------------------------------------------------------
# The file format
# --------------------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConstantSpec(_Model):
    """A constant: a number in ``units``, a string with units, or an expression of constants."""

    value: float | str = Field(description="Number (in units), quantity string or expression")
    units: str = Field(description="Unit of the value (SI-coherent), e.g. m, mol/m^3, 1")
    description: str = ""
    source: str = Field("", description="Where the value comes from, if not the set's citation")


class FunctionSpec(_Model):
    """A function of named arguments."""

    arguments: dict[str, str] = Field(description="Argument name = its units, in call order")
    units: str = Field(description="Unit of the result")
    expression: str = Field(description="Body: an expression of the arguments and constants")
    description: str = ""
    source: str = ""


class ElectrodeSpec(_Model):
    """One electrode for the state-of-charge algorithm (expressions of the set's names)."""

    ocp: str = Field(description="Open-circuit potential [V], an expression of theta (and T)")
    capacity: str = Field(description="Lithium sites per electrode area eps_s L c_max [mol/m^2]")
    concentration: str = Field(description="Name of the constant initial_soc sets [mol/m^3]")
    maximum_concentration: str = Field(description="c_max [mol/m^3]")


class StateOfChargeSpec(_Model):
    """What ``initial_soc`` / ``initial_voltage`` need (lithium-ion sets)."""

    negative: ElectrodeSpec
    positive: ElectrodeSpec
    lower_voltage: str = Field(description="Open-circuit voltage at 0 % SOC [V]")
    upper_voltage: str = Field(description="Open-circuit voltage at 100 % SOC [V]")
    reference_temperature: str = Field(description="T of the SOC window [K]")
    initial_temperature: str = Field(description="T of an initial-voltage target [K]")


class SetFile(_Model):
    """A whole set file."""

    name: str
    description: str = ""
    citation: str = Field(description="The publication the values come from")
    doi: str = ""
    constants: dict[str, ConstantSpec] = Field(default_factory=dict)
    functions: dict[str, FunctionSpec] = Field(default_factory=dict)
    state_of_charge: StateOfChargeSpec | None = None


def shipped() -> dict[str, Path]:
    """The sets that come with ScaleBridge, by name."""
    folder = files("app") / "parameter_sets"
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def locate(given: str, base_dir: Path) -> Path:
    """The file of ``set = given``: a shipped name or a path (relative to the case's folder)."""
    sets = shipped()
    if given in sets:
        return sets[given]
    if given.endswith(".toml") or "/" in given:
        for candidate in (base_dir / given, Path(given)):
            if candidate.is_file():
                return candidate.resolve()
        stem = Path(given).stem
        fix = f'for the shipped set, write set = "{stem}"' if stem in sets else "check the path"
        raise CaseError("parameters.set", f"set file '{given}' not found", fix)
    raise CaseError(
        "parameters.set",
        f"unknown parameter set '{given}'{did_you_mean(given, sets)}; shipped sets: "
        f"{listing(sets)}",
        'name a shipped set or give the path of a set file ("my_cell.toml")',
    )


def read_set_file(path: Path) -> SetFile:
    """Read and validate a set file's structure (names and expressions are checked later)."""
    where = f"set file '{path}'"
    data = read_toml(path, "parameters.set", "set file")
    try:
        return SetFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        place = ".".join(map(str, error["loc"]))
        raise CaseError("parameters.set", f"{where}, {place}: {error['msg']}") from None


# --------------------------------------------------------------------------------------------
# A resolved set
# --------------------------------------------------------------------------------------------
@dataclass
class Constant:
    """A resolved constant: its SI value in ``units`` and how it was defined."""

    value: float
    units: str
    description: str
    definition: Expression | None = None  # when defined by an expression of other constants


@dataclass
class DefinedFunction:
    """A resolved function with the units of its arguments and result."""

    function: Function
    arguments: dict[str, str]
    units: str
    description: str


@dataclass
class InitialState:
    """The initial stoichiometries a state of charge (or voltage) gave."""

    soc: float
    negative: float
    positive: float
    window: soc.Window
    asked: str  # "SOC 1" or "voltage 4 V"


@dataclass
class ParameterTable:
    """A parameter set as a case resolved it: overrides applied, constants evaluated.

    Attributes:
        name, description, citation, doi: From the set file.
        path: The set file.
        constants: By name, with SI values (physical constants included).
        functions: By name.
        initial_state: The result of ``initial_soc``/``initial_voltage``, if the case asked.
        overridden: Names the case overrode.
    """

    name: str
    description: str
    citation: str
    path: Path
    constants: dict[str, Constant]
    functions: dict[str, DefinedFunction]
    initial_state: InitialState | None = None
    overridden: list[str] = field(default_factory=list)
    doi: str = ""

    @property
    def parsed_functions(self) -> dict[str, Function]:
        """What expressions may call (for :func:`app.expressions.parse`)."""
        return {name: item.function for name, item in self.functions.items()}

    def names(self) -> set[str]:
        return {*self.constants, *self.functions}

    def values(self) -> dict[str, float]:
        """Every constant's value (SI)."""
        return {name: item.value for name, item in self.constants.items()}

    def units_of(self, name: str) -> str | None:
        """The unit of a constant or of a function's result."""
        item = self.constants.get(name) or self.functions.get(name)
        return item.units if item else None

    def evaluate(self, name: str, *arguments: Any) -> float | np.ndarray:
        """A function of the set at numbers or arrays (SI), e.g. ``evaluate("U_n", 0.5)``."""
        item = self.functions[name]
        names = dict(zip(item.function.arguments, arguments, strict=True))
        return item.function.body.evaluate(self.values() | names)

    def set_value(self, name: str, value: float) -> list[str]:
        """Change a constant; constants defined by expressions of it follow. Returns every
        constant that changed (the name and its dependants)."""
        self.constants[name].value = float(value)
        changed = [name]
        for other, item in self.constants.items():  # definitions come after what they use
            if item.definition is not None and item.definition.names & set(changed):
                item.value = float(item.definition.evaluate(self.values()))
                changed.append(other)
        return changed

    def describe(self) -> list[str]:
        """Lines for ``scalebridge check``."""
        signatures = [
            f"{name}({', '.join(item.function.arguments)})" for name, item in self.functions.items()
        ]
        lines = [
            f"Parameters: set {self.name} ({self.path})",
            f"  {self.description}" if self.description else "",
            f"  citation: {self.citation}" + (f", doi:{self.doi}" if self.doi else ""),
            f"  {len(self.constants) - len(PHYSICAL)} constants, {len(self.functions)} "
            f"functions: {', '.join(signatures)}",
        ]
        if self.overridden:
            lines.append(f"  overridden by the case: {', '.join(self.overridden)}")
        state = self.initial_state
        if state is not None:
            w = state.window
            lines.append(
                f"  initial state from {state.asked}: SOC {state.soc:.6g}, stoichiometry "
                f"negative {state.negative:.6f}, positive {state.positive:.6f} (window x "
                f"{w.x_0:.6f}..{w.x_100:.6f}, y {w.y_100:.6f}..{w.y_0:.6f})"
            )
        return [line for line in lines if line]
