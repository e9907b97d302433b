"""Knowledge base services: coordinators write, retire and reorder replies; operators render
one for the conversation they are answering.

Every write checks ``knowledge_base.manage_replies`` (Coordinator, Admin), validates the body's
variables (``knowledge_base.variables``) so nothing fails at send time, stores the derived
search columns and adds the reply's words to the typo vocabulary, in one transaction.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from chat.models import Conversation
from chat.selectors import access_conversation
from hub.exceptions import Conflict, ErrorCode, NotFound, PermissionDenied, ValidationFailed
from knowledge_base import search as kb_search
from knowledge_base.models import Reply, Term
from knowledge_base.selectors import access_reply, can_manage, conversation_language, reply_dict
from knowledge_base.variables import template_names, template_parse, template_render
from routing.models import QueryType

SHORTCUT = re.compile(r"/[a-z0-9]+(?:-[a-z0-9]+)*")
SHORTCUT_MAX = 64
LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})?")
TITLE_MAX = 200
TERM_MAX = 64


def _require_manager(actor: AbstractBaseUser) -> None:
    if not can_manage(actor):
        raise PermissionDenied("Only coordinators and admins manage knowledge-base replies.")


# --- field checks (each names its field) ---------------------------------------------
def _clean_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise ValidationFailed("The title may not be empty.", field="title")
    if len(title) > TITLE_MAX:
        raise ValidationFailed(f"The title is longer than {TITLE_MAX} characters.", field="title")
    return title


def shortcut_clean(shortcut: str) -> str:
    """``Card-Blocked`` or ``/card-blocked`` → ``/card-blocked``; lower-case letters, digits
    and single hyphens only, so it can be typed in the composer after a slash."""
    value = shortcut.strip().lower()
    if not value.startswith("/"):
        value = "/" + value
    if len(value) > SHORTCUT_MAX:
        raise ValidationFailed(
            f"The shortcut is longer than {SHORTCUT_MAX} characters.", field="shortcut"
        )
    if not SHORTCUT.fullmatch(value):
        raise ValidationFailed(
            "A shortcut is a slash and words of letters and digits joined by hyphens, "
            "e.g. /card-blocked.",
            field="shortcut",
            value=shortcut,
        )
    return value


def _clean_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise ValidationFailed("The body may not be empty.", field="body")
    if len(body) > settings.HUB_MESSAGE_MAX_CHARS:
        raise ValidationFailed(
            f"The body is longer than {settings.HUB_MESSAGE_MAX_CHARS} characters.",
            field="body",
            max_chars=settings.HUB_MESSAGE_MAX_CHARS,
        )
    template_parse(body)
    return body


def _clean_language(language: str) -> str:
    value = language.strip().lower()
    if not LANGUAGE.fullmatch(value):
        raise ValidationFailed(
            "The language is a code such as es, en or pt-br.", field="language", value=language
        )
    return value


def _query_types(ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(ids))
    found = set(QueryType.objects.filter(pk__in=wanted, active=True).values_list("pk", flat=True))
    for type_id in wanted:
        if type_id not in found:
            raise NotFound(
                "No active query type with this id.", field="query_type_ids", query_type_id=type_id
            )
    return wanted


def _shortcut_free(shortcut: str, *, except_id: int | None = None) -> None:
    taken = Reply.objects.filter(shortcut=shortcut, retired_at__isnull=True)
    if except_id is not None:
        taken = taken.exclude(pk=except_id)
    holder = taken.values_list("pk", flat=True).first()
    if holder is not None:
        raise Conflict(
            f"The shortcut {shortcut} is already used by another reply.",
            field="shortcut",
            reply_id=holder,
        )


def _index(reply: Reply, query_type_ids: list[int]) -> None:
    """Derived search columns and the vocabulary (the database triggers do the rest)."""
    columns = kb_search.index_columns(title=reply.title, shortcut=reply.shortcut, body=reply.body)
    reply.search_title = columns["search_title"]
    reply.search_body = columns["search_body"]
    reply.search_types = kb_search.types_key(query_type_ids)
    vocabulary = {
        w
        for w in f"{columns['search_title']} {columns['search_body']}".split()
        if len(w) <= TERM_MAX
    }
    Term.objects.bulk_create([Term(word=w) for w in sorted(vocabulary)], ignore_conflicts=True)


def _save(reply: Reply, *, update_fields: list[str] | None = None) -> None:
    """Save; a concurrent reply that took the same shortcut first ends as the same
    Conflict the check before gives."""
    try:
        with transaction.atomic():
            reply.save(update_fields=update_fields)
    except IntegrityError:
        _shortcut_free(reply.shortcut, except_id=reply.pk)
        raise


# --- use cases --------------------------------------------------------------------------
@transaction.atomic
def reply_create(
    *,
    actor: AbstractBaseUser,
    title: str,
    shortcut: str,
    body: str,
    language: str,
    query_type_ids: Sequence[int] = (),
    active: bool = True,
) -> dict[str, Any]:
    """A new reply, placed last.

    Errors: PermissionDenied (not a coordinator or admin); ValidationFailed naming the
    field (title, shortcut, body — with ``reason`` ``unknown_variable`` or ``malformed``
    and the ``variable`` —, language); NotFound (``query_type_ids``); Conflict (shortcut
    already used by a live reply).
    """
    _require_manager(actor)
    reply = Reply(
        title=_clean_title(title),
        shortcut=shortcut_clean(shortcut),
        body=_clean_body(body),
        language=_clean_language(language),
        active=active,
        created_by=actor,
        updated_by=actor,
    )
    type_ids = _query_types(query_type_ids)
    _shortcut_free(reply.shortcut)
    last = Reply.objects.filter(retired_at__isnull=True).aggregate(m=Max("position"))["m"]
    reply.position = (last or 0) + 1
    _index(reply, type_ids)
    _save(reply)
    reply.query_types.set(type_ids)
    return reply_dict(reply, query_type_ids=type_ids)


@transaction.atomic
def reply_update(
    *,
    actor: AbstractBaseUser,
    reply_id: int,
    version: int,
    title: str | None = None,
    shortcut: str | None = None,
    body: str | None = None,
    language: str | None = None,
    query_type_ids: Sequence[int] | None = None,
    active: bool | None = None,
) -> dict[str, Any]:
    """Change the given fields (None: unchanged) of the reply the editor loaded at
    ``version``.

    Errors: those of ``reply_create``; NotFound (no such live reply); Conflict with code
    ``stale_version`` when someone saved it after the editor loaded it (``data.version``
    is the current one): reload and edit again.
    """
    _require_manager(actor)
    reply = access_reply(actor=actor, reply_id=reply_id, lock=True)
    if reply.version != version:
        raise Conflict(
            "Someone else saved this reply after you loaded it. Reload it and edit again.",
            code=ErrorCode.STALE_VERSION,
            reply_id=reply.pk,
            version=reply.version,
        )
    if title is not None:
        reply.title = _clean_title(title)
    if shortcut is not None:
        reply.shortcut = shortcut_clean(shortcut)
        _shortcut_free(reply.shortcut, except_id=reply.pk)
    if body is not None:
        reply.body = _clean_body(body)
    if language is not None:
        reply.language = _clean_language(language)
    if active is not None:
        reply.active = active
    if query_type_ids is not None:
        type_ids = _query_types(query_type_ids)
        reply.query_types.set(type_ids)
    else:
        type_ids = sorted(reply.query_types.values_list("pk", flat=True))
    reply.version += 1
    reply.updated_by = actor
    _index(reply, type_ids)
    _save(reply)
    return reply_dict(reply, query_type_ids=type_ids)


@transaction.atomic
def reply_retire(
    *, actor: AbstractBaseUser, reply_id: int, version: int | None = None
) -> dict[str, Any]:
    """Retire a reply for good: it leaves every list and search, and its shortcut is free
    for a new reply.  ``version`` (optional) refuses a retirement over an edit the caller
    has not seen (``stale_version``).  Errors: PermissionDenied, NotFound, Conflict."""
    _require_manager(actor)
    reply = access_reply(actor=actor, reply_id=reply_id, lock=True)
    if version is not None and reply.version != version:
        raise Conflict(
            "Someone else saved this reply after you loaded it. Reload it first.",
            code=ErrorCode.STALE_VERSION,
            reply_id=reply.pk,
            version=reply.version,
        )
    reply.retired_at = timezone.now()
    reply.active = False
    reply.version += 1
    reply.updated_by = actor
    reply.save(update_fields=["retired_at", "active", "version", "updated_by", "updated_at"])
    return reply_dict(reply)


@transaction.atomic
def reply_reorder(*, actor: AbstractBaseUser, reply_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Put the listed replies first, in this order; the others keep their order after them.
    Errors: PermissionDenied; ValidationFailed (``reply_ids`` empty or repeated); NotFound
    (an id that is not a live reply, ``data.reply_id``)."""
    _require_manager(actor)
    if not reply_ids:
        raise ValidationFailed("reply_ids may not be empty.", field="reply_ids")
    if len(set(reply_ids)) != len(reply_ids):
        raise ValidationFailed("reply_ids lists a reply twice.", field="reply_ids")
    live = list(
        Reply.objects.select_for_update().filter(retired_at__isnull=True).order_by("position", "id")
    )
    by_id = {r.pk: r for r in live}
    for reply_id in reply_ids:
        if reply_id not in by_id:
            raise NotFound("No such reply.", field="reply_ids", reply_id=reply_id)
    listed = set(reply_ids)
    ordered = [by_id[i] for i in reply_ids] + [r for r in live if r.pk not in listed]
    changed = []
    for position, reply in enumerate(ordered, start=1):
        if reply.position != position:
            reply.position = position
            changed.append(reply)
    Reply.objects.bulk_update(changed, ["position"])
    from knowledge_base.selectors import reply_list

    return reply_list(actor=actor)


