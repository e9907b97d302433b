"""HSM services (writes): coordinators and admins create, edit, move through WhatsApp's
review and retire message templates.

Every write checks ``hsm.manage_templates``, checks the whole content (``hsm.rules``) before
anything is written, so bad input saves nothing, compares the ``version`` the editor loaded
under a row lock (``stale_version``: two coordinators never silently overwrite each other),
and appends a ``TemplateHistory`` row naming who did it, in one transaction.

Status rules (docs/hsm.md):

- a new template is a ``draft``; ``draft → submitted`` (sent to WhatsApp for review);
- ``submitted → approved``, ``submitted → rejected`` (with WhatsApp's reason) or
  ``submitted → draft`` (withdrawn);
- ``rejected → submitted`` (appealed as it is) or ``rejected → draft``;
- ``approved → paused`` and ``paused → approved`` (WhatsApp pauses a template over
  low quality and lifts it);
- editing the content of an ``approved``, ``paused`` or ``rejected`` template puts it back to
  ``draft`` (it must be reviewed again); a ``submitted`` one cannot be edited — withdraw it
  first.  Only ``approved`` templates can be sent.

Sending (``template_send``, ``outreach_start``) fills an approved template and hands it to
``chat.services.operator_template_send``: hsm owns templates, chat owns sending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat.channels.registry import adapter_for
from chat.selectors import access_conversation
from chat.services import (
    MessageResult,
    conversation_open_for_outreach,
    operator_outbound_replay,
    operator_template_send,
)
from hsm import rules
from hsm.models import Action, Status, Template, TemplateHistory
from hsm.selectors import (
    access_template,
    can_manage,
    require_staff,
    template_components,
    template_dict,
    template_render,
    template_sendable_get,
)
from hub.exceptions import Conflict, ErrorCode, PermissionDenied, ValidationFailed
from hub.roles import PERM_HANDLE

TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.DRAFT: (Status.SUBMITTED,),
    Status.SUBMITTED: (Status.APPROVED, Status.REJECTED, Status.DRAFT),
    Status.REJECTED: (Status.SUBMITTED, Status.DRAFT),
    Status.APPROVED: (Status.PAUSED,),
    Status.PAUSED: (Status.APPROVED,),
}
# Content edits of a template in these statuses send it back to draft (a new review).
BACK_TO_DRAFT_ON_EDIT = (Status.APPROVED, Status.PAUSED, Status.REJECTED)
CONTENT_FIELDS = (
    "name",
    "language",
    "category",
    "header",
    "header_example",
    "body",
    "body_examples",
    "footer",
    "buttons",
)


def _require_manager(actor: AbstractBaseUser | None) -> None:
    if not can_manage(actor):
        raise PermissionDenied(
            "Only coordinators and admins manage WhatsApp templates; operators may only "
            "use approved ones.",
            permission="hsm.manage_templates",
        )


def _version_check(template: Template, version: int | None) -> None:
    if version is not None and template.version != version:
        raise Conflict(
            "Someone else saved this template after you loaded it. Reload it and try again.",
            code=ErrorCode.STALE_VERSION,
            template_id=template.pk,
            version=template.version,
        )


def _name_free(name: str, language: str, *, except_id: int | None = None) -> None:
    taken = Template.objects.filter(name=name, language=language, retired_at__isnull=True)
    if except_id is not None:
        taken = taken.exclude(pk=except_id)
    holder = taken.values_list("pk", flat=True).first()
    if holder is not None:
        raise Conflict(
            f"A template named {name} in {language} already exists.",
            field="name",
            template_id=holder,
        )


def _save(template: Template, **kwargs: Any) -> None:
    """Save; a concurrent template that took the same (name, language) first ends as the
    same Conflict as the check before."""
    try:
        with transaction.atomic():
            template.save(**kwargs)
    except IntegrityError:
        _name_free(template.name, template.language, except_id=template.pk)
        raise


def _history(
    template: Template,
    actor: AbstractBaseUser | None,
    action: Action,
    *,
    from_status: str = "",
    note: str = "",
) -> None:
    TemplateHistory.objects.create(
        template=template,
        action=action,
        from_status=from_status,
        to_status=template.status,
        note=note,
        version=template.version,
        actor=actor,
    )


@transaction.atomic
def template_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    language: str,
    category: str,
    body: str,
    body_examples: Sequence[str] = (),
    header: str = "",
    header_example: str = "",
    footer: str = "",
    buttons: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:
    """A new template, as a ``draft``.

    Errors: PermissionDenied (not a coordinator or admin); ValidationFailed naming the
    field (``name``, ``language``, ``category``, ``header``, ``header_example``, ``body`` —
    ``reason`` ``malformed_placeholder`` or ``missing_placeholder`` with the
    ``placeholder`` —, ``body_examples`` — ``reason`` ``examples_count`` —, ``footer``,
    ``buttons[i].…``); Conflict (``field`` ``name``: the name is taken in this language).
    """
    _require_manager(actor)
    content = rules.content_clean(
        name=name,
        language=language,
        category=category,
        body=body,
        body_examples=body_examples,
        header=header,
        header_example=header_example,
        footer=footer,
        buttons=buttons,
    )
    _name_free(content.name, content.language)
    now = timezone.now()
    template = Template(
        **asdict(content),
        status=Status.DRAFT,
        status_changed_at=now,
        created_by=actor,
        updated_by=actor,
    )
    _save(template)
    _history(template, actor, Action.CREATED)
    return template_dict(template)


@transaction.atomic
def template_update(
    *,
    actor: AbstractBaseUser,
    template_id: int,
    version: int,
    name: str | None = None,
    language: str | None = None,
    category: str | None = None,
    body: str | None = None,
    body_examples: Sequence[str] | None = None,
    header: str | None = None,
    header_example: str | None = None,
    footer: str | None = None,
    buttons: Sequence[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Change the given fields (None: unchanged; ``""`` clears an optional part) of the
    template the editor loaded at ``version``.  The result is checked as a whole (a new
    body needs examples for its placeholders).  A real change to an approved, paused or
    rejected template puts it back to ``draft`` and clears the rejection reason; a change
    that leaves everything as it was writes nothing.

    Errors: those of ``template_create``; NotFound; Conflict with code ``stale_version``
    (``data.version`` is the current one) or, for a ``submitted`` template, ``conflict``
    with ``data.status``.
    """
    _require_manager(actor)
    template = access_template(actor=actor, template_id=template_id, lock=True)
    _version_check(template, version)
    given = {
        "name": name,
        "language": language,
        "category": category,
        "header": header,
        "header_example": header_example,
        "body": body,
        "body_examples": body_examples,
        "footer": footer,
        "buttons": buttons,
    }
    merged = {
        key: value if value is not None else getattr(template, key) for key, value in given.items()
    }
    content = asdict(rules.content_clean(**merged))
    changed = [key for key in CONTENT_FIELDS if content[key] != getattr(template, key)]
    if not changed:
        return template_dict(template)
    if template.status == Status.SUBMITTED:
        raise Conflict(
            "This template is with WhatsApp for review and cannot be edited; move it back "
            "to draft first.",
            template_id=template.pk,
            status=template.status,
        )
    if content["name"] != template.name or content["language"] != template.language:
        _name_free(content["name"], content["language"], except_id=template.pk)
    from_status = template.status
    for key in changed:
        setattr(template, key, content[key])
    update_fields = [*changed, "version", "updated_by", "updated_at"]
    if template.status in BACK_TO_DRAFT_ON_EDIT:
        template.status = Status.DRAFT
        template.rejection_reason = ""
        template.status_changed_at = timezone.now()
        update_fields += ["status", "rejection_reason", "status_changed_at"]
    template.version += 1
    template.updated_by = actor
    _save(template, update_fields=update_fields)
    _history(
        template,
        actor,
        Action.UPDATED,
        from_status=from_status,
        note="changed: " + ", ".join(changed),
    )
    return template_dict(template)


