"""Chat read layer: access checks, console snapshots, histories and the event-log replay."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Max, QuerySet
from django.db.models.functions import Substr

from chat.channels.registry import adapter_for
from chat.models import (
    CONVERSATION_COLUMNS,
    Channel,
    ConsoleEvent,
    ConsoleLogHorizon,
    Conversation,
    ConversationNote,
    ConversationStatus,
    CustomerIdentity,
    Direction,
    Message,
)
from hub.exceptions import NotFound, ValidationFailed
from hub.roles import PERM_HANDLE, can_supervise, permissions_preload, role_of


def _parse_uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("No such conversation.", conversation_id=str(value)) from None


def access_conversation(
    *, actor: AbstractBaseUser, conversation_id: Any, lock: bool = False, act: bool = False
) -> Conversation:
    """Load a conversation for ``actor`` or raise NotFound (missing and forbidden alike).

    Supervisors may watch any conversation; acting on one (``act=True``: sending, closing,
    marking read) is for the operator it is assigned to.
    """
    qs = Conversation.objects.select_related("customer", "operator", "query_type", "resolution")
    if lock:
        qs = qs.select_for_update(of=("self",))
    if act or not can_supervise(actor):
        if not actor.has_perm(PERM_HANDLE):
            raise NotFound("No such conversation.", conversation_id=str(conversation_id))
        qs = qs.filter(operator_id=actor.pk)
    conversation = qs.filter(pk=_parse_uuid(conversation_id)).first()
    if conversation is None:
        raise NotFound("No such conversation.", conversation_id=str(conversation_id))
    return conversation


# An event id in a query string: ASCII digits only, within a bigint.
CURSOR_PATTERN = re.compile(r"[0-9]{1,18}")

# The author name shown for messages the hub sends by itself.
SYSTEM_AUTHOR = "Bank"

# Snapshot rows carry the start of the newest message for the conversation list.
PREVIEW_CHARS = 200
# Conversations a snapshot lists at most (newest activity first); ``truncated`` says so.
# 200 rows stay well under the 256 KiB WebSocket message limit (500 did not).
SNAPSHOT_LIMIT = 200


def _operator_dict(conversation: Conversation) -> dict[str, Any] | None:
    if conversation.operator_id is None:
        return None
    return operator_label(conversation.operator)


def message_dict(message: Message, *, author_name: str | None = None) -> dict[str, Any]:
    if author_name is None and message.author_id is not None:
        author = message.author
        author_name = author.get_full_name() or author.get_username()
    elif author_name is None and message.direction == Direction.OUTBOUND:
        author_name = SYSTEM_AUTHOR  # sent by the hub itself (queue position, type menu)
    return {
        "id": message.id,
        "conversation_id": str(message.conversation_id),
        "direction": message.direction,
        "author": author_name if message.direction == Direction.OUTBOUND else None,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
        "channel": message.channel,
        "kind": message.kind,
        "payload": message.payload,
        # Delivery, for outbound messages: pending, sent, delivered, read or failed.
        "status": message.delivery_status or None,
        "status_at": message.status_at.isoformat() if message.status_at else None,
        "error": (
            {"code": message.provider_error_code, "text": message.provider_error_text}
            if message.provider_error_code
            else None
        ),
    }


def conversation_dict(conversation: Conversation) -> dict[str, Any]:
    """The console's view of one loaded conversation."""
    return conversation_payload(
        {column: getattr(conversation, column) for column in CONVERSATION_COLUMNS},
        customer_name=str(conversation.customer),
        operator=_operator_dict(conversation),
        query_type=_query_type_dict(conversation),
        resolution=(
            {"id": conversation.resolution_id, "name": conversation.resolution.name}
            if conversation.resolution_id
            else None
        ),
    )


