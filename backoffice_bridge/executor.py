"""Background execution of approved requests (infrastructure, beside the services).

An approval commits and answers at once; the back-office call runs afterwards on a small,
bounded thread pool of the web process, never in the approving request's thread.  Under
daphne every synchronous view shares one thread (asgiref's ``thread_sensitive``), so a
call that waited there for timeout * attempts held up every other sync view of the
process; here it holds one pool worker.

Why a thread pool and not the process's event loop: the execution is mostly database
work around one HTTP call (claim, audit, outcome, the customer's message), all of it
synchronous ORM code; the call itself already runs on the client's private loop
(``client.backoffice_call``, one aiohttp session per process).  A pool worker is the
plainest home for that sequence, and the same code path serves the scheduler's sweep.

Nothing here is needed for correctness: the pool is best effort, the database is the
record.  A submission is refused when the pool is full (``BACKOFFICE_EXECUTOR_QUEUE``)
or disabled (``BACKOFFICE_EXECUTOR = "off"``), and a process may die with jobs queued or
a call in flight; the scheduler's ``backoffice_tick`` then takes the ``approved`` rows
nobody executed and the ``executing`` ones whose claim is older than the lease
(``BACKOFFICE_EXECUTE_LEASE_SECONDS``), with the request's idempotency key, so the back
office never acts twice.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync, async_to_sync
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from hub import doorbell
from hub.doorbell import Send

logger = logging.getLogger(__name__)

MODE_THREAD = "thread"
MODE_OFF = "off"

_lock = threading.Condition()
_pool: ThreadPoolExecutor | None = None
#: Request ids queued or running in this process (so one is never queued twice).
_inflight: set[int] = set()


def executor_mode() -> str:
    """``thread`` (default) or ``off`` (only the scheduler executes)."""
    mode = str(getattr(settings, "BACKOFFICE_EXECUTOR", MODE_THREAD) or MODE_THREAD)
    if mode not in (MODE_THREAD, MODE_OFF):
        raise ImproperlyConfigured(f"BACKOFFICE_EXECUTOR must be 'thread' or 'off', not {mode!r}")
    return mode


def _threads() -> int:
    return max(1, int(getattr(settings, "BACKOFFICE_EXECUTOR_THREADS", 4)))


def _queue_limit() -> int:
    return max(1, int(getattr(settings, "BACKOFFICE_EXECUTOR_QUEUE", 100)))


def _pool_get() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="hub-backoffice")
        atexit.register(_shutdown)
    return _pool


def _shutdown() -> None:
    # Queued jobs are dropped (their rows stay approved for the scheduler); a call in
    # flight finishes within the client's bound.
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def execution_submit(request_id: int) -> bool:
    """Queue the execution of an approved request (call it after the approval committed).
    False when it was not queued (executor off, or full): the scheduler will take it."""
    if executor_mode() == MODE_OFF:
        return False
    with _lock:
        if request_id in _inflight:
            return True
        if len(_inflight) >= _queue_limit():
            logger.warning(
                "back-office executor full (%d): request %s left to the scheduler",
                len(_inflight),
                request_id,
            )
            return False
        _inflight.add(request_id)
        try:
            _pool_get().submit(_run, request_id, _server_loop())
        except RuntimeError:  # the interpreter is shutting down
            _inflight.discard(request_id)
            return False
    return True


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's event loop when called from a sync view's thread (asgiref keeps
    it for ``async_to_sync``), else None (a command, the scheduler, a test)."""
    threadlocal = SyncToAsync.threadlocal
    if getattr(threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


def _ring(bucket: list[Send], loop: asyncio.AbstractEventLoop | None) -> None:
    """The execution's doorbells, on the server's loop when there is one: the in-memory
    channel layer of the embedded default only wakes consoles from its own loop (a
    dropped doorbell is still caught up from the event log)."""
    if not bucket:
        return
    if loop is not None and loop.is_running():
        asyncio.run_coroutine_threadsafe(doorbell.send_all(bucket), loop)
        return
    async_to_sync(doorbell.send_all)(bucket)


def _run(request_id: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
    from backoffice_bridge.services import action_request_execute

    bucket: list[Send] = []
    token = doorbell.collected.set(bucket)
    try:
        action_request_execute(request_id=request_id)
    except Exception:  # the job boundary: logged; the row is the scheduler's to retry
        logger.exception("background execution of back-office request %s failed", request_id)
    finally:
        doorbell.collected.reset(token)
        try:
            _ring(bucket, loop)
        except Exception:  # a doorbell is best effort: consoles catch up from the log
            logger.exception("doorbells of back-office request %s not sent", request_id)
        # A pool thread outlives the job: give its connection back (a dropped test
        # database, a restarted server and CONN_MAX_AGE all expect it).
        connections.close_all()
        with _lock:
            _inflight.discard(request_id)
            _lock.notify_all()


def executions_pending() -> int:
    """How many executions this process has queued or running."""
    with _lock:
        return len(_inflight)


def executions_wait(timeout: float = 30.0) -> bool:
    """Block until this process's queued and running executions are finished (True), or
    ``timeout`` seconds passed (False).  For tests, scripts and orderly shutdowns."""
    deadline = time.monotonic() + timeout
    with _lock:
        while _inflight:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _lock.wait(left)
    return True