@transaction.atomic
def template_status_change(
    *,
    actor: AbstractBaseUser,
    template_id: int,
    version: int,
    status: str,
    rejection_reason: str | None = None,
) -> dict[str, Any]:
    """Move the template to ``status`` along the allowed transitions (module docstring).
    ``rejected`` needs ``rejection_reason`` (WhatsApp's words); no other status takes one.

    Errors: PermissionDenied; NotFound; ValidationFailed (``field`` ``status``: unknown;
    ``rejection_reason``: missing, too long or not allowed); Conflict ``stale_version``, or
    ``conflict`` for a transition that is not allowed (``data.status``, ``data.requested``,
    ``data.allowed``).
    """
    _require_manager(actor)
    if status not in Status.values:
        raise ValidationFailed(
            f"status is one of: {', '.join(Status.values)}.", field="status", value=status
        )
    if status == Status.REJECTED:
        reason = rules.rejection_reason_clean(rejection_reason or "")
    elif rejection_reason:
        raise ValidationFailed(
            "Only a rejection takes a reason.", field="rejection_reason", status=status
        )
    else:
        reason = ""
    template = access_template(actor=actor, template_id=template_id, lock=True)
    _version_check(template, version)
    allowed = TRANSITIONS[template.status]
    if status not in allowed:
        raise Conflict(
            f"A {template.status} template cannot become {status}"
            + (f"; it can become {', '.join(allowed)}." if allowed else "."),
            field="status",
            template_id=template.pk,
            status=template.status,
            requested=status,
            allowed=list(allowed),
        )
    from_status = template.status
    template.status = status
    template.rejection_reason = reason
    template.status_changed_at = timezone.now()
    template.version += 1
    template.updated_by = actor
    template.save(
        update_fields=[
            "status",
            "rejection_reason",
            "status_changed_at",
            "version",
            "updated_by",
            "updated_at",
        ]
    )
    _history(template, actor, Action.STATUS_CHANGED, from_status=from_status, note=reason)
    return template_dict(template)


