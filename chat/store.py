"""Hand-written SQL for the chat hot path: a customer message on an open conversation and
the console event that announces it.

Why not the ORM here: profiling the benchmark showed ~85% of the CPU of an inbound message
spent compiling ORM queries and building model instances, not in the database.  These
statements are the same on SQLite (3.35+, for ``RETURNING``) and PostgreSQL; values go
through the model fields' own adapters so both backends store exactly what the ORM would.
Everything else (opening a conversation, routing, replays) stays on the ORM in
``chat.services``, which calls this module.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from chat.models import (
    CONVERSATION_COLUMNS,
    ConsoleEvent,
    Conversation,
    Customer,
    CustomerIdentity,
    Message,
)
from routing.models import QueryType

# Any constant will do; it names "appending to the console event log" for pg_advisory locks.
EVENT_LOG_LOCK_KEY = 0x6875_6265  # "hube"

_DATETIME_COLUMNS = frozenset(c for c in CONVERSATION_COLUMNS if c.endswith("_at"))


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _uuid_param(value: Any) -> Any:
    return Conversation._meta.pk.get_db_prep_value(value, connection)


def _datetime_param(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _datetime_value(value: Any) -> datetime | None:
    """A timestamp as either backend returns it from raw SQL (SQLite: naive UTC text)."""
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def _uuid_value(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


class _IdentityCache:
    """(channel, external id) → customer id.  An identity never moves to another customer,
    so a per-process cache is always right; it is bounded, oldest entries leave first."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], uuid.UUID] = OrderedDict()

    def get(self, channel: str, external_id: str) -> uuid.UUID | None:
        key = (channel, external_id)
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, channel: str, external_id: str, customer_id: uuid.UUID) -> None:
        self._entries[(channel, external_id)] = customer_id
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


identity_cache = _IdentityCache()


