"""Case data as read, checked before and through validation, with errors located in the case.

:func:`check_values` refuses what no model may meet anywhere in a case (non-finite numbers,
integers beyond 64 bits, nesting without end); :func:`validate` runs a pydantic model and turns
its first error into one :class:`~app.errors.CaseError` at the dotted path the user wrote
(``physics.heat.boundaries.left``), with the allowed keys or kinds where that helps.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from app.errors import CaseError, did_you_mean, listing, shown

MAX_NESTING = 32
_INT64 = 2**63


def check_values(raw: Any) -> None:
    """Refuse, anywhere in the case as read, what no model below may meet: numbers that are not
    finite (TOML's ``nan`` and ``inf``, ``1e999``), integers beyond 64 bits (TOML's limit) and
    nesting deeper than :data:`MAX_NESTING`.

    Raises:
        CaseError: At the dotted path of the first such value.
    """
    pending: list[tuple[Any, str, int]] = [(raw, "", 0)]
    while pending:  # a loop, not recursion: the nesting is what is being checked
        node, path, depth = pending.pop()
        if isinstance(node, bool):
            continue
        if isinstance(node, float) and not math.isfinite(node):
            raise CaseError(path, f"{node} is not a finite number", "give a finite value")
        if isinstance(node, int) and not -_INT64 <= node < _INT64:
            raise CaseError(
                path, f"the integer {shown(node)} does not fit in 64 bits", "give a smaller value"
            )
        if isinstance(node, Mapping | list | tuple) and depth >= MAX_NESTING:
            raise CaseError(path, f"values are nested more than {MAX_NESTING} levels deep")
        if isinstance(node, Mapping):
            children = [(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()]
        elif isinstance(node, list | tuple):
            children = [(v, f"{path}[{index}]") for index, v in enumerate(node)]
        else:
            continue
        pending += [(value, where, depth + 1) for value, where in reversed(children)]


def refuse_booleans(annotation: Any, raw: Any) -> None:
    """Refuse TOML's true or false where a field takes numbers and no booleans: pydantic reads
    true as 1, so ``cells = [true]`` made one cell and ``repeat = true`` one cycle.

    Raises:
        ValueError: ``raw`` is, or holds, a boolean (a field validator's error at its path).
    """
    kinds, pending = set(), [annotation]
    while pending:  # the types an annotation names, through unions, lists and dicts
        kind = pending.pop()
        kinds.add(typing.get_origin(kind) or kind)
        pending += [arg for arg in typing.get_args(kind) if not isinstance(arg, str)]
    if bool in kinds or Any in kinds or not kinds & {int, float}:
        return
    values, found = [raw], None
    while values and found is None:
        value = values.pop()
        if isinstance(value, bool):
            found = value
        elif isinstance(value, Mapping | list):
            values += list(value.values() if isinstance(value, Mapping) else value)
    if found is not None:
        raise ValueError(
            f"expected a number, got {str(found).lower()} (a yes/no value); write the number"
        )


def validate[M: BaseModel](model: type[M], raw: Mapping[str, Any], prefix: str) -> M:
    """Validate ``raw`` with ``model``; the first problem becomes a CaseError under ``prefix``."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _case_error(exc, model, raw, prefix) from None


def _first_error(errors: list[Any]) -> Any:
    """The error to report: pydantic's first, unless a required key is missing beside an
    unknown key that is its misspelling (``[Mesh]``): then the unknown key, with its
    suggestion, rather than 'missing required key mesh' about a table the case did write."""
    missing = [e["loc"] for e in errors if e["type"] == "missing"]
    for error in errors if missing else ():
        *parent, key = error["loc"] or ("",)
        if error["type"] != "extra_forbidden" or not isinstance(key, str):
            continue
        names = [loc[-1] for loc in missing if list(loc[:-1]) == parent]
        if any(key.lower() == str(name).lower() for name in names) or did_you_mean(key, names):
            return error
    return errors[0]


def _case_error(exc: ValidationError, model: type[BaseModel], raw: Any, prefix: str) -> CaseError:
    error = _first_error(exc.errors())
    keys = _data_path(error["loc"], raw)
    path = ".".join([prefix, *keys] if prefix else keys)
    kind, ctx, given = error["type"], error.get("ctx", {}), _as_written(raw, keys, error)
    key = keys[-1] if keys else ""
    more = exc.error_count() - 1
    suffix = f" ({more} more problem{'s' if more > 1 else ''} after this one)" if more else ""
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, keys[:-1], raw)
        hint = did_you_mean(key, allowed)
        return CaseError(
            path,
            f"unknown key {shown(key)}{hint}; allowed keys here: {listing(allowed)}{suffix}",
            "correct the spelling or remove the key",
        )
    if kind == "missing":
        return CaseError(path, f"missing required key {shown(key)}{suffix}")
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        expected = ctx.get("expected_tags", "")
        return CaseError(
            path,
            f"unknown type {shown(tag)}"
            f"{did_you_mean(tag, expected.replace(chr(39), '').split(', '))}; "
            f"expected one of {expected}{suffix}",
        )
    if kind == "union_tag_not_found":
        tags = _type_tags(model, keys, raw)
        return CaseError(
            path,
            f"the table needs a 'type' saying which kind it is, one of {listing(tags)}{suffix}",
            f'add type = "{tags[0]}" (or another kind)' if tags else None,
        )
    if kind == "literal_error" and isinstance(given, str):
        expected = ctx.get("expected", "")
        options = [part.strip(" '") for part in expected.replace(" or ", ", ").split(",")]
        return CaseError(
            path, f"got {shown(given)}{did_you_mean(given, options)}; expected {expected}{suffix}"
        )
    if kind in ("model_type", "dict_type"):
        return _table_expected(model, keys, raw, path, given, suffix)
    if kind == "too_short" and isinstance(given, Mapping | list):  # an empty table or list
        least = ctx.get("min_length", 1)
        table = isinstance(given, Mapping)
        noun = ("entry" if least == 1 else "entries") if table else f"value{'s' * (least > 1)}"
        fix = f"add a table [{path}.<name>]" if table else "write the values in the brackets"
        return CaseError(path, f"expected at least {least} {noun}, got {len(given)}{suffix}", fix)
    if kind == "value_error":  # a plug-in's validator: its message, as written
        return CaseError(path, str(ctx["error"]) + suffix)
    message = error["msg"]
    if kind != "scalebridge":
        message = message.replace("Input should be", "expected", 1)
        if not isinstance(given, Mapping | list):
            message += f", got {shown(given)}"
    return CaseError(path, message + suffix, _type_fix(kind, given))


