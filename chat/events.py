"""Event layer: the console event log and the doorbells; the only module that touches the
channel layer.

*Persist, then announce.*  A change a console must see is written as a ``ConsoleEvent`` row
in the same transaction as the change.  After commit, ``publish_on_commit`` rings doorbells
(channel-layer group messages) carrying the serialized event.  A doorbell may be lost (a Redis
restart, a slow consumer): every event names the previous event of its stream
(``prev``); a console whose position is below ``prev`` has missed something, notices, and
re-reads the log.  The channel layer is never the
record.
"""

from __future__ import annotations

import logging
from typing import Any, TypedDict

from django.db import connection
from django.utils import timezone

from chat.models import ConsoleEvent
from chat.store import console_event_insert
from hub.doorbell import publish_now, publish_on_commit

__all__ = ["publish_now", "publish_on_commit"]  # re-exported for the chat services

logger = logging.getLogger(__name__)

SUPERVISORS_GROUP = "console.all"


def operator_group(user_id: int) -> str:
    return f"console.op.{user_id}"


def user_group(user_id: int) -> str:
    """Every socket of a user, console or API, for "close now" orders (logout, disable)."""
    return f"user.{user_id}"


def webchat_group(customer_id: Any) -> str:
    return f"webchat.{customer_id}"


class ConsoleEventFrame(TypedDict):
    type: str
    id: int
    prev: int
    name: str
    conversation_id: str | None
    data: dict[str, Any]


def console_event_append(
    *,
    kind: str,
    payload: dict[str, Any],
    conversation_id: Any = None,
    operator_id: int | None = None,
) -> dict[str, Any]:
    """Append one event to the log and ring its streams' doorbells after commit; returns
    the event as it travels on the channel layer (``event_wire``).

    Must run inside ``transaction.atomic``.  Rows are appended in commit order: on
    PostgreSQL an advisory transaction lock is taken just before the insert and held until
    commit (SQLite's IMMEDIATE transactions already serialise writers).  That makes the ids
    a console reads monotonic in commit order, so ``id > last_seen`` never skips a row that
    commits late, and makes ``prev_*`` exact.  Call it as the last write of a transaction:
    the lock is held from here to commit.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("console_event_append must run inside transaction.atomic")
    event_id, prev_all, prev_operator = console_event_insert(
        kind=kind,
        payload=payload,
        conversation_id=conversation_id,
        operator_id=operator_id,
        now=timezone.now(),
    )
    wire = {
        "id": event_id,
        "prev_all": prev_all,
        "prev_operator": prev_operator,
        "operator_id": operator_id,
        "name": kind,
        "conversation_id": str(conversation_id) if conversation_id else None,
        "data": payload,
    }
    doorbell = {"type": "console.event", "event": wire}
    sends = [(SUPERVISORS_GROUP, doorbell)]
    if operator_id is not None:
        sends.append((operator_group(operator_id), doorbell))
    publish_on_commit(sends)
    return wire


def event_wire(event: ConsoleEvent) -> dict[str, Any]:
    """The event as it travels on the channel layer (both streams' prev ids)."""
    return {
        "id": event.id,
        "prev_all": event.prev_all,
        "prev_operator": event.prev_operator,
        "operator_id": event.operator_id,
        "name": event.kind,
        "conversation_id": str(event.conversation_id) if event.conversation_id else None,
        "data": event.payload,
    }


def event_frame(wire: dict[str, Any], *, supervisor: bool) -> ConsoleEventFrame:
    """The ``event`` frame a console receives, with the prev id of *its* stream."""
    return {
        "type": "event",
        "id": wire["id"],
        "prev": wire["prev_all"] if supervisor else (wire["prev_operator"] or 0),
        "name": wire["name"],
        "conversation_id": wire["conversation_id"],
        "data": wire["data"],
    }