def conversation_payload(
    row: Mapping[str, Any],
    *,
    customer_name: str,
    operator: dict[str, Any] | None,
    query_type: dict[str, Any] | None,
    resolution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The console's view of a conversation from its columns (``row``: the attnames of
    CONVERSATION_COLUMNS, e.g. a ``values()`` row) and its related labels, so that
    set-based code (a batch derivation of 10,000) builds it without loading models."""

    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": str(row["id"]),
        "customer": {"id": str(row["customer_id"]), "name": customer_name},
        "channel": row["channel"],
        "status": row["status"],
        "operator_id": row["operator_id"],
        "operator": operator,
        "created_at": iso(row["created_at"]),
        "assigned_at": iso(row["assigned_at"]),
        "first_operator_reply_at": iso(row["first_operator_reply_at"]),
        "last_customer_message_at": iso(row["last_customer_message_at"]),
        "last_message_at": iso(row["last_message_at"]),
        "closed_at": iso(row["closed_at"]),
        "read_up_to": row["operator_read_up_to"],
        "unread": row["unread_count"],
        "last_message_id": row["last_message_id"],
        "query_type": query_type,
        "awaiting_type": row["query_type_id"] is None and row["type_menu_asked"] > 0,
        "language": row["language"] or None,
        "resolution": resolution,
        # null: the channel has no reply window; else when free-form replies stop being
        # allowed (in the past: closed, only templates may go).
        "reply_window_closes_at": iso(
            adapter_for(row["channel"]).reply_window_closes_at(
                last_customer_message_at=row["last_customer_message_at"],
                opened_at=row["created_at"],
            )
        ),
    }


def operator_label(user: AbstractBaseUser) -> dict[str, Any]:
    """How consoles name a staff member."""
    return {"id": user.pk, "name": user.get_full_name() or user.get_username()}


def _query_type_dict(conversation: Conversation) -> dict[str, Any] | None:
    if conversation.query_type_id is None:
        return None
    query_type = conversation.query_type
    return {"id": query_type.pk, "code": query_type.code, "name": query_type.name}


def conversations_for_console(*, actor: AbstractBaseUser) -> QuerySet[Conversation]:
    """Open conversations a console lists: the operator's own, or all for supervisors."""
    qs = Conversation.objects.select_related("customer", "operator", "query_type").exclude(
        status=ConversationStatus.CLOSED
    )
    if not can_supervise(actor):
        qs = qs.filter(operator_id=actor.pk)
    return qs.order_by("-last_message_at", "-created_at")


def console_head(*, actor: AbstractBaseUser) -> int:
    """The id of the newest event in the actor's stream (0 when empty)."""
    qs = ConsoleEvent.objects.all()
    if not can_supervise(actor):
        qs = qs.filter(operator_id=actor.pk)
    return qs.aggregate(m=Max("id"))["m"] or 0


def stream_heads(*, operator_ids: list[int]) -> dict[int, int]:
    """The newest event id of each operator's stream, in one query (for the console watch)."""
    if not operator_ids:
        return {}
    rows = (
        ConsoleEvent.objects.filter(operator_id__in=operator_ids)
        .values("operator_id")
        .annotate(head=Max("id"))
        .values_list("operator_id", "head")
    )
    return dict(rows)


def log_head() -> int:
    """The newest event id in the whole log: a console's position after a snapshot."""
    return ConsoleEvent.objects.aggregate(m=Max("id"))["m"] or 0


def console_snapshot(*, actor: AbstractBaseUser) -> dict[str, Any]:
    """Everything a console shows, and the log position it is current to.

    The position is the head of the whole log, not of the actor's stream: a console's
    cursor is a point in the log, and an event belongs after it when ``prev <= cursor``.
    It is read before the rows, so a change racing the snapshot is sent again as an event
    (consoles apply events idempotently) rather than lost.
    """
    head = log_head()
    conversations = list(conversations_for_console(actor=actor)[: SNAPSHOT_LIMIT + 1])
    truncated = len(conversations) > SNAPSHOT_LIMIT
    conversations = conversations[:SNAPSHOT_LIMIT]
    previews = {
        row["id"]: row
        for row in Message.objects.filter(
            id__in=[c.last_message_id for c in conversations if c.last_message_id]
        ).values("id", "direction", "author_id", preview=Substr("text", 1, PREVIEW_CHARS))
    }
    rows = []
    for conversation in conversations:
        item = conversation_dict(conversation)
        preview = previews.get(conversation.last_message_id)
        item["last_message"] = (
            {
                "id": preview["id"],
                "direction": preview["direction"],
                "text": preview["preview"],
                # The hub's own message (queue position, type menu, out-of-hours reply) does
                # not answer the customer: the console keeps counting their waiting time.
                "system": preview["direction"] == Direction.OUTBOUND
                and preview["author_id"] is None,
            }
            if preview
            else None
        )
        rows.append(item)
    return {
        "type": "snapshot",
        "last_event_id": head,
        "conversations": rows,
        "truncated": truncated,
    }


