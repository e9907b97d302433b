"""Typed parsing of inbound WebSocket frames and JSON bodies.

Every refusal names the field and carries a stable code (missing_field, wrong_type,
invalid_value), so a client can tell exactly what it got wrong.
"""

from __future__ import annotations

from typing import Any

from hub.exceptions import ErrorCode, ValidationFailed

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "a list",
}


def field(
    payload: dict[str, Any],
    name: str,
    kind: type,
    *,
    required: bool = True,
    default: Any = None,
    max_length: int | None = None,
    minimum: int | None = None,
    choices: tuple[str, ...] | None = None,
    nullable: bool = False,
) -> Any:
    """One field of a JSON object, checked for presence, type, length, range and choices.

    ``nullable``: the key must be present (when required) but may be ``null``, which means
    something of its own (e.g. ``to_operator_id: null`` — the queue); returns None then.
    """
    if nullable and name in payload and payload[name] is None:
        return None
    if name not in payload or payload[name] is None:
        if required:
            raise ValidationFailed(
                f"Field '{name}' is required.", code=ErrorCode.MISSING_FIELD, field=name
            )
        return default
    value = payload[name]
    # bool is an int in Python; a JSON true is never a valid integer here.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValidationFailed(
            f"Field '{name}' must be {_TYPE_NAMES.get(kind, kind.__name__)}.",
            code=ErrorCode.WRONG_TYPE,
            field=name,
        )
    if kind is int and not -(2**63) <= value < 2**63:
        raise ValidationFailed(
            f"Field '{name}' is out of range.", code=ErrorCode.INVALID_VALUE, field=name
        )
    if max_length is not None and len(value) > max_length:
        raise ValidationFailed(
            f"Field '{name}' is longer than {max_length}.",
            code=ErrorCode.INVALID_VALUE,
            field=name,
        )
    if minimum is not None and value < minimum:
        raise ValidationFailed(
            f"Field '{name}' must be at least {minimum}.", code=ErrorCode.INVALID_VALUE, field=name
        )
    if choices is not None and value not in choices:
        raise ValidationFailed(
            f"Field '{name}' must be one of: {', '.join(choices)}.",
            code=ErrorCode.INVALID_VALUE,
            field=name,
        )
    return value


def id_list(payload: dict[str, Any], name: str, *, required: bool = True) -> list[int] | None:
    """A JSON list of positive integers (ids); None when optional and absent."""
    value = field(payload, name, list, required=required)
    if value is None:
        return None
    for item in value:
        if not isinstance(item, int) or isinstance(item, bool):
            raise ValidationFailed(
                f"Field '{name}' must be a list of integers.", code=ErrorCode.WRONG_TYPE, field=name
            )
        if item < 1:
            raise ValidationFailed(f"Field '{name}' holds an id below 1.", field=name)
    return value
