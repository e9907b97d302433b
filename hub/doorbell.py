"""Doorbell transport: sends group messages on the channel layer after commit.

Apps build their events in their own ``events.py`` and hand the sends to
``publish_on_commit``; this module is the one place that talks to the channel layer.

Inside ``hub.asyncdb.run_db`` (a consumer awaiting a service) the sends are collected
and published by the awaiting coroutine once the service returns, so a database thread
never blocks waiting for the event loop.  Elsewhere (HTTP views, commands) they are sent
at once with ``async_to_sync``.  A doorbell that fails is logged and dropped: consoles
catch up from the database.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

Send = tuple[str, dict[str, Any]]

# Set by run_db around a service call: the doorbells rung during it, to send afterwards.
collected: contextvars.ContextVar[list[Send] | None] = contextvars.ContextVar(
    "hub_collected_doorbells", default=None
)


class _CommitFlush:
    """One commit hook carrying every doorbell rung at the same savepoint level, so a
    transaction that appends hundreds of events (a batch derivation) crosses into the event
    loop once after commit, not once per event."""

    __slots__ = ("sends",)

    def __init__(self, sends: list[Send]) -> None:
        self.sends = sends

    def __call__(self) -> None:
        publish_now(self.sends)


def publish_on_commit(sends: Iterable[Send]) -> None:
    """Ring doorbells once the surrounding transaction commits (never if it rolls back).

    Consecutive calls inside the same savepoint join the last hook: a savepoint rollback
    discards that hook with everything it holds, exactly as separate hooks would be, and
    order relative to other commit hooks is kept because only the *last* hook is joined.
    """
    batch = list(sends)
    if not batch:
        return
    connection = transaction.get_connection()
    if connection.in_atomic_block and connection.run_on_commit:
        savepoints, last_hook, _robust = connection.run_on_commit[-1]
        if isinstance(last_hook, _CommitFlush) and savepoints == set(connection.savepoint_ids):
            last_hook.sends.extend(batch)
            return
    transaction.on_commit(_CommitFlush(batch))


def publish_now(sends: Iterable[Send]) -> None:
    """Ring doorbells now (or, inside run_db, as soon as the service returns)."""
    batch = list(sends)
    bucket = collected.get()
    if bucket is not None:
        bucket.extend(batch)
        return
    if get_channel_layer() is not None and batch:
        async_to_sync(send_all)(batch)


async def send_all(batch: list[Send]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in batch:
        try:
            await layer.group_send(group, message)
        except Exception as exc:  # lost doorbells are caught up from the log
            logger.warning("doorbell to %s not delivered: %s", group, exc)