def customer_id_for_identity(*, channel: str, external_id: str) -> uuid.UUID | None:
    """The customer an identity belongs to (cached), or None if the channel never saw it."""
    cached = identity_cache.get(channel, external_id)
    if cached is not None:
        return cached
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT customer_id FROM {_table(CustomerIdentity)} "
            "WHERE channel = %s AND external_id = %s",
            [channel, external_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    customer_id = _uuid_value(row[0])
    identity_cache.put(channel, external_id, customer_id)
    return customer_id


def inbound_append(
    *,
    customer_id: uuid.UUID,
    channel: str,
    channel_message_id: str,
    text: str,
    now: datetime,
    kind: str = "text",
    payload: dict[str, Any] | None = None,
) -> tuple[Conversation, Message] | None:
    """Store a customer message on their open conversation of the channel, in four
    statements: lock the conversation row, insert the message, update the conversation's
    counters returning its row, then read the names a console shows (customer, operator,
    query type).  None when the customer has no open conversation on the channel (the
    caller opens and routes one).  Raises IntegrityError for a channel message id already
    stored.  Runs inside an atomic block.

    The names are read after the update, not joined into the locking SELECT: when that
    SELECT waits for a derivation holding the row, PostgreSQL re-checks the locked row but
    not the joined ones, and would return the previous operator's name.
    """
    user_table = _table(get_user_model())
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {_table(Conversation)} "
            f"WHERE customer_id = %s AND channel = %s AND NOT (status = 'closed'){lock}",
            [_uuid_param(customer_id), channel],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        conversation_id = row[0]
        at = _datetime_param(now)
        # The delivery and outbox columns have no database default (Django keeps defaults
        # in Python): an inbound message has no delivery status and is never in the outbox.
        # A plain text message's empty payload is a literal, adapted for nothing.
        payload_sql = "%s" if payload else "'{}'"
        params = [conversation_id, text, channel, channel_message_id, at, kind]
        if payload:
            params.append(_payload_param(payload))
        cursor.execute(
            f"INSERT INTO {_table(Message)} "
            "(conversation_id, direction, author_id, text, channel, channel_message_id, "
            "created_at, kind, payload, delivery_status, status_at, provider_message_id, "
            "provider_error_code, provider_error_text, outbox_due_at, outbox_lease_until, "
            "outbox_attempts) "
            f"VALUES (%s, 'in', NULL, %s, %s, %s, %s, %s, {payload_sql}, '', NULL, NULL, "
            "'', '', NULL, NULL, 0) RETURNING id",
            params,
        )
        message_id = cursor.fetchone()[0]
        cursor.execute(
            f"UPDATE {_table(Conversation)} SET last_customer_message_at = %s, "
            "last_message_at = %s, last_message_id = %s, unread_count = unread_count + 1 "
            f"WHERE id = %s RETURNING {', '.join(CONVERSATION_COLUMNS)}",
            [at, at, message_id, conversation_id],
        )
        values = dict(zip(CONVERSATION_COLUMNS, cursor.fetchone(), strict=True))
        cursor.execute(
            f"SELECT cu.display_name, u.username, u.first_name, u.last_name, qt.code, qt.name "
            f"FROM {_table(Customer)} cu "
            f"LEFT JOIN {user_table} u ON u.id = %s "
            f"LEFT JOIN {_table(QueryType)} qt ON qt.id = %s "
            "WHERE cu.id = %s",
            [values["operator_id"], values["query_type_id"], values["customer_id"]],
        )
        customer_name, username, first_name, last_name, type_code, type_name = cursor.fetchone()
    for column in _DATETIME_COLUMNS:
        values[column] = _datetime_value(values[column])
    values["id"] = _uuid_value(values["id"])
    values["customer_id"] = _uuid_value(values["customer_id"])
    conversation = Conversation(**values)
    # A row read from the database, not a new one: a later save(update_fields=…) (routing
    # the menu answer, the out-of-hours reply) must UPDATE it.
    conversation._state.adding = False
    conversation._state.db = connection.alias
    conversation.customer = Customer(id=values["customer_id"], display_name=customer_name)
    if values["operator_id"] is not None:
        conversation.operator = get_user_model()(
            pk=values["operator_id"],
            username=username,
            first_name=first_name,
            last_name=last_name,
        )
    if values["query_type_id"] is not None:
        conversation.query_type = QueryType(
            pk=values["query_type_id"], code=type_code, name=type_name
        )
    message = Message(
        id=message_id,
        conversation_id=conversation.id,
        direction="in",
        text=text,
        channel=channel,
        channel_message_id=channel_message_id,
        created_at=now,
        kind=kind,
        payload=payload or {},
    )
    return conversation, message


def _payload_param(payload: dict[str, Any]) -> Any:
    return Message._meta.get_field("payload").get_db_prep_save(payload, connection)


def console_event_insert(
    *,
    kind: str,
    payload: dict[str, Any],
    conversation_id: Any,
    operator_id: int | None,
    now: datetime,
) -> tuple[int, int, int | None]:
    """Append one row to the console event log; returns (id, prev_all, prev_operator).

    On PostgreSQL an advisory transaction lock is taken first, in its own statement: the
    insert that follows starts with a snapshot taken after the lock, so the previous ids it
    reads include every event committed before it and ids are in commit order.  SQLite's
    IMMEDIATE transactions already serialise writers.
    """
    table = _table(ConsoleEvent)
    payload_param = ConsoleEvent._meta.get_field("payload").get_db_prep_save(payload, connection)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [EVENT_LOG_LOCK_KEY])
        cursor.execute(
            f"INSERT INTO {table} "
            "(kind, payload, conversation_id, operator_id, prev_all, prev_operator, created_at) "
            f"SELECT %s, %s, %s, %s, COALESCE((SELECT MAX(id) FROM {table}), 0), "
            f"CASE WHEN %s IS NULL THEN NULL ELSE COALESCE("
            f"(SELECT MAX(id) FROM {table} WHERE operator_id = %s), 0) END, %s "
            "RETURNING id, prev_all, prev_operator",
            [
                kind,
                payload_param,
                None if conversation_id is None else _uuid_param(conversation_id),
                operator_id,
                operator_id,
                operator_id,
                _datetime_param(now),
            ],
        )
        event_id, prev_all, prev_operator = cursor.fetchone()
    return event_id, prev_all, prev_operator