def _log_bounds() -> tuple[int, int]:
    """The newest event id and the pruning horizon, in one round trip."""
    events = connection.ops.quote_name(ConsoleEvent._meta.db_table)
    horizons = connection.ops.quote_name(ConsoleLogHorizon._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT MAX(id) FROM {events}), "
            f"(SELECT pruned_up_to FROM {horizons} WHERE id = 1)"
        )
        head, horizon = cursor.fetchone()
    return head or 0, horizon or 0


class ReplayUnavailable(Exception):
    """The asked-for id cannot be replayed: the console must take a snapshot instead."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def console_events_since(
    *, actor_id: int, supervisor: bool, last_event_id: int, limit: int
) -> list[ConsoleEvent]:
    """Events of the actor's stream after ``last_event_id``, oldest first.

    Raises ReplayUnavailable when the id is ahead of the log (unknown), below what the
    retention job has pruned (too old), or more than ``limit`` events behind (the console
    should take a snapshot).
    """
    base = (
        ConsoleEvent.objects.all()
        if supervisor
        else ConsoleEvent.objects.filter(operator_id=actor_id)
    )
    if last_event_id < 0:
        raise ReplayUnavailable("unknown_event_id")
    head, horizon = _log_bounds()
    if last_event_id > head:
        raise ReplayUnavailable("unknown_event_id")
    if last_event_id < horizon:
        raise ReplayUnavailable("event_id_too_old")
    events = list(base.filter(id__gt=last_event_id).order_by("id")[: limit + 1])
    if len(events) > limit:
        raise ReplayUnavailable("too_many_missed_events")
    return events


def conversation_history(
    *, actor: AbstractBaseUser, conversation_id: Any, before_id: int | None, limit: int
) -> dict[str, Any]:
    conversation = access_conversation(actor=actor, conversation_id=conversation_id)
    if limit < 1 or limit > 200:
        raise ValidationFailed("limit must be between 1 and 200.", field="limit")
    qs = Message.objects.filter(conversation=conversation).select_related("author")
    if before_id is not None:
        qs = qs.filter(id__lt=before_id)
    messages = list(qs.order_by("-id")[: limit + 1])
    has_more = len(messages) > limit
    messages = messages[:limit]
    messages.reverse()
    page = {
        "conversation": conversation_dict(conversation),
        "messages": [message_dict(m) for m in messages],
        "has_more": has_more,
        "notes": conversation_notes_page(
            conversation_id=conversation.pk,
            since=messages[0].created_at if has_more and messages else None,
            before_id=before_id,
        ),
    }
    if before_id is None:  # the newest page also brings the routing timeline
        from routing.selectors import conversation_routing_timeline

        page["timeline"] = conversation_routing_timeline(conversation_id=conversation.pk)
    return page


def note_dict(note: ConversationNote) -> dict[str, Any]:
    """A staff-only note as consoles show it (``visibility`` is always ``internal``)."""
    return {
        "id": note.id,
        "conversation_id": str(note.conversation_id),
        "author": operator_label(note.author),
        "text": note.text,
        "created_at": note.created_at.isoformat(),
        "visibility": "internal",
    }


def conversation_notes_page(
    *, conversation_id: Any, since: Any, before_id: int | None
) -> list[dict[str, Any]]:
    """The notes that belong to a history page: written from ``since`` (the page's oldest
    message; None when the page reaches the start) up to the message the page stops before
    (``before_id``; None for the newest page).  Consecutive pages share these bounds, so
    each note arrives with exactly one page, between the messages of its time.

    Only the console's history reads notes: the customer's paths read ``Message`` alone.
    """
    qs = ConversationNote.objects.filter(conversation_id=conversation_id).select_related("author")
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if before_id is not None:
        upper = (
            Message.objects.filter(conversation_id=conversation_id, id=before_id)
            .values_list("created_at", flat=True)
            .first()
        )
        if upper is not None:
            qs = qs.filter(created_at__lt=upper)
    return [note_dict(n) for n in qs.order_by("created_at", "id")]


def customer_history(*, customer_id: Any, after_id: int | None, limit: int = 100) -> list[dict]:
    """The messages a web chat visitor sees on (re)connect: the tail of all their
    conversations on every channel, closed ones included (it is their own history)."""
    qs = Message.objects.filter(conversation__customer_id=customer_id).select_related("author")
    if after_id:
        messages = list(qs.filter(id__gt=after_id).order_by("id")[:limit])
    else:
        messages = list(qs.order_by("-id")[:limit])
        messages.reverse()
    return [message_dict(m) for m in messages]


def webchat_since(*, customer_id: Any, conversation_id: Any, after_id: int) -> dict[str, Any]:
    """What a web chat socket missed while it joined its new customer's group: the messages
    after ``after_id`` (the first message it sent; the hub's menu, queue position or
    autoreply written in the same transaction rang their doorbells before the join), and
    whether that message's conversation is closed by now (out of hours, ``closed``)."""
    closed = Conversation.objects.filter(
        pk=conversation_id, customer_id=customer_id, status=ConversationStatus.CLOSED
    ).exists()
    return {
        "messages": customer_history(customer_id=customer_id, after_id=after_id),
        "closed": closed,
    }


