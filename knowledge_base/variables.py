"""Knowledge base domain logic: the variables a reply body may hold, checked and filled.

A body is text with placeholders ``{{customer.first_name}}`` or, with a fallback for when the
value is missing, ``{{customer.first_name | "there"}}``.  ``template_parse`` runs when a reply
is saved and refuses anything it could not fill later (an unknown variable, unbalanced
braces, a bad fallback) with the variable's name and position, so a reply never fails
when an operator sends it.  ``template_render`` fills a parsed body from a dict of values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.exceptions import ValidationFailed

# name → what it stands for (shown to coordinators in errors and docs).
VARIABLES: dict[str, str] = {
    "customer.first_name": "The customer's first name",
    "customer.name": "The customer's full name",
    "operator.name": "The name of the operator sending the reply",
    "conversation.reference": "The conversation's reference (8 characters, upper case)",
    "today.opening_hours": "Today's opening hours",
}

_PLACEHOLDER = re.compile(
    r"""\{\{\s*(?P<name>[^{}|"\s]*)\s*(?:\|\s*(?P<fallback>"[^"{}]*")\s*)?\}\}"""
)
_NAME = re.compile(r"[a-z][a-z_]*(?:\.[a-z][a-z_]*)+")


@dataclass(frozen=True)
class Placeholder:
    start: int
    end: int
    name: str
    fallback: str


def _refuse(message: str, *, position: int, reason: str, **data: object) -> ValidationFailed:
    return ValidationFailed(message, field="body", reason=reason, position=position, **data)


def template_parse(body: str) -> list[Placeholder]:
    """The placeholders of ``body``, in order; ValidationFailed (``data.field = "body"``,
    ``data.reason`` ``malformed`` or ``unknown_variable``, ``data.variable``,
    ``data.position``) for anything that could not be filled at send time."""
    found: list[Placeholder] = []
    cursor = 0
    for match in _PLACEHOLDER.finditer(body):
        _check_plain(body, cursor, match.start())
        name = match.group("name")
        if not name:
            raise _refuse(
                f"Empty variable at character {match.start() + 1}.",
                position=match.start(),
                reason="malformed",
                variable="",
            )
        if not _NAME.fullmatch(name):
            raise _refuse(
                f"'{name}' at character {match.start() + 1} is not a variable name "
                "(expected e.g. customer.first_name).",
                position=match.start(),
                reason="malformed",
                variable=name,
            )
        if name not in VARIABLES:
            raise _refuse(
                f"Unknown variable '{name}' at character {match.start() + 1}. "
                f"Known: {', '.join(VARIABLES)}.",
                position=match.start(),
                reason="unknown_variable",
                variable=name,
                known=list(VARIABLES),
            )
        fallback = match.group("fallback")
        found.append(
            Placeholder(match.start(), match.end(), name, fallback[1:-1] if fallback else "")
        )
        cursor = match.end()
    _check_plain(body, cursor, len(body))
    return found


def _check_plain(body: str, start: int, end: int) -> None:
    """Text between placeholders may not hold a stray ``{{`` or ``}}``: it is a placeholder
    gone wrong (unclosed, bad fallback quoting), never something a customer should see."""
    segment = body[start:end]
    for token in ("{{", "}}"):
        index = segment.find(token)
        if index >= 0:
            position = start + index
            near = body[position : position + 40]
            raise _refuse(
                f"Malformed variable at character {position + 1}: {near!r}. Write "
                '{{name}} or {{name | "fallback"}}.',
                position=position,
                reason="malformed",
                variable=_name_near(near),
            )


def _name_near(text: str) -> str:
    match = re.match(r"\{\{\s*([^\s|{}\"]*)", text)
    return match.group(1) if match else ""


def template_names(body: str) -> set[str]:
    """The variable names a (saved) body uses; never raises."""
    return {match.group("name") for match in _PLACEHOLDER.finditer(body)}


def template_render(body: str, values: dict[str, str | None]) -> str:
    """``body`` with every placeholder replaced by its value, or by its fallback when the
    value is missing or empty.  A variable removed since the body was saved renders as its
    fallback: sending never fails."""
    parts: list[str] = []
    cursor = 0
    for match in _PLACEHOLDER.finditer(body):
        parts.append(body[cursor : match.start()])
        fallback = match.group("fallback")
        value = values.get(match.group("name"))
        parts.append(value if value else (fallback[1:-1] if fallback else ""))
        cursor = match.end()
    parts.append(body[cursor:])
    return "".join(parts)
