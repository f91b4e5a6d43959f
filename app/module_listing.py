"""``scalebridge modules [NAME]``: the plug-ins found through their entry points, with the
fields each provides and requires (typed contracts) and its parameters (units, defaults,
bounds), read off the plug-in classes themselves."""

from __future__ import annotations

import typing
from typing import Any

from app.errors import CaseError


def listing(name: str | None) -> str:
    """What ``scalebridge modules [NAME]`` prints: each plug-in's fields and parameters."""
    from app.registry import discover

    plugins = discover()
    if name is not None and name not in plugins.classes:
        from app.registry import plugin

        plugin(name, "modules")  # raises with a did-you-mean
    lines = []
    for type_name, cls in plugins.classes.items():
        if name is not None and type_name != name:
            continue
        lines += [f"{type_name}: {cls.describe()}"]
        try:
            instance = cls(cls.Parameters())
            lines += ["  provides:"] + [f"    {_spec(s)}" for s in instance.provides]
            lines += ["  requires:"] + [f"    {_spec(s)}" for s in instance.requires or []]
            internal = [variable.spec for variable in instance.internal_variables]
            lines += ["  internal variables:"] * bool(internal)
            lines += [f"    {_spec(spec)}" for spec in internal]
        except (CaseError, ValueError):
            lines += ["  fields: depend on parameters without defaults"]
        except Exception as exc:  # a third-party plug-in's code: name it, list the others
            lines += [f"  fields: the plug-in failed to list them: {type(exc).__name__}: {exc}"]
        lines += ["  parameters:", *parameter_lines(cls.Parameters, "    ")]
        lines.append("")
    for type_name, problem in plugins.broken.items():
        lines.append(f"{type_name}: FAILED TO LOAD: {problem}")
    return "\n".join(lines).rstrip()


def _spec(spec: Any) -> str:
    family, degree = spec.space
    space = "quadrature points" if family == "Quadrature" else f"{family} {degree}"
    flags = [space] + ["derived"] * spec.derived + ["optional"] * spec.optional
    region = f" on region {spec.region}" if spec.region else ""
    return (
        f"{spec.name} [{' or '.join(spec.ranks)}, {spec.units}, {', '.join(flags)}]{region}: "
        f"{spec.description}"
    )


def parameter_lines(model: Any, indent: str) -> list[str]:
    """A pydantic Parameters model as lines: name [units] default (bounds): description."""
    lines = []
    for field_name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        limits = (("gt", ">"), ("ge", ">="), ("lt", "<"))
        bounds = [f"{op} {extra[key]:g}" for key, op in limits if key in extra]
        for rule in info.metadata:
            for key, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
                if getattr(rule, key, None) is not None:
                    bounds.append(f"{op} {getattr(rule, key):g}")
        if info.is_required():
            default = "required"
        elif info.default_factory is not None:
            made = info.default_factory()  # a nested table's defaults are listed under it
            table = hasattr(type(made), "model_fields")
            default = "defaults below" if table else f"default {made!r}"
        else:
            value = info.default
            default = f"default {getattr(value, 'to_case', lambda v=value: v)()!r}"
        if field_name == "type" and _is_tag(info.annotation):
            continue  # shown as the label of the model (type = 'flux')
        words = [field_name]
        if "units" in extra or "unit_rule" in extra:
            words.append(f"[{extra.get('units') or extra['unit_rule']}]")
        words.append(default)
        if bounds:
            words.append(f"({', '.join(bounds)})")
        lines.append(f"{indent}{' '.join(words)}: {info.description or ''}")
        for nested in _nested_models(info.annotation):
            tag = nested.model_fields.get("type")
            label = f"type = {typing.get_args(tag.annotation)[0]!r}" if tag else nested.__name__
            summary = (nested.__doc__ or "").strip().split("\n\n")[0]  # the first paragraph
            lines.append(f"{indent}  {label}: {' '.join(summary.split())}")
            lines += parameter_lines(nested, indent + "    ")
    return lines


def _is_tag(annotation: Any) -> bool:
    """A ``type: Literal["flux"]`` field: the tag that selects a model of a ``one_of``."""
    return typing.get_origin(annotation) is typing.Literal and len(typing.get_args(annotation)) == 1


def _nested_models(annotation: Any) -> list[type]:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type] = []
    for arg in typing.get_args(annotation):
        found += _nested_models(arg)
    return found
