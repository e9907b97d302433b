"""HSM read layer: loading templates for a user, listing them, the templates that may be sent
now, and filling a template with parameters (``template_render`` for the conversation
timeline, ``template_components`` / ``template_message`` for the WhatsApp Cloud API).

The three filling functions are pure — no database, no clock — so the chat send path can call
them on a dict from ``templates_sendable`` or ``template_sendable_get`` (or a ``Template``).
Importing this module has no side effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q

from hsm import rules
from hsm.models import Status, Template
from hub.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from hub.roles import PERM_MANAGE_HSM, is_staff_member


def can_manage(actor: AbstractBaseUser | None) -> bool:
    return bool(getattr(actor, "is_authenticated", False) and actor.has_perm(PERM_MANAGE_HSM))


def require_staff(actor: AbstractBaseUser | None) -> None:
    if actor is None or not is_staff_member(actor):
        raise PermissionDenied("Only customer-service staff may use WhatsApp templates.")


def _visible(actor: AbstractBaseUser) -> Any:
    """Live templates the actor may see: managers all, operators the approved ones."""
    qs = Template.objects.filter(retired_at__isnull=True)
    return qs if can_manage(actor) else qs.filter(status=Status.APPROVED)


def access_template(*, actor: AbstractBaseUser, template_id: Any, lock: bool = False) -> Template:
    """A live template the actor may see; NotFound alike for a missing and a hidden one."""
    require_staff(actor)
    if isinstance(template_id, bool) or not isinstance(template_id, int):
        raise NotFound("No such template.", template_id=template_id)
    qs = _visible(actor).select_related("updated_by")
    if lock:
        qs = qs.select_for_update(of=("self",))
    template = qs.filter(pk=template_id).first()
    if template is None:
        raise NotFound("No such template.", template_id=template_id)
    return template


def template_dict(template: Template) -> dict[str, Any]:
    """What a coordinator edits and an operator picks (``version`` goes back with the next
    write).  ``header_parameters`` + ``body_parameters`` is how many parameters sending it
    takes."""
    updated_by = template.updated_by
    return {
        "id": template.pk,
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "header": template.header,
        "header_example": template.header_example,
        "body": template.body,
        "body_examples": list(template.body_examples),
        "footer": template.footer,
        "buttons": [dict(b) for b in template.buttons],
        "status": template.status,
        "rejection_reason": template.rejection_reason,
        "header_parameters": 1 if template.header_example else 0,
        "body_parameters": len(template.body_examples),
        "version": template.version,
        "created_at": template.created_at.isoformat(),
        "updated_at": template.updated_at.isoformat(),
        "status_changed_at": (
            template.status_changed_at.isoformat() if template.status_changed_at else None
        ),
        "updated_by": updated_by.get_username() if updated_by else None,
    }


def _language_family(language: str) -> Q:
    base = language.partition("_")[0]
    return Q(language=base) | Q(language__startswith=f"{base}_")


def _language_rank(template_language: str, wanted: str) -> int:
    """0: the same code; 1: the bare language (``es`` for ``es_ES``, or the reverse);
    2: another variant of it (``es_MX`` for ``es_ES``)."""
    if template_language == wanted:
        return 0
    if "_" not in template_language or "_" not in wanted:
        return 1
    return 2


def template_list(
    *, actor: AbstractBaseUser, status: str | None = None, language: str | None = None
) -> list[dict[str, Any]]:
    """Live templates the actor may see, by name then language.  ``status`` filters
    exactly; ``language`` keeps the language's family (``es`` → es, es_ES, es_MX…), the
    closest codes first.  Errors: PermissionDenied (not staff); ValidationFailed (an
    unknown status or a malformed language)."""
    require_staff(actor)
    qs = _visible(actor).select_related("updated_by")
    if status is not None:
        if status not in Status.values:
            raise ValidationFailed(
                f"status is one of: {', '.join(Status.values)}.", field="status", value=status
            )
        qs = qs.filter(status=status)
    return _by_language(qs, language)


def _by_language(qs: Any, language: str | None) -> list[dict[str, Any]]:
    if language is None:
        return [template_dict(t) for t in qs.order_by("name", "language")]
    wanted = rules.language_clean(language)
    templates = list(qs.filter(_language_family(wanted)))
    templates.sort(key=lambda t: (_language_rank(t.language, wanted), t.name, t.language))
    return [template_dict(t) for t in templates]


def templates_sendable(language: str | None = None) -> list[dict[str, Any]]:
    """The approved templates, which are the only ones WhatsApp delivers outside the 24-hour
    window.  With ``language`` (``es``, ``es_ES``, ``en-us``…), only that language's family,
    closest code first: for ``es_ES``, es_ES templates, then ``es``, then other Spanish
    variants; for ``es``, ``es`` then every ``es_*``.  One query.  Errors: ValidationFailed
    (``field`` ``language``) for a malformed code."""
    qs = Template.objects.filter(retired_at__isnull=True, status=Status.APPROVED)
    return _by_language(qs.select_related("updated_by"), language)


def template_sendable_get(*, template_id: int) -> dict[str, Any]:
    """One template, checked to be sendable at this moment (to call inside the send
    transaction, right before sending).  Errors: NotFound (missing or retired); Conflict
    (not approved: ``data.status`` says what it is)."""
    template = (
        Template.objects.filter(pk=template_id, retired_at__isnull=True)
        .select_related("updated_by")
        .first()
    )
    if template is None:
        raise NotFound("No such template.", template_id=template_id)
    if template.status != Status.APPROVED:
        raise Conflict(
            f"Only approved templates can be sent; this one is {template.status}.",
            template_id=template.pk,
            status=template.status,
        )
    return template_dict(template)


# --- filling (pure) -------------------------------------------------------------------------
def template_render(template: Template | dict[str, Any], parameters: Sequence[str]) -> str:
    """The text the customer receives, for the conversation timeline: header, body and
    footer filled in and separated by a blank line (buttons are not text).

    ``parameters``: the header's ``{{1}}`` first when the header has one, then the body's
    ``{{1}}``, ``{{2}}``… in order.  Errors: ValidationFailed (``field`` ``parameters``) for
    a wrong count (``data.expected``, ``data.given``), a parameter that is not a string,
    empty, or holds a new line, a tab or five spaces (``data.index``), or a filled part
    over WhatsApp's length."""
    header, body, footer = rules.filled_parts(template, parameters)
    return "\n\n".join(part for part in (header, body, footer) if part)


def template_components(
    template: Template | dict[str, Any], parameters: Sequence[str]
) -> list[dict[str, Any]]:
    """The Cloud API ``components`` for sending this template with these parameters: a
    ``header`` component when the header has a placeholder, a ``body`` component when the
    body has any (a template without placeholders sends ``[]``).  Same parameters and
    errors as ``template_render``."""
    rules.filled_parts(template, parameters)  # checks counts, text and filled lengths
    header_values, body_values = rules.parameters_split(template, parameters)
    components: list[dict[str, Any]] = []
    if header_values:
        components.append(
            {"type": "header", "parameters": [{"type": "text", "text": v} for v in header_values]}
        )
    if body_values:
        components.append(
            {"type": "body", "parameters": [{"type": "text", "text": v} for v in body_values]}
        )
    return components


def template_message(
    template: Template | dict[str, Any], parameters: Sequence[str]
) -> dict[str, Any]:
    """The Cloud API ``template`` object of a message:
    ``{"name", "language": {"code"}, "components"}``."""
    name = template["name"] if isinstance(template, dict) else template.name
    language = template["language"] if isinstance(template, dict) else template.language
    return {
        "name": name,
        "language": {"code": language},
        "components": template_components(template, parameters),
    }