# --- rendering -------------------------------------------------------------------------
def _opening_hours_today(conversation: Conversation, language: str | None) -> str | None:
    """Today's opening hours as scheduling words them, if the scheduling app offers it
    (``scheduling.selectors.opening_hours_today_text``); None otherwise (the fallback)."""
    try:
        from scheduling.selectors import opening_hours_today_text
    except ImportError:
        return None
    offered = {
        "query_type_id": conversation.query_type_id,
        "language": language,
        "conversation_id": str(conversation.pk),
        "at": timezone.now(),
    }
    accepted = inspect.signature(opening_hours_today_text).parameters
    result = opening_hours_today_text(**{k: v for k, v in offered.items() if k in accepted})
    return str(result) if result else None


def reply_values(
    *, actor: AbstractBaseUser, conversation: Conversation, names: set[str]
) -> dict[str, str | None]:
    """The values of the variables ``names`` for this conversation (None: missing)."""
    customer_name = conversation.customer.display_name.strip()
    values: dict[str, str | None] = {
        "customer.name": customer_name or None,
        "customer.first_name": customer_name.split()[0] if customer_name else None,
        "operator.name": actor.get_full_name() or actor.get_username(),
        "conversation.reference": str(conversation.pk)[:8].upper(),
    }
    if "today.opening_hours" in names:
        values["today.opening_hours"] = _opening_hours_today(
            conversation, conversation_language(conversation)
        )
    return values