@transaction.atomic
def template_retire(
    *, actor: AbstractBaseUser, template_id: int, version: int | None = None
) -> dict[str, Any]:
    """Delete a template for the hub: it leaves every list and can no longer be sent; its
    (name, language) is free for a new one and its history is kept.  ``version``
    (optional) refuses a retirement over a change the caller has not seen.

    Errors: PermissionDenied; NotFound; Conflict ``stale_version``."""
    _require_manager(actor)
    template = access_template(actor=actor, template_id=template_id, lock=True)
    _version_check(template, version)
    template.retired_at = timezone.now()
    template.version += 1
    template.updated_by = actor
    template.save(update_fields=["retired_at", "version", "updated_by", "updated_at"])
    _history(template, actor, Action.RETIRED, from_status=template.status)
    result = template_dict(template)
    result["retired_at"] = template.retired_at.isoformat()
    return result


# --- the demo -----------------------------------------------------------------------------
DEMO_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "claim_follow_up",
        "language": "es",
        "category": "utility",
        "header": "Su reclamación {{1}}",
        "header_example": "R-2024-0042",
        "body": "Hola {{1}}, le escribimos sobre su reclamación {{2}}. Tenemos novedades: "
        "responda a este mensaje para continuar la conversación.",
        "body_examples": ["Ana", "R-2024-0042"],
        "footer": "Banco Demo",
        "buttons": [{"type": "quick_reply", "text": "Continuar"}],
    },
    {
        "name": "claim_follow_up",
        "language": "en",
        "category": "utility",
        "header": "Your claim {{1}}",
        "header_example": "R-2024-0042",
        "body": "Hello {{1}}, we are writing about your claim {{2}}. There is news: reply to "
        "this message to continue the conversation.",
        "body_examples": ["Ben", "R-2024-0042"],
        "footer": "Demo Bank",
        "buttons": [{"type": "quick_reply", "text": "Continue"}],
    },
    {
        "name": "payment_inquiry_update",
        "language": "es",
        "category": "utility",
        "body": "Hola {{1}}, hay una actualización sobre su consulta del pago de {{2}}. "
        "Responda a este mensaje y un agente le atenderá.",
        "body_examples": ["Ana", "120,00 EUR"],
        "footer": "Banco Demo",
        "buttons": [{"type": "url", "text": "Ver pagos", "url": "https://bank.example/pagos"}],
    },
    {
        "name": "payment_inquiry_update",
        "language": "en",
        "category": "utility",
        "body": "Hello {{1}}, there is an update on your question about the payment of {{2}}. "
        "Reply to this message and an agent will help you.",
        "body_examples": ["Chen", "EUR 120.00"],
        "footer": "Demo Bank",
        "buttons": [
            {"type": "url", "text": "See payments", "url": "https://bank.example/payments"}
        ],
    },
]


def templates_demo_ensure(*, actor: AbstractBaseUser) -> int:
    """Create the demo's approved templates through the services (draft → submitted →
    approved), skipping any (name, language) that is live already so a coordinator's later
    edits are kept.  Returns how many were created."""
    live = set(Template.objects.filter(retired_at__isnull=True).values_list("name", "language"))
    created = 0
    for spec in DEMO_TEMPLATES:
        if (spec["name"], spec["language"]) in live:
            continue
        with transaction.atomic():
            template = template_create(actor=actor, **spec)
            for status in (Status.SUBMITTED, Status.APPROVED):
                template = template_status_change(
                    actor=actor,
                    template_id=template["id"],
                    version=template["version"],
                    status=status,
                )
        created += 1
    return created


# --- sending --------------------------------------------------------------------------------
def _filled(template_id: Any, parameters: Any) -> tuple[dict[str, Any], str, list[dict]]:
    """The template, approved at this moment, with its text for the timeline and its Cloud
    API components; every parameter error before anything is written."""
    if isinstance(template_id, bool) or not isinstance(template_id, int):
        raise ValidationFailed(
            "template_id must be an integer.", code=ErrorCode.WRONG_TYPE, field="template_id"
        )
    if not isinstance(parameters, list | tuple):
        raise ValidationFailed(
            "parameters must be a list of strings.",
            code=ErrorCode.WRONG_TYPE,
            field="parameters",
        )
    template = template_sendable_get(template_id=template_id)
    return (
        template,
        template_render(template, parameters),
        template_components(template, parameters),
    )


