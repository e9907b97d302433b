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


# --- sending: what a console offers ---------------------------------------------------------
def conversation_templates(
    *, actor: AbstractBaseUser, conversation_id: Any = None
) -> dict[str, Any]:
    """The approved templates to offer in a conversation the actor may see, the
    conversation's language family first (closest code first), then the other languages
    by name, so an operator whose customer writes in another language still finds one.

    Conversations carry no language: it is the knowledge base's guess from what the
    customer wrote (``knowledge_base.selectors.conversation_language``), or None.
    ``{"conversation_id", "channel", "takes_templates", "language", "templates"}``;
    ``takes_templates`` is False on a channel without a reply window (web chat), where
    ``template_send`` refuses.  Without ``conversation_id`` (a new conversation, outreach):
    every approved template, by name.  Errors: NotFound (the conversation is not theirs to
    see).
    """
    from chat.channels.registry import adapter_for
    from chat.selectors import access_conversation
    from knowledge_base.selectors import conversation_language

    require_staff(actor)
    if conversation_id is None:
        return {
            "conversation_id": None,
            "channel": None,
            "takes_templates": True,
            "language": None,
            "templates": templates_sendable(),
        }
    conversation = access_conversation(actor=actor, conversation_id=conversation_id)
    language = conversation_language(conversation)
    templates = templates_sendable()
    if language:
        try:
            wanted = rules.language_clean(language)
        except ValidationFailed:
            wanted = None
        if wanted:
            base = wanted.partition("_")[0]

            def rank(t: dict[str, Any]) -> tuple[int, str, str]:
                family = t["language"].partition("_")[0] == base
                first = _language_rank(t["language"], wanted) if family else 3
                return first, t["name"], t["language"]

            templates.sort(key=rank)
    return {
        "conversation_id": str(conversation.pk),
        "channel": conversation.channel,
        "takes_templates": adapter_for(conversation.channel).reply_window is not None,
        "language": language,
        "templates": templates,
    }


OUTREACH_SEARCH_LIMIT = 20


def outreach_customers(
    *, actor: AbstractBaseUser, query: str, channel: str = "whatsapp", limit: int = 10
) -> list[dict[str, Any]]:
    """Known customers a template may start a conversation with: those with an identity
    on ``channel``, whose name contains ``query`` or whose number contains its digits (at
    least 3), newest first.  Each says whether a conversation with them is already open on
    the channel (``open_conversation``: write there instead).  ``[{id, name, channel,
    phone, open_conversation: {id, operator_id, operator} | None}]``.  Errors:
    PermissionDenied (not staff who handle conversations); ValidationFailed (``limit``)."""
    from chat.models import Conversation, ConversationStatus, CustomerIdentity
    from chat.selectors import operator_label
    from hub.roles import PERM_HANDLE

    require_staff(actor)
    if not actor.has_perm(PERM_HANDLE):
        raise PermissionDenied("Only staff who handle conversations may start one.")
    if not 1 <= limit <= OUTREACH_SEARCH_LIMIT:
        raise ValidationFailed(
            f"limit must be between 1 and {OUTREACH_SEARCH_LIMIT}.", field="limit"
        )
    query = " ".join(query.split())[:100]
    digits = "".join(ch for ch in query if ch.isdigit())
    match = Q()
    if query:
        match = Q(customer__display_name__icontains=query)
        if len(digits) >= 3:
            match |= Q(external_id__contains=digits)
    identities = list(
        CustomerIdentity.objects.filter(match, channel=channel)
        .select_related("customer")
        .order_by("-created_at", "-pk")[:limit]
    )
    open_rows = (
        Conversation.objects.filter(
            customer_id__in=[i.customer_id for i in identities], channel=channel
        )
        .exclude(status=ConversationStatus.CLOSED)
        .select_related("operator")
    )
    open_by_customer = {
        c.customer_id: {
            "id": str(c.pk),
            "operator_id": c.operator_id,
            "operator": operator_label(c.operator) if c.operator_id else None,
        }
        for c in open_rows
    }
    return [
        {
            "id": str(i.customer_id),
            "name": str(i.customer),
            "channel": channel,
            "phone": i.external_id,
            "open_conversation": open_by_customer.get(i.customer_id),
        }
        for i in identities
    ]