def console_setup(*, actor: AbstractBaseUser) -> dict[str, Any] | None:
    """What a console needs to know about its user at connect time (None: not staff)."""
    from routing.models import OperatorState, Presence

    permissions_preload(actor)
    role = role_of(actor)
    if role is None:
        return None
    presence = (
        OperatorState.objects.filter(user_id=actor.pk).values_list("presence", flat=True).first()
    )
    return {
        "role": str(role),
        "supervisor": can_supervise(actor),
        "presence": presence or Presence.OFFLINE.value,
    }


def customer_id_for_visitor(*, visitor_id: str) -> str | None:
    """The customer a web chat visitor id stands for, if they have written before."""
    identity = CustomerIdentity.objects.filter(
        channel=Channel.WEBCHAT, external_id=visitor_id
    ).first()
    return str(identity.customer_id) if identity else None


@dataclass
class ConsoleOpening:
    """Everything a console's handshake needs, read in one database hop (``console_open``).

    ``refused`` is ``"unauthenticated"`` or ``"forbidden"`` when the socket must be closed;
    otherwise ``frames`` are sent in order after ``hello`` and ``last_sent`` is the
    console's position in the log afterwards.
    """

    refused: str | None = None
    user: AbstractBaseUser | None = None
    setup: dict[str, Any] = dc_field(default_factory=dict)
    frames: list[dict[str, Any]] = dc_field(default_factory=list)
    last_sent: int = 0


def console_open(
    *, actor: AbstractBaseUser | None, token: str | None, last_event_id: str | None, limit: int
) -> ConsoleOpening:
    """Authenticate (bearer token), check the role, and replay or snapshot, in one hop.

    One hop rather than three matters in a reconnect storm: the database threads serve
    calls first come, first served, so a handshake made of several calls finishes only
    after every other handshake's earlier calls; made of one, consoles come back steadily.
    ``last_event_id`` is the raw query-string value (None: a fresh console).
    """
    from chat.events import event_frame, event_wire
    from hub.auth import user_for_token

    if token is not None:
        actor = user_for_token(token)
    if actor is None or not actor.is_authenticated:
        return ConsoleOpening(refused="unauthenticated")
    setup = console_setup(actor=actor)
    if setup is None:
        return ConsoleOpening(refused="forbidden")
    opening = ConsoleOpening(user=actor, setup=setup)
    if last_event_id is not None and CURSOR_PATTERN.fullmatch(last_event_id):
        cursor = int(last_event_id)
        try:
            events = console_events_since(
                actor_id=actor.pk,
                supervisor=setup["supervisor"],
                last_event_id=cursor,
                limit=limit,
            )
        except ReplayUnavailable as gone:
            opening.frames.append({"type": "resync", "reason": gone.reason})
        else:
            opening.frames += [
                event_frame(event_wire(e), supervisor=setup["supervisor"]) for e in events
            ]
            opening.last_sent = events[-1].id if events else cursor
            opening.frames.append(
                {"type": "resumed", "last_event_id": opening.last_sent, "replayed": len(events)}
            )
            return opening
    elif last_event_id is not None:
        opening.frames.append({"type": "resync", "reason": "unknown_event_id"})
    snapshot = console_snapshot(actor=actor)
    opening.frames.append(snapshot)
    opening.last_sent = snapshot["last_event_id"]
    return opening
