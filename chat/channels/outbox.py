"""The outbox dispatcher (infrastructure): sends committed outbound messages through their
channel adapters, on an event loop, outside any transaction.

Two ways in:

* ``dispatch_soon([id])``, on commit of the operator's reply (``chat.services``): in a
  process that runs a server loop (daphne) the message is sent at once by a task on that
  loop.  Elsewhere (a management command, a sync test) nothing happens here and the sweep
  sends it.
* ``outbox_sweep()``, the scheduler job ``chat.outbox_sweep``: settles early statuses and
  sends whatever is due (stragglers after a crash, temporary failures waiting for their
  retry).  Inside the web process (embedded default) it starts a dispatch on the server
  loop and returns; in ``run_scheduler`` it sends from a private loop thread and waits.

The rules (what is due, leases, the answer's effects) are services in ``chat.delivery``;
this module only moves bytes and awaits them through ``hub.asyncdb.run_db``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync

from chat.channels.base import OutboundItem, SendResult
from chat.channels.registry import adapter_for
from hub.asyncdb import run_db
from hub.http import http_session_close

logger = logging.getLogger(__name__)

T = TypeVar("T")
CLAIM_BATCH = 20
# Rounds of claims one dispatch makes before leaving the rest to the next sweep.
MAX_ROUNDS = 50

_tasks: set[asyncio.Task] = set()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop of this process's server, if this thread can reach one: the loop
    running in this thread, or the one a ``sync_to_async`` call came from (a sync view
    under daphne, a service awaited through ``run_db``)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    if loop is None or getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    return loop if loop.is_running() and not loop.is_closed() else None


def _spawn(message_ids: list[int] | None) -> None:
    task = asyncio.get_running_loop().create_task(outbox_dispatch(message_ids))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def dispatch_soon(message_ids: list[int] | None = None) -> bool:
    """Send these committed messages (None: everything due) from the server loop; False
    when this process has none (the sweep sends them)."""
    loop = _server_loop()
    if loop is None:
        return False
    loop.call_soon_threadsafe(_spawn, message_ids)
    return True


async def _send_one(item: OutboundItem) -> str:
    try:
        result = await adapter_for(item.channel).send(item)
    except Exception as exc:  # an adapter bug must not lose the message: retry later
        logger.exception("send of message %s raised", item.message_id)
        result = SendResult(
            error_code="internal_error", error_text=type(exc).__name__, retryable=True
        )
    from chat.delivery import outbound_result_record

    return await run_db(outbound_result_record, item=item, result=result)


async def outbox_dispatch(
    message_ids: list[int] | None = None, *, batch: int = CLAIM_BATCH
) -> dict[str, int]:
    """Claim (``batch`` at a time) and send until nothing of ``message_ids`` (None:
    nothing due) is left; returns the outcomes counted.  Safe to run in several
    dispatchers at once: claims never overlap."""
    from chat.delivery import outbox_claim

    counts: dict[str, int] = {}
    try:
        for _ in range(MAX_ROUNDS):
            items = await run_db(outbox_claim, message_ids=message_ids, limit=batch)
            if not items:
                break
            for outcome in await asyncio.gather(*(_send_one(item) for item in items)):
                counts[outcome] = counts.get(outcome, 0) + 1
            if message_ids is not None:
                break
    except Exception:  # the sweep tries again; nothing is lost
        logger.exception("outbox dispatch failed")
    return counts


# --- a private loop for processes without a server ---------------------------------------

_private_loop: asyncio.AbstractEventLoop | None = None
_private_lock = threading.Lock()


def _private() -> asyncio.AbstractEventLoop:
    global _private_loop
    with _private_lock:
        if _private_loop is None or _private_loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="hub-outbox-loop", daemon=True).start()
            _private_loop = loop
            atexit.register(_private_stop)
        return _private_loop


def _private_stop() -> None:
    """Close the private loop's session and the loop itself (interpreter exit)."""
    global _private_loop
    loop = _private_loop
    if loop is None or loop.is_closed():
        return
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(http_session_close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    _private_loop = None


def run_in_private_loop(coroutine: Coroutine[Any, Any, T], timeout: float = 600) -> T:
    """Run a coroutine on the process's private sender loop and wait for it (callers
    without a server loop: the scheduler process, tests)."""
    return asyncio.run_coroutine_threadsafe(coroutine, _private()).result(timeout)


def outbox_sweep() -> dict[str, Any]:
    """The scheduler job: settle early statuses, then send what is due."""
    from chat.delivery import early_statuses_settle, outbox_due_count

    report: dict[str, Any] = {}
    settled = early_statuses_settle()
    if any(settled.values()):
        report["early_statuses"] = settled
    if not outbox_due_count():
        return report
    if dispatch_soon(None):
        report["dispatch"] = "started on the server loop"
    else:
        report["dispatch"] = run_in_private_loop(outbox_dispatch(None))
    return report