def template_send(
    *,
    actor: AbstractBaseUser,
    conversation_id: Any,
    template_id: int,
    parameters: Sequence[str],
    client_id: str,
) -> MessageResult:
    """The assigned operator sends an approved template, filled with ``parameters``, in
    one of their conversations: the only message WhatsApp delivers once the 24-hour window
    has closed (allowed while it is open too).

    The rendered text goes on the timeline and the Cloud API ``components`` in the
    message's payload; the message goes through the outbox like any reply
    (``chat.services.operator_template_send``).  Idempotent on ``client_id``: a retry
    answers the first message (``created`` False) even if the template has since been
    paused.  Errors: NotFound (the conversation is not theirs; no such live template);
    Conflict (the template is not approved: ``data.status``; the channel has no templates,
    i.e. web chat: ``data.reason`` ``no_templates``; the channel is not configured);
    ConversationClosed; ValidationFailed with ``field`` ``parameters`` (count, empty, new
    lines… as ``template_render``) or ``client_id``.  Emits ``chat.message_created``.
    """
    with transaction.atomic():
        conversation = access_conversation(actor=actor, conversation_id=conversation_id, act=True)
        replay = operator_outbound_replay(
            actor=actor,
            channel=conversation.channel,
            client_id=client_id,
            conversation_id=conversation.pk,
        )
        if replay is not None:
            return replay
        adapter = adapter_for(conversation.channel)
        if adapter.reply_window is None:
            raise Conflict(
                f"{adapter.label} has no 24-hour window and takes no WhatsApp templates: "
                "write a normal reply.",
                reason="no_templates",
                channel=conversation.channel,
            )
        template, text, components = _filled(template_id, parameters)
        return operator_template_send(
            actor=actor,
            conversation_id=conversation.pk,
            client_id=client_id,
            name=template["name"],
            language=template["language"],
            components=components,
            text=text,
        )


OUTREACH_NOTE = "Proactive outreach: started with a template"


def outreach_start(
    *,
    actor: AbstractBaseUser,
    customer_id: Any,
    template_id: int,
    parameters: Sequence[str],
    client_id: str,
    channel: str = "whatsapp",
) -> MessageResult:
    """Start a conversation with a known customer by sending them an approved template
    (a follow-up on a claim, a payment query…).

    The new conversation is the actor's: it is assigned to them whatever their presence or
    load (``routing.conversation_assigned``, an assignment of kind ``routed`` with them as
    actor), so the customer's answer comes back to whoever wrote.  Hence only staff who
    handle conversations may start one (operators, coordinators, admins by default).
    Idempotent on ``client_id``.  Errors: PermissionDenied; NotFound (no such customer or
    no identity of theirs on the channel; no such live template); Conflict with
    ``data.reason`` ``conversation_open`` and ``data.conversation_id`` when a conversation
    with them is already open on the channel (send the template there), or the template is
    not approved, or the channel has no templates / is not configured; ValidationFailed
    (parameters, client_id).  Nothing is written when any check fails.  Emits
    ``routing.conversation_assigned`` then ``chat.message_created``.
    """
    require_staff(actor)
    if not actor.has_perm(PERM_HANDLE):
        raise PermissionDenied(
            "Only staff who handle conversations may start one: the customer's answer comes "
            "back to whoever wrote.",
            permission=PERM_HANDLE,
        )
    try:
        adapter = adapter_for(channel)
    except LookupError:
        raise ValidationFailed(f"Unknown channel {channel}.", field="channel") from None
    if adapter.reply_window is None:
        raise Conflict(
            f"{adapter.label} takes no WhatsApp templates: the customer starts those "
            "conversations.",
            reason="no_templates",
            channel=channel,
        )
    with transaction.atomic():
        replay = operator_outbound_replay(actor=actor, channel=channel, client_id=client_id)
        if replay is not None:
            return replay
        template, text, components = _filled(template_id, parameters)
        if not adapter.enabled():
            raise Conflict(
                f"The {adapter.label} channel is not configured on this hub.", channel=channel
            )
        conversation = conversation_open_for_outreach(
            actor=actor, customer_id=customer_id, channel=channel, note=OUTREACH_NOTE
        )
        return operator_template_send(
            actor=actor,
            conversation_id=conversation.pk,
            client_id=client_id,
            name=template["name"],
            language=template["language"],
            components=components,
            text=text,
        )
