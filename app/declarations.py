"""What a plug-in declares about its fields, checked for form before the contract graph is built
(app/registry.py) and by the conformance kit (app/conformance.py).

A third-party plug-in's ``provides``, ``requires`` and ``internal_variables`` are code the
framework does not control: a property that raises, a list of names instead of
:class:`~app.contracts.FieldSpec` objects, a rank spelt "matrix", units pint cannot read. Each is
reported as the plug-in's declaration, naming the instance and the field, before anything is
built from it (it was an internal error deep in the build, or not noticed at all).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from app.contracts import FieldSpec, InternalVariable, Physics
from app.units import parse_units

RANKS = ("scalar", "vector", "tensor")
#: What a declaration's problem asks of whom (it is the plug-in's code, not the case file).
FIX = "the plug-in's author must correct its declaration (docs/plugin_guide.md, section 2)"


def declaration_problems(instance: str, plugin: Physics) -> list[str]:
    """Every problem of form in the instance's declared fields (empty when there is none)."""
    where = f"'{instance}' ({plugin.name})"
    declared: dict[str, list[Any]] = {}
    for role in ("provides", "requires", "internal_variables"):
        try:
            declared[role] = list(getattr(plugin, role))
        except Exception as exc:  # third-party code: any failure is its declaration's
            return [f"{where}.{role} failed: {type(exc).__name__}: {exc}"]
    kinds = {"provides": FieldSpec, "requires": FieldSpec, "internal_variables": InternalVariable}
    problems = [
        f"{where}.{role} holds {item!r}, not a {kinds[role].__name__}"
        for role, items in declared.items()
        for item in items
        if not isinstance(item, kinds[role])
    ]
    if problems:
        return problems
    names = [spec.name for spec in declared["provides"]]
    if len(set(names)) != len(names):
        problems.append(f"{where} provides {names} twice")
    for role in ("provides", "requires"):
        for spec in declared[role]:
            problems += _spec_problems(f"{where} {role} '{spec.name}'", spec, role == "provides")
    return problems


def _spec_problems(where: str, spec: FieldSpec, provided: bool) -> list[str]:
    problems = []
    if not (isinstance(spec.name, str) and spec.name.isidentifier()):
        problems.append(f"{where}: field names must be identifiers")
    ranks = (spec.rank,) if provided else spec.ranks
    if not (ranks and all(isinstance(r, str) and r in RANKS for r in ranks)):
        wanted = "one of" if provided else "one or several of"
        problems.append(f"{where}: unknown rank {spec.rank!r} ({wanted} {', '.join(RANKS)})")
    try:
        parse_units(spec.units)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
    if not _is_space(spec.space):
        problems.append(
            f"{where}: space {spec.space!r} is not a (family, degree) pair such as ('Lagrange', 1)"
        )
    if not _are_bounds(spec.bounds):
        problems.append(
            f"{where}: bounds {spec.bounds!r} are not (lower, upper) finite numbers or None, "
            "lower below upper, such as (0.0, 1.0) or (0.0, None)"
        )
    if spec.at_bounds not in ("fail", "stop"):
        problems.append(f"{where}: at_bounds {spec.at_bounds!r} is not 'fail' or 'stop'")
    elif spec.at_bounds == "stop" and spec.bounds == (None, None):
        problems.append(f"{where}: at_bounds 'stop' needs bounds to stop at")
    return problems


def _are_bounds(bounds: Any) -> bool:
    if not (isinstance(bounds, tuple) and len(bounds) == 2):
        return False
    numbers = [b for b in bounds if b is not None]
    if not all(isinstance(b, int | float) and not isinstance(b, bool) for b in numbers):
        return False
    return all(math.isfinite(b) for b in numbers) and (len(numbers) < 2 or numbers[0] < numbers[1])


def _is_space(space: Any) -> bool:
    return (
        isinstance(space, Iterable)
        and not isinstance(space, str)
        and len(items := list(space)) == 2
        and isinstance(items[0], str)
        and isinstance(items[1], int)
        and not isinstance(items[1], bool)
        and items[1] >= 0
    )