def _as_written(raw: Any, keys: list[str], error: Any) -> Any:
    """The offending value as the case wrote it: pydantic reports a parameter it has already
    parsed by its parsed form (``Value(value=100000000.0)`` for "100 MPa")."""
    node = raw
    for key in keys:
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return error.get("input")
    return node


def _table_expected(
    model: type[BaseModel], keys: list[str], raw: Any, path: str, given: Any, suffix: str
) -> CaseError:
    """A value where a table (a model) goes: the table's keys, and how to write one or, for an
    optional table (``time.adaptive = 3``), that false or leaving it out is how to have none."""
    allowed = _allowed_keys(model, keys, raw)
    keys_here = f" with the keys {listing(allowed)}" if allowed else ""
    fix = f"write a table, e.g. [{path}] followed by lines key = value"
    if _optional(model, keys, raw):
        fix += ", or false (or leave it out) for none"
    return CaseError(path, f"expected a table{keys_here}, got {shown(given)}{suffix}", fix)


def _optional(model: type[BaseModel], keys: list[str], raw: Any) -> bool:
    """Whether the model's field at ``keys`` may be left out to have none (default None)."""
    parent: Any = model
    for key in keys[:-1]:
        raw = raw.get(key) if isinstance(raw, Mapping) else None
        parent = _step(parent, key, raw)
    field = parent.model_fields.get(keys[-1]) if _is_model(parent) and keys else None
    return field is not None and not field.is_required() and field.default is None


def _type_fix(kind: str, given: Any) -> str | None:
    """How to write a value of the kind pydantic expected, for the type errors a case file makes."""
    example = given if isinstance(given, int | float) and not isinstance(given, bool) else 1
    return {
        "list_type": f"write a list in brackets, e.g. [{example}]",
        "tuple_type": f"write a list in brackets, e.g. [{example}]",
        "int_parsing": "write a whole number without quotes, e.g. 10",
        "int_from_float": "write a whole number, e.g. 10",
        "float_parsing": "write a number without quotes, e.g. 1.5 or 2e-3",
        "bool_parsing": "write true or false",
        "string_type": f'write it in quotes, e.g. "{example}"',
    }.get(kind)


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


def _type_tags(model: type[BaseModel], keys: list[str], raw: Any) -> list[str]:
    """The values of ``type`` that the choice of models at ``keys`` accepts."""
    current: Any = model
    for key in keys[:-1]:
        raw = raw.get(key) if isinstance(raw, Mapping) else None
        current = _step(current, key, raw)
    if _is_model(current) and keys and keys[-1] in current.model_fields:
        annotation = current.model_fields[keys[-1]].annotation
    elif typing.get_origin(current) in (dict, Mapping):
        annotation = typing.get_args(current)[1]
    else:
        return []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    members = [
        typing.get_args(m)[0] if typing.get_args(m) else m for m in typing.get_args(annotation)
    ]
    tags = [
        m.model_fields["type"].annotation
        for m in members
        if _is_model(m) and "type" in m.model_fields
    ]
    return [str(tag) for literal in tags for tag in typing.get_args(literal)]


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
