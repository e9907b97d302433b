"""HSM rules (pure domain logic, no database): what a well-formed WhatsApp template is, and
how one is filled with parameters.

The services check a template's content here before anything is written, so a stored
template is always well formed and rendering it can only fail on the parameters.  Every
refusal is a ``ValidationFailed`` naming the ``field`` (``body``, ``body_examples[1]``,
``buttons[0].text``…) and, where it helps, a ``reason`` and the offending ``placeholder``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hsm.models import Category
from hub.exceptions import ErrorCode, ValidationFailed

# WhatsApp's limits (Cloud API message templates).
NAME_MAX = 512
BODY_MAX = 1024
HEADER_MAX = 60
FOOTER_MAX = 60
BUTTONS_MAX = 10
URL_BUTTONS_MAX = 2
BUTTON_TEXT_MAX = 25
URL_MAX = 2000
EXAMPLE_MAX = 200
REJECTION_REASON_MAX = 1000

NAME = re.compile(r"[a-z0-9_]+")
LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")
# Any {{…}} (shortest match); what is inside must be a number from 1 without leading zeros.
_CANDIDATE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NUMBER = re.compile(r"[1-9][0-9]*")
_FILLED = re.compile(r"\{\{([1-9][0-9]*)\}\}")
# The Cloud API refuses parameter text with a new line, a tab or more than 4 spaces in a row.
_BAD_PARAMETER = re.compile(r"[\n\r\t]| {5,}")
BUTTON_TYPES = ("quick_reply", "url")


def _invalid(message: str, field: str, **data: Any) -> ValidationFailed:
    return ValidationFailed(message, field=field, **data)


def _wrong_type(message: str, field: str) -> ValidationFailed:
    return ValidationFailed(message, code=ErrorCode.WRONG_TYPE, field=field)


# --- placeholders -----------------------------------------------------------------------
def placeholders(text: str, *, field: str) -> list[int]:
    """The placeholder numbers in ``text`` in order of appearance; refuses malformed ones
    (``{{ 1}}``, ``{{one}}``, ``{{0}}``, ``{{01}}``, an unclosed ``{{``)."""
    numbers: list[int] = []
    rest: list[tuple[int, str]] = []  # (offset, text) between the placeholders
    last = 0
    for match in _CANDIDATE.finditer(text):
        inner = match.group(1)
        if not _NUMBER.fullmatch(inner):
            if inner.strip() != inner and _NUMBER.fullmatch(inner.strip()):
                hint = f"no spaces inside the braces: write {{{{{inner.strip()}}}}}"
            elif inner.strip().isdigit():
                hint = "placeholders are numbered from 1, without leading zeros"
            else:
                hint = "a placeholder is a number in double braces, e.g. {{1}}"
            raise _invalid(
                f"{match.group(0)} in the {field} is not a valid placeholder: {hint}.",
                field,
                reason="malformed_placeholder",
                placeholder=match.group(0),
                position=match.start(),
            )
        numbers.append(int(inner))
        rest.append((last, text[last : match.start()]))
        last = match.end()
    rest.append((last, text[last:]))
    for offset, piece in rest:
        for stray in ("{{", "}}"):
            if stray in piece:
                raise _invalid(
                    f"The {field} has an unmatched '{stray}': placeholders are written {{{{1}}}}.",
                    field,
                    reason="malformed_placeholder",
                    placeholder=stray,
                    position=offset + piece.find(stray),
                )
    return numbers


def placeholder_count(numbers: Sequence[int], *, field: str) -> int:
    """How many parameters ``numbers`` take: they must be 1…n with none missing (a number
    may appear more than once; each occurrence takes the same parameter)."""
    if not numbers:
        return 0
    present = set(numbers)
    missing = [n for n in range(1, max(present) + 1) if n not in present]
    if missing:
        names = ", ".join(f"{{{{{n}}}}}" for n in missing)
        raise _invalid(
            f"The {field} skips {names}: placeholders are numbered {{{{1}}}}, {{{{2}}}}… "
            "without gaps.",
            field,
            reason="missing_placeholder",
            placeholder=f"{{{{{missing[0]}}}}}",
            missing=[f"{{{{{n}}}}}" for n in missing],
        )
    return max(present)


def parameter_text_problem(text: str) -> str | None:
    """Why the Cloud API would refuse ``text`` as a parameter (or an example), or None."""
    if not text.strip():
        return "is empty"
    if _BAD_PARAMETER.search(text):
        return "holds a new line, a tab or more than four spaces in a row"
    return None


# --- fields ---------------------------------------------------------------------------------
def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _wrong_type(f"Field '{field}' must be a string.", field)
    return value.strip()


def name_clean(value: object) -> str:
    """Lower-case letters, digits and underscores, at most 512 (WhatsApp's rule)."""
    name = _text(value, "name")
    if not name:
        raise _invalid("The name may not be empty.", "name")
    if len(name) > NAME_MAX:
        raise _invalid(f"The name is longer than {NAME_MAX} characters.", "name")
    if not NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
        raise _invalid(
            "A template name holds only lower-case letters, digits and underscores"
            + (f", e.g. {suggestion}." if suggestion else "."),
            "name",
            value=name,
            suggestion=suggestion or None,
        )
    return name


def language_clean(value: object, *, field: str = "language") -> str:
    """A WhatsApp language code: ``es``, ``en_US``, ``pt_BR``; ``en-us`` is accepted and
    written ``en_US``."""
    raw = _text(value, field)
    base, _, region = raw.replace("-", "_").partition("_")
    code = base.lower() + (f"_{region.upper()}" if region else "")
    if not LANGUAGE.fullmatch(code):
        raise _invalid(
            "The language is a WhatsApp code such as es, en_US or pt_BR.", field, value=raw
        )
    return code


def category_clean(value: object) -> str:
    category = _text(value, "category").lower()
    if category not in Category.values:
        raise _invalid(
            f"The category is one of: {', '.join(Category.values)}.", "category", value=category
        )
    return category


def body_clean(value: object) -> tuple[str, int]:
    """The body and how many parameters it takes."""
    body = _text(value, "body")
    if not body:
        raise _invalid("The body may not be empty.", "body")
    if len(body) > BODY_MAX:
        raise _invalid(
            f"The body is longer than {BODY_MAX} characters.",
            "body",
            max_chars=BODY_MAX,
            chars=len(body),
        )
    return body, placeholder_count(placeholders(body, field="body"), field="body")


def header_clean(value: object) -> tuple[str, int]:
    """An optional one-line text header with at most one placeholder, ``{{1}}``."""
    header = _text(value, "header")
    if len(header) > HEADER_MAX:
        raise _invalid(
            f"The header is longer than {HEADER_MAX} characters.", "header", max_chars=HEADER_MAX
        )
    if "\n" in header or "\r" in header:
        raise _invalid("The header is a single line.", "header")
    numbers = placeholders(header, field="header")
    count = placeholder_count(numbers, field="header")
    if len(numbers) > 1 or count > 1:
        raise _invalid(
            "The header may hold one placeholder only, {{1}}.",
            "header",
            reason="too_many_placeholders",
        )
    return header, count


def footer_clean(value: object) -> str:
    footer = _text(value, "footer")
    if len(footer) > FOOTER_MAX:
        raise _invalid(
            f"The footer is longer than {FOOTER_MAX} characters.", "footer", max_chars=FOOTER_MAX
        )
    if "{{" in footer or "}}" in footer:
        raise _invalid(
            "The footer may not hold placeholders.", "footer", reason="placeholder_not_allowed"
        )
    return footer


def _example(value: object, field: str, placeholder: str) -> str:
    example = _text(value, field)
    problem = parameter_text_problem(example)
    if problem:
        raise _invalid(f"The example for {placeholder} {problem}.", field, placeholder=placeholder)
    if len(example) > EXAMPLE_MAX:
        raise _invalid(
            f"The example for {placeholder} is longer than {EXAMPLE_MAX} characters.",
            field,
            placeholder=placeholder,
        )
    return example


def body_examples_clean(value: object, count: int) -> list[str]:
    """Exactly one example value per body placeholder, in order (WhatsApp reviews them)."""
    if not isinstance(value, list | tuple):
        raise _wrong_type("Field 'body_examples' must be a list of strings.", "body_examples")
    if len(value) != count:
        raise _invalid(
            f"The body has {count} placeholder{'s' if count != 1 else ''} and needs "
            f"{count} example{'s' if count != 1 else ''}, one for each; {len(value)} given.",
            "body_examples",
            reason="examples_count",
            expected=count,
            given=len(value),
        )
    return [
        _example(item, f"body_examples[{index}]", f"{{{{{index + 1}}}}}")
        for index, item in enumerate(value)
    ]


def header_example_clean(value: object, count: int) -> str:
    example = _text(value, "header_example")
    if count and not example:
        raise _invalid(
            "The header holds {{1}}: give an example value for it.",
            "header_example",
            reason="examples_count",
            expected=1,
            given=0,
        )
    if not count and example:
        raise _invalid(
            "The header has no placeholder, so it takes no example.",
            "header_example",
            reason="examples_count",
            expected=0,
            given=1,
        )
    return _example(example, "header_example", "{{1}}") if count else ""


def buttons_clean(value: object) -> list[dict[str, str]]:
    """Up to 10 buttons: quick replies (``{type, text}``) kept together, and at most two
    URL buttons (``{type, text, url}``, a fixed http(s) address)."""
    if not isinstance(value, list | tuple):
        raise _wrong_type("Field 'buttons' must be a list of objects.", "buttons")
    if len(value) > BUTTONS_MAX:
        raise _invalid(f"A template has at most {BUTTONS_MAX} buttons.", "buttons")
    buttons: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(value):
        where = f"buttons[{index}]"
        if not isinstance(item, Mapping):
            raise _wrong_type(f"{where} must be an object with type and text.", where)
        kind = item.get("type")
        if kind not in BUTTON_TYPES:
            raise _invalid(
                f"{where}.type is one of: {', '.join(BUTTON_TYPES)}.", f"{where}.type", value=kind
            )
        allowed = {"type", "text"} | ({"url"} if kind == "url" else set())
        unknown = sorted(str(key) for key in item if key not in allowed)
        if unknown:
            raise _invalid(
                f"{where} has an unknown key '{unknown[0]}' for a {kind} button.",
                f"{where}.{unknown[0]}",
            )
        text = _text(item.get("text", ""), f"{where}.text")
        if not text:
            raise _invalid(f"{where}.text may not be empty.", f"{where}.text")
        if len(text) > BUTTON_TEXT_MAX:
            raise _invalid(
                f"{where}.text is longer than {BUTTON_TEXT_MAX} characters.", f"{where}.text"
            )
        if "{{" in text or "}}" in text or "\n" in text:
            raise _invalid(f"{where}.text is plain text on one line.", f"{where}.text")
        if text.casefold() in seen:
            raise _invalid(
                f"{where}.text repeats the text of buttons[{seen[text.casefold()]}].",
                f"{where}.text",
            )
        seen[text.casefold()] = index
        button = {"type": str(kind), "text": text}
        if kind == "url":
            url = _text(item.get("url", ""), f"{where}.url")
            if not re.fullmatch(r"https?://[^\s{}]+", url) or len(url) > URL_MAX:
                raise _invalid(
                    f"{where}.url must be a fixed http:// or https:// address of at most "
                    f"{URL_MAX} characters, without spaces or placeholders.",
                    f"{where}.url",
                )
            button["url"] = url
        buttons.append(button)
    kinds = [b["type"] for b in buttons]
    if kinds.count("url") > URL_BUTTONS_MAX:
        raise _invalid(f"A template has at most {URL_BUTTONS_MAX} URL buttons.", "buttons")
    replies = [i for i, kind in enumerate(kinds) if kind == "quick_reply"]
    if replies and replies[-1] - replies[0] + 1 != len(replies):
        raise _invalid(
            "Quick-reply buttons must be next to each other, not split by a URL button.",
            "buttons",
        )
    return buttons


@dataclass(frozen=True)
class Content:
    """A template's checked content (what the services store)."""

    name: str
    language: str
    category: str
    header: str
    header_example: str
    body: str
    body_examples: list[str]
    footer: str
    buttons: list[dict[str, str]]


def content_clean(
    *,
    name: object,
    language: object,
    category: object,
    body: object,
    body_examples: object = (),
    header: object = "",
    header_example: object = "",
    footer: object = "",
    buttons: object = (),
) -> Content:
    """Every content rule, field by field; the first broken one is raised."""
    clean_name = name_clean(name)
    clean_language = language_clean(language)
    clean_category = category_clean(category)
    clean_header, header_count = header_clean(header)
    clean_header_example = header_example_clean(header_example, header_count)
    clean_body, body_count = body_clean(body)
    examples = body_examples_clean(body_examples, body_count)
    return Content(
        name=clean_name,
        language=clean_language,
        category=clean_category,
        header=clean_header,
        header_example=clean_header_example,
        body=clean_body,
        body_examples=examples,
        footer=footer_clean(footer),
        buttons=buttons_clean(buttons),
    )


def rejection_reason_clean(value: object) -> str:
    reason = _text(value, "rejection_reason")
    if not reason:
        raise _invalid(
            "A rejection needs the reason WhatsApp gave.", "rejection_reason", reason="required"
        )
    if len(reason) > REJECTION_REASON_MAX:
        raise _invalid(
            f"The rejection reason is longer than {REJECTION_REASON_MAX} characters.",
            "rejection_reason",
        )
    return reason


# --- filling a template -------------------------------------------------------------------
def _part(template: Any, key: str) -> str:
    value = template.get(key) if isinstance(template, Mapping) else getattr(template, key, "")
    return value or ""


def parameters_split(template: Any, parameters: Sequence[str]) -> tuple[list[str], list[str]]:
    """Checks ``parameters`` (the header's ``{{1}}`` first, if the header has one, then the
    body's in order) and splits them into (header, body) parameters."""
    header, body = _part(template, "header"), _part(template, "body")
    header_count = placeholder_count(placeholders(header, field="header"), field="header")
    body_count = placeholder_count(placeholders(body, field="body"), field="body")
    if isinstance(parameters, str) or not isinstance(parameters, Sequence):
        raise _wrong_type("Field 'parameters' must be a list of strings.", "parameters")
    expected = header_count + body_count
    if len(parameters) != expected:
        layout = (
            f"{header_count} for the header and {body_count} for the body"
            if header_count
            else f"{body_count} for the body"
        )
        raise _invalid(
            f"This template takes {expected} parameter{'s' if expected != 1 else ''} "
            f"({layout}); {len(parameters)} given.",
            "parameters",
            reason="parameters_count",
            expected=expected,
            given=len(parameters),
        )
    for index, value in enumerate(parameters):
        in_header = index < header_count
        placeholder = f"{{{{{1 if in_header else index - header_count + 1}}}}}"
        part = "header" if in_header else "body"
        if not isinstance(value, str):
            raise ValidationFailed(
                f"Parameter {index + 1} (the {part}'s {placeholder}) must be a string.",
                code=ErrorCode.WRONG_TYPE,
                field="parameters",
                index=index,
            )
        problem = parameter_text_problem(value)
        if problem:
            raise _invalid(
                f"Parameter {index + 1} (the {part}'s {placeholder}) {problem}.",
                "parameters",
                index=index,
                part=part,
                placeholder=placeholder,
            )
    return list(parameters[:header_count]), list(parameters[header_count:])


def fill(text: str, values: Sequence[str]) -> str:
    """``text`` with each ``{{n}}`` replaced by ``values[n - 1]`` (text already checked)."""
    return _FILLED.sub(lambda match: values[int(match.group(1)) - 1], text)


def filled_parts(template: Any, parameters: Sequence[str]) -> tuple[str, str, str]:
    """(header, body, footer) filled in; refuses parameters that make a part too long."""
    header_values, body_values = parameters_split(template, parameters)
    header = fill(_part(template, "header"), header_values)
    body = fill(_part(template, "body"), body_values)
    if len(header) > HEADER_MAX:
        raise _invalid(
            f"With these parameters the header is longer than {HEADER_MAX} characters.",
            "parameters",
            part="header",
            max_chars=HEADER_MAX,
        )
    if len(body) > BODY_MAX:
        raise _invalid(
            f"With these parameters the body is longer than {BODY_MAX} characters.",
            "parameters",
            part="body",
            max_chars=BODY_MAX,
        )
    return header, body, _part(template, "footer")