def reply_render(*, actor: AbstractBaseUser, reply_id: int, conversation_id: Any) -> dict[str, Any]:
    """The reply's body filled in for this conversation, for the operator to edit and send;
    counts one use.  The actor must see the conversation (its operator, or a supervisor)
    and the reply must be active.  Errors: NotFound (conversation or reply), PermissionDenied
    (not staff)."""
    with transaction.atomic():
        reply = access_reply(actor=actor, reply_id=reply_id)
        conversation = access_conversation(actor=actor, conversation_id=conversation_id)
        if not reply.active:
            raise NotFound("No such reply.", reply_id=reply_id)
        names = template_names(reply.body)
        text = template_render(
            reply.body, reply_values(actor=actor, conversation=conversation, names=names)
        )
        Reply.objects.filter(pk=reply.pk).update(usage_count=F("usage_count") + 1)
    return {"reply_id": reply.pk, "text": text}


@transaction.atomic
def kb_index_rebuild() -> int:
    """Recompute every reply's search columns, the vocabulary and the search table (after
    a change to how text is folded, to drop words no reply uses any more, or to repair the
    search table).  Returns the replies indexed."""
    Term.objects.all().delete()
    count = 0
    for reply in Reply.objects.prefetch_related("query_types"):
        _index(reply, [t.pk for t in reply.query_types.all()])
        reply.save(update_fields=["search_title", "search_body", "search_types"])
        count += 1
    kb_search.index_rebuild()
    return count
